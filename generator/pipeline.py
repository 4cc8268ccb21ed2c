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

from . import layout as layouts, memo, yamlio
from .errors import UsageError, ValidationFailed, format_loc
from .helm import HelmError, find_helm
from .hydrate import hydrate
from .layout import Layout
from .model import environments
from .options import Options
from .render import helmvalues, overview, render
from .upstream import charts
from .validate import capacity, objects, orphans, policy, validation
from .write import output, replay

Log = Callable[[str], None]


def stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


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


def load(opts: Options) -> dict[str, "environments.Loaded"]:
    """Every environment's checked model (only the selected ones with --env), in promotion order."""
    return environments.load(opts.values, _display(opts.values, opts.root), only=opts.envs)


def _on_disk_environments(root: Path) -> set[str]:
    rendered = root / layouts.RENDERED
    return {p.name for p in rendered.iterdir() if p.is_dir()} if rendered.is_dir() else set()


def _refuse_replacing(opts: Options, envs: list[str]) -> None:
    """A values directory that renders none of the environments on disk would replace them all: the old route to a
    second environment (a copy of values/ with another cluster.environment) deleted rendered/prod/."""
    there = _on_disk_environments(opts.root)
    if there and not there & set(envs):
        shown = _display(opts.values, opts.root)
        raise UsageError(
            f"{shown}/ renders {', '.join(envs)}, but rendered/ holds {', '.join(sorted(there))}: rendering would delete "
            f"{' and '.join(f'rendered/{e}/' for e in sorted(there))} and its bootstrap in argocd/. An environment is an "
            f"overlay of the one model: list it in `environments:` and write values/environments/<env>.yaml "
            f"(README, Environments). To replace the tree on purpose, delete rendered/ first.")


def _files_under(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@dataclass(frozen=True)
class Inputs:
    """What the stages of one run read besides the tree they are given, as keys of the memo's stages: a stage whose
    key was seen before gives its stored result (the memo's salt covers the generator and its libraries)."""

    models: dict[str, bytes]  # environment -> the base files and its overlay (paths and bytes), and the directory's name
    everything: bytes  # every file of the values directory (what the READMEs over all environments read)
    charts: bytes  # the charts/ directory as staged: which files exist (validation checks the paths it refers to)
    crds: bytes  # the CRD schemas validation reads

    @classmethod
    def of(cls, opts: Options, staged: Path, envs: list[str]) -> "Inputs":
        from .upstream.crds import resolve_crd_dir

        crd_dir = resolve_crd_dir(opts.crds, Path(__file__).resolve().parents[1]) if opts.validate else None
        shown = _display(opts.values, opts.root)
        files = _files_under(opts.values)
        overlay = {env: f"{environments.OVERLAY_DIR}/{p.name}" for env, p in environments.overlay_files(opts.values).items()}
        base = {p: b for p, b in files.items() if p not in overlay.values()}

        def model(env: str) -> bytes:  # an environment is the base and its own overlay; the others do not change it
            own = {overlay[env]: files[overlay[env]]} if env in overlay else {}
            return memo.digest(shown, env, memo.digest_files({**base, **own}))
        return cls(models={env: model(env) for env in envs},
                   everything=memo.digest(shown, memo.digest_files(files)),
                   charts=memo.digest(*sorted(_files_under(staged / "charts"))) if (staged / "charts").is_dir() else b"",
                   crds=memo.digest_files(_files_under(crd_dir)) if crd_dir else b"")


@contextmanager
def generated(opts: Options, log: Log = stderr) -> Iterator[tuple[output.Tree, Path, Callable[[], None]]]:
    """Everything `make render` writes, complete in a staging directory; raises InvalidModel/HelmError before any write.
    Also yields remember(): called once the tree is what is on disk, it records the run for replay.

    With opts.envs, the other environments' files are kept as they are on disk, byte for byte."""
    started = time.perf_counter()
    with output.locked(opts.root), memo.using(memo_for(opts)), output.staging(opts.root) as staged:
        read = replay.key(opts) if opts.memo else None  # before anything is read
        said: list[str] = []
        told = log

        def log(msg: str) -> None:
            said.append(msg)
            told(msg)
        everything = environments.load(opts.values, _display(opts.values, opts.root))
        _refuse_replacing(opts, list(everything))
        if unknown := [e for e in opts.envs if e not in everything]:
            raise UsageError(f"no environment {', '.join(map(repr, unknown))}: the model has {', '.join(everything)}")
        chosen = [e for e in everything if not opts.envs or e in opts.envs]
        if (opts.root / "charts").is_dir():
            # Helm must see the schemas this run generates, not the ones committed before it.
            shutil.copytree(opts.root / "charts", staged / "charts", symlinks=True)
        inputs = Inputs.of(opts, staged, list(everything))
        tree = _build(everything, opts.root / "charts", inputs)
        for env in everything:
            if env not in chosen:
                _keep_as_on_disk(opts.root, tree, Layout(env))
        tree.write(staged, unless_in=opts.root)
        parsed: dict[str, objects.Parsed] = {env: objects.Parsed() for env in chosen}  # review's, then validation's
        loads: dict[str, list[capacity.PodLoad] | None] = {}  # the review's count of the pods, validation's too
        for env in chosen:
            if opts.hydrate:
                _hydrate(opts, everything[env], tree, staged, log)
                loads[env] = _review(opts, everything[env], tree, staged, inputs, log, parsed[env])
        if opts.validate:  # every environment's findings, not only the first failing one's
            failed = []
            for env in chosen:
                try:
                    _validate(opts, everything[env], tree, staged, inputs, log, parsed.pop(env), loads.pop(env, None))
                except ValidationFailed as exc:
                    failed.append(exc)
            if failed:
                raise ValidationFailed([line for exc in failed for line in exc.lines], sum(exc.count for exc in failed))
        what = f"{everything[chosen[0]].model.cluster.name}/{', '.join(chosen)}"
        log(f"rendered {len(tree.files)} files for {what} in {time.perf_counter() - started:.2f}s")

        def remember() -> None:
            if read is not None:
                replay.store(opts, read, tree, said, what)
        yield tree, staged, remember


def _build(envs: dict[str, environments.Loaded], charts_dir: Path, inputs: Inputs) -> output.Tree:
    """render.build, keyed by the model and which local charts exist (it writes a values schema for each)."""
    present = [c for c in helmvalues.chart_values() if (charts_dir / c / "Chart.yaml").is_file()]
    return memo.stage("build", memo.digest(inputs.everything, *present), lambda: render.build(envs, charts_dir),
                      lambda tree: {"files": {p: b.decode("utf-8") for p, b in tree.files.items()},
                                    "managed": sorted(tree.managed_files)},
                      lambda d: output.Tree({p: s.encode("utf-8") for p, s in d["files"].items()}, set(d["managed"])))


def _keep_as_on_disk(root: Path, tree: output.Tree, layout: Layout) -> None:
    """An environment not selected: its files are what is committed, not what the model would make of them now."""
    for path in [p for p in tree.files if layout.owns(p)]:
        del tree.files[path]
    for path, data in output.read_generated(root).items():
        if layout.owns(path):
            tree.files[path] = data


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


def _hydrate(opts: Options, loaded: environments.Loaded, tree: output.Tree, staged: Path, log: Log) -> None:
    plan = loaded.plan
    layout = plan.layout
    # By Application name (what helm and the hydration cache know), each with its component (its files' name).
    by_name = {}
    for comp in plan.components:
        app = yamlio.load_all(tree.files[layout.app_file(comp.name)].decode())[0]
        by_name[app["metadata"]["name"]] = (comp.name, app)
    apps = {name: app for name, (_, app) in by_name.items()}
    file_of = {name: comp for name, (comp, _) in by_name.items()}

    def chart_source(name: str, version: str, repo: str) -> Path:
        return charts.resolve_chart(name, version, repo, opts.charts)

    invocations = [_unchanged_from(opts.root, inv) for inv in (hydrate.invocation(app, staged, chart_source)
                                                                for app in apps.values()) if inv is not None]
    if not invocations:
        return
    helm = find_helm()
    # The manifest files of an app are keyed by its helm inputs (chart, values, flags) and its Application (the
    # fields it ignores are blanked): an app whose key was seen before is neither rendered nor re-emitted.
    keys = hydrate.digests(invocations, staged, helm)
    layout_key = {inv.app: memo.digest(keys[inv.app], tree.files[layout.app_file(file_of[inv.app])], layout.environment)
                  for inv in invocations}
    m = memo.active()
    made = {inv.app: found for inv in invocations
            if m is not None and (found := m.lookup("stage-manifests", layout_key[inv.app])) is not None}
    todo = [inv for inv in invocations if inv.app not in made]
    result = hydrate.hydrate(todo, staged, helm, opts.cache_dir / "hydrate", opts.jobs,
                             progress=Progress("helm template"))
    unexplained = []
    for inv in todo:
        out = result.outputs[inv.app]
        by_key = {hydrate.key_of(d): d for d in out.docs}
        for key, path in result.flaps.get(inv.app, []):
            doc = by_key.get(key)
            if path and doc is not None and _covered(apps[inv.app], key, doc, path):
                _blank(doc, path)
            else:
                unexplained.append(f"{layout.app_file(file_of[inv.app])}: {'/'.join(p for p in key if p)}: "
                                   f"{format_loc(path) or '(the whole object)'} differs between two renders of "
                                   f"{inv.shown_chart}")
    if unexplained:
        raise HelmError("output that changes on every render (Argo CD would report OutOfSync forever): turn the "
                        "generation off in the model, or let the Application ignore exactly these fields:\n  "
                        + "\n  ".join(unexplained))
    emitted = []  # (app, path, sources, docs, notes) of every file of the apps rendered: emitted together
    for inv in todo:
        out = result.outputs[inv.app]
        chart = inv.shown_chart if inv.chart.suffix == ".tgz" else inv.chart.relative_to(staged).as_posix()
        sources = [f"{layout.app_file(file_of[inv.app])} (helm template {chart})"]
        notes = [f"Not applied by Argo CD, so left out: {d}" for d in out.dropped]
        emitted += [(inv.app, path, sources, docs, what)
                    for path, docs, what in ((layout.manifest_file(file_of[inv.app]), out.resources, notes),
                                             (layout.crds_file(file_of[inv.app]), out.crds, [])) if docs]
        made[inv.app] = {"files": {}, "objects": len(out.docs)}
    texts = render.yaml_files([(sources, docs) for _, _, sources, docs, _ in emitted],
                              notes=[what for *_, what in emitted])
    for (app, path, *_), text in zip(emitted, texts):
        made[app]["files"][path] = text
    if m is not None:
        for inv in todo:
            m.store("stage-manifests", layout_key[inv.app], made[inv.app])
    added = []
    for inv in invocations:
        for path, text in made[inv.app]["files"].items():
            tree.add(path, text)
            added.append(path)
    tree.write(staged, unless_in=opts.root, only=added)
    objects = sum(made[inv.app]["objects"] for inv in invocations)
    sdk = f"; {result.in_process} through Helm's SDK ({hydrate.helmsdk.describe()})" if result.in_process else ""
    if result.fell_back:  # the output is the CLI's either way; the user should know the fast path did not work
        sdk += f", {len(result.fell_back)} of them by the CLI after the SDK failed: {'; '.join(result.fell_back[:3])}"
    log(f"hydrated {layout.environment}: {len(invocations)} apps ({objects} objects; {result.rendered} rendered, "
        f"{len(invocations) - result.rendered} unchanged{sdk}) with {helm.describe()}")


def _review(opts: Options, loaded: environments.Loaded, tree: output.Tree, staged: Path, inputs: Inputs,
            log: Log, parsed: objects.Parsed | None = None) -> list[capacity.PodLoad] | None:
    """From the hydrated objects: rendered/<env>/README.md (the capacity table needs every pod), and the orphans
    (what the model declares and nothing rendered uses) as warnings. Keyed by the model and the environment's
    Applications and manifests (what overview.env_objects reads). Returns the pods' loads when it counted them
    (not when the memo had the review): the capacity check of the same manifests counts the same."""
    env = loaded.model.cluster.environment
    path = loaded.plan.layout.overview_file
    read = overview.env_files(tree.files, env)
    counted = []

    def review() -> tuple[str, list[str]]:
        objs = overview.env_objects(read, env, parsed)
        # The page's table and the orphan nodes both count them; from the manifests, as validation's check does.
        loads = capacity.loads([o for o in objs if loaded.plan.layout.in_manifests(o.source)], loaded.model)
        counted.append(loads)
        page = overview.page(objs, loaded.plan, f"{_display(opts.values, opts.root)}/ (environment {env})", loads)
        return page, [str(loaded.source.problem(f)) for f in orphans.find(objs, loaded.model, loads)]
    page, warnings = memo.stage("review", memo.digest(inputs.models[env], memo.digest_files(read)), review,
                                lambda r: [r[0], r[1]], lambda d: (d[0], d[1]))
    tree.add(path, page)
    tree.write(staged, unless_in=opts.root, only=[path])
    for warning in warnings:
        log(f"warning: {warning} (in {env})")
    return counted[0] if counted else None


environment_files = layouts.environment_files


def _validate(opts: Options, loaded: environments.Loaded, tree: output.Tree, staged: Path, inputs: Inputs,
              log: Log, parsed: objects.Parsed | None = None, loads: list[capacity.PodLoad] | None = None) -> None:
    started = time.perf_counter()
    env = loaded.model.cluster.environment
    files = environment_files(tree.files, env)
    # Keyed by all it reads: the environment's files, the model (waivers, the fields findings point at), which
    # chart files exist, and the CRD schemas.
    report = memo.stage("validate", memo.digest(inputs.models[env], inputs.charts, inputs.crds, memo.digest_files(files)),
                        lambda: validation.validate_files(files, staged, loaded, loaded.model.cluster.kubernetes_version,
                                                          opts.crds, parsed, loads),
                        validation.Report.to_json, validation.Report.from_json)
    if any(i.check == "capacity" for i in report.issues):
        committed = environment_files(output.read_generated(opts.root), env)
        if any(loaded.plan.layout.owns(p) for p in committed):  # what the change did: against the tree a reviewer compares with
            report = validation.capacity_since(report, files, loaded, committed)
    for reason in report.lines()[len(report.issues):]:
        log(reason)
    if not report.ok:
        raise ValidationFailed(report.lines(), len(report.issues))
    log(f"validated {env}: {report.documents} objects in {time.perf_counter() - started:.2f}s: no findings")


def render_to_disk(opts: Options, log: Log = stderr, replayed: bool = True) -> output.Tree:
    """Render and swap the tree in; nothing is redone when replay finds the inputs and the tree as the last run left
    them (replayed=False: the caller has just tried that)."""
    if replayed and (tree := replay.replay(opts, log)) is not None:
        return tree
    with generated(opts, log) as (tree, staged, remember):
        output.swap(opts.root, staged, tree)
        remember()
    return tree


def check(opts: Options, log: Log = stderr, replayed: bool = True) -> list[str]:
    """The diffs between what is on disk and what a render would write (none when replay finds them equal)."""
    if replayed and replay.replay(opts, log) is not None:
        return []
    with generated(opts, log) as (tree, _, remember):
        remember()  # what a render would write, whatever is on disk: a replay compares the disk with it
        return output.drift(opts.root, tree)


def validate_on_disk(opts: Options) -> validation.Report:
    """Validate the committed tree of each environment; its model ties findings to their fields and supplies the
    waivers."""
    with output.locked(opts.root):
        with memo.using(memo_for(opts)):
            envs = load(opts)
        files = output.read_generated(opts.root)
    reports = []
    with memo.using(memo_for(opts)):
        for env, loaded in envs.items():
            reports.append(validation.validate_files(environment_files(files, env), opts.root, loaded,
                                                     loaded.model.cluster.kubernetes_version, opts.crds))
    return validation.Report(sorted(i for r in reports for i in r.issues), [w for r in reports for w in r.waived],
                             sum(r.documents for r in reports))


def capacity_on_disk(opts: Options) -> dict[str, list[str]]:
    """The capacity table of each environment (opts.envs, else all), from its committed manifests."""
    with output.locked(opts.root):
        with memo.using(memo_for(opts)):
            envs = load(opts)
        files = output.read_generated(opts.root)
    out = {}
    for env, loaded in envs.items():  # load() refused an environment the model does not have
        layout = Layout(env)
        if not any(layout.in_manifests(p) for p in files):
            raise UsageError(f"{layout.manifest_file('*')} not found: run `make render` first (the table counts the "
                             "hydrated pods)")
        out[env] = overview.text_table(overview.env_objects(files, env), loaded.model)
    return out
