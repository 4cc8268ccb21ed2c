"""The whole run: load values/ -> render -> hydrate -> validate, staged in a scratch tree; then write or compare."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from . import charts, hydrate, loader, memo, output, policy, render, resolve, validation, yamlio
from .errors import ValidationFailed, format_loc
from .applications import Layout
from .helm import HelmError, cache_dir as helm_cache_dir, find_helm

Log = Callable[[str], None]


def stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


@dataclass(frozen=True)
class Options:
    root: Path
    values: Path
    hydrate: bool = True
    validate: bool = True
    crds: Path | None = None
    charts: Path | None = None
    cache: Path | None = None
    jobs: int | None = None
    memo: bool = True  # reuse the memo of parsed and emitted YAML (.cache/memo); results are the same without

    @property
    def cache_dir(self) -> Path:
        return self.cache or helm_cache_dir()


class Progress:
    """`helm template 12/300 apps, 4.1s` rewritten in place on a terminal; nothing in CI logs (the summary says it)."""

    def __init__(self, what: str, stream=None):
        self.what, self.stream, self.started = what, stream or sys.stderr, time.perf_counter()
        self.live = self.stream.isatty() and not os.environ.get("CI")

    def __call__(self, done: int, total: int) -> None:
        if self.live:
            end = "\n" if done == total else ""
            self.stream.write(f"\r{self.what} {done}/{total} apps, {time.perf_counter() - self.started:.1f}s{end}")
            self.stream.flush()


def memo_for(opts: Options) -> memo.Memo | None:
    """The memo a command with these options consults (None with memo=False)."""
    return memo.Memo(opts.cache_dir / "memo") if opts.memo else None


def _display(values: Path, root: Path) -> str:
    try:
        return values.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return values.as_posix()


@contextmanager
def generated(opts: Options, log: Log = stderr) -> Iterator[tuple[output.Tree, Path]]:
    """Everything `make render` writes, complete in a staging directory; raises InvalidModel/HelmError before any write."""
    started = time.perf_counter()
    with output.locked(opts.root), memo.using(memo_for(opts)), output.staging(opts.root) as staged:
        loaded = loader.load(opts.values, _display(opts.values, opts.root))
        model = loaded.model
        tree = render.build(loaded, opts.root / "charts")
        if (opts.root / "charts").is_dir():
            # Helm must see the schemas this run generates, not the ones committed before it.
            shutil.copytree(opts.root / "charts", staged / "charts", symlinks=True)
        tree.write(staged, unless_in=opts.root)
        if opts.hydrate:
            _hydrate(opts, loaded, tree, staged, log)
        if opts.validate:
            _validate(opts, loaded, tree, staged, log)
        log(f"rendered {len(tree.files)} files for {model.cluster.name}/{model.cluster.environment} "
            f"in {time.perf_counter() - started:.2f}s")
        yield tree, staged


GENERATED = policy.GENERATED


def _pointer(entry: dict[str, Any]) -> list[tuple]:
    """ignoreDifferences paths as tuples; '*' stands for any list index (jq's `[]`)."""
    out = [tuple(int(p) if p.isdigit() else p.replace("~1", "/").replace("~0", "~") for p in ptr.split("/")[1:])
           for ptr in entry.get("jsonPointers", [])]
    for expr in entry.get("jqPathExpressions", []):
        parts: list = []
        for name, index in re.findall(r"\.([A-Za-z0-9_-]+)|(\[\]\??)", expr):
            parts.append(name if name else "*")
        out.append(tuple(parts))
    return out


def _covered(app: dict[str, Any], key: tuple[str, str, str], doc: dict[str, Any] | None, path: tuple) -> bool:
    """Whether the Application's ignoreDifferences cover this field of this object."""
    kind, namespace, name = key
    group = str((doc or {}).get("apiVersion", "")).rpartition("/")[0]
    for entry in app["spec"].get("ignoreDifferences", []):
        if (entry.get("kind"), entry.get("group", ""), entry.get("name", name)) != (kind, group, name):
            continue
        if entry.get("namespace", namespace) != namespace:
            continue
        for prefix in _pointer(entry):
            if not prefix:
                continue  # an expression we cannot read covers nothing
            if path[:len(prefix)] == prefix or all(p == "*" or p == q for p, q in zip(prefix, path)) and len(path) >= len(prefix):
                return True
    return False


def _blank(doc: dict[str, Any], path: tuple) -> None:
    node: Any = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = GENERATED


def _unchanged_from(root: Path, inv: hydrate.Invocation) -> hydrate.Invocation:
    """Staging holds only the files that change: helm reads the others where they are (the same bytes)."""
    files = tuple(f if f.exists() else root / name for f, name in zip(inv.value_files, inv.value_names))
    return dataclasses.replace(inv, value_files=files)


def _hydrate(opts: Options, loaded: loader.Loaded, tree: output.Tree, staged: Path, log: Log) -> None:
    model = loaded.model
    layout = Layout(model.cluster.environment)
    apps = {c.name: yamlio.load_all(tree.files[layout.app_file(c.name)].decode())[0] for c in resolve.components(model)}

    def chart_source(name: str, version: str, repo: str) -> Path:
        return charts.resolve_chart(name, version, repo, opts.charts)

    invocations = [_unchanged_from(opts.root, inv) for inv in (hydrate.invocation(app, staged, chart_source)
                                                                for app in apps.values()) if inv is not None]
    if not invocations:
        return
    helm = find_helm()
    result = hydrate.hydrate(invocations, staged, helm, opts.cache_dir / "hydrate", opts.jobs,
                             progress=Progress("helm template"))
    unexplained = []
    for inv in invocations:
        out = result.outputs[inv.app]
        by_key = {hydrate.key_of(d): d for d in out.docs}
        for key, path in result.flaps.get(inv.app, []):
            doc = by_key.get(key)
            if path and doc is not None and _covered(apps[inv.app], key, doc, path):
                _blank(doc, path)
            else:
                unexplained.append(f"{layout.app_file(inv.app)}: {'/'.join(p for p in key if p)}: "
                                   f"{format_loc(path) or '(the whole object)'} differs between two renders of "
                                   f"{inv.shown_chart}")
    if unexplained:
        raise HelmError("output that changes on every render (Argo CD would report OutOfSync forever): turn the "
                        "generation off in the model, or let the Application ignore exactly these fields:\n  "
                        + "\n  ".join(unexplained))
    for inv in invocations:
        out = result.outputs[inv.app]
        chart = inv.shown_chart if inv.chart.suffix == ".tgz" else inv.chart.relative_to(staged).as_posix()
        sources = [f"{layout.app_file(inv.app)} (helm template {chart})"]
        notes = [f"Not applied by Argo CD, so left out: {d}" for d in out.dropped]
        for path, docs, what in ((layout.manifest_file(inv.app), out.resources, notes),
                                 (layout.crds_file(inv.app), out.crds, [])):
            if not docs:
                continue
            text = render.yaml_file(sources, docs, what)
            tree.add(path, text)
            if not output.same_on_disk(opts.root / path, tree.files[path]):
                (staged / path).parent.mkdir(parents=True, exist_ok=True)
                (staged / path).write_bytes(tree.files[path])
    objects = sum(len(o.docs) for o in result.outputs.values())
    log(f"hydrated {len(invocations)} apps ({objects} objects; {result.rendered} rendered, {result.cached} unchanged) "
        f"with {helm.describe()}")


def _validate(opts: Options, loaded: loader.Loaded, tree: output.Tree, staged: Path, log: Log) -> None:
    started = time.perf_counter()
    report = validation.validate_files(tree.files, staged, loaded, loaded.model.cluster.kubernetes_version, opts.crds)
    for reason in report.lines()[len(report.issues):]:
        log(reason)
    if not report.ok:
        raise ValidationFailed(report.lines(), len(report.issues))
    log(f"validated {report.documents} objects in {time.perf_counter() - started:.2f}s: no findings")


def render_to_disk(opts: Options, log: Log = stderr) -> output.Tree:
    with generated(opts, log) as (tree, staged):
        output.swap(opts.root, staged, tree)
    return tree


def check(opts: Options, log: Log = stderr) -> list[str]:
    with generated(opts, log) as (tree, _):
        return output.drift(opts.root, tree)


def validate_on_disk(opts: Options) -> validation.Report:
    """Validate the committed tree; the model ties findings to their fields and supplies the waivers."""
    with output.locked(opts.root):
        loaded = loader.load(opts.values, _display(opts.values, opts.root))
        files = output.read_generated(opts.root)
    with memo.using(memo_for(opts)):
        return validation.validate_files(files, opts.root, loaded, loaded.model.cluster.kubernetes_version, opts.crds)
