"""The whole run: load values/ -> render -> hydrate -> validate, staged in a scratch tree; then write or compare."""

from __future__ import annotations

import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from . import hydrate, loader, output, render, resolve, validation, yamlio
from .errors import ValidationFailed
from .applications import Layout
from .helm import cache_dir as helm_cache_dir, find_helm

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
    cache: Path | None = None
    jobs: int | None = None

    @property
    def cache_dir(self) -> Path:
        return self.cache or helm_cache_dir()


def _display(values: Path, root: Path) -> str:
    try:
        return values.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return values.as_posix()


@contextmanager
def generated(opts: Options, log: Log = stderr) -> Iterator[tuple[output.Tree, Path]]:
    """Everything `make render` writes, complete in a staging directory; raises InvalidModel/HelmError before any write."""
    started = time.perf_counter()
    loaded = loader.load(opts.values, _display(opts.values, opts.root))
    model = loaded.model
    tree = render.build(loaded, opts.root / "charts")
    with output.staging(opts.root) as staged:
        if (opts.root / "charts").is_dir():
            # Helm must see the schemas this run generates, not the ones committed before it.
            shutil.copytree(opts.root / "charts", staged / "charts", symlinks=True)
        tree.write(staged)
        if opts.hydrate:
            _hydrate(opts, loaded, tree, staged, log)
        if opts.validate:
            _validate(opts, loaded, tree, staged, log)
        log(f"rendered {len(tree.files)} files for {model.cluster.name}/{model.cluster.environment} "
            f"in {time.perf_counter() - started:.2f}s")
        yield tree, staged


def _hydrate(opts: Options, loaded: loader.Loaded, tree: output.Tree, staged: Path, log: Log) -> None:
    model = loaded.model
    layout = Layout(model.cluster.environment)
    apps = {c.name: yamlio.load_all(tree.files[layout.app_file(c.name)].decode())[0] for c in resolve.components(model)}
    invocations = [inv for inv in (hydrate.invocation(app, staged) for app in apps.values()) if inv is not None]
    if not invocations:
        return
    helm = find_helm()
    result = hydrate.hydrate(invocations, staged, helm, model.cluster.kubernetes_version, resolve.api_versions(model),
                             opts.cache_dir / "hydrate", opts.jobs)
    for inv in invocations:
        chart = inv.chart.relative_to(staged).as_posix()
        text = render.yaml_file([f"{layout.app_file(inv.app)} (helm template {chart})"], result.docs[inv.app])
        path = layout.manifest_file(inv.app)
        tree.add(path, text)
        (staged / path).parent.mkdir(parents=True, exist_ok=True)
        (staged / path).write_text(text, encoding="utf-8")
    objects = sum(len(d) for d in result.docs.values())
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
    loaded = loader.load(opts.values, _display(opts.values, opts.root))
    files = output.read_generated(opts.root)
    return validation.validate_files(files, opts.root, loaded, loaded.model.cluster.kubernetes_version, opts.crds)
