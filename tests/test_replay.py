"""Replay: a render or check with every input as the last run read it, and its files on disk as it left them, has
nothing to redo. Anything else it reads changed, and it runs in full and writes what a render without a memo writes."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, copy_repo, edit
from generator import helm, pipeline
from generator.model import environments
from generator.options import Options
from generator.upstream import crds, upstream
from generator.write import output, replay


def tree(root: Path) -> dict[str, bytes]:
    return output.read_generated(root, chart_schemas=True)


class Loads:
    """Counts the full runs: every one loads the model, a replay never does. pytest's own setattr, so that the
    test keeps the memo it rendered with (conftest's gives a patched test a memo of its own)."""

    def __init__(self, monkeypatch):
        self.count = 0
        real = environments.load

        def load(*a, **k):
            self.count += 1
            return real(*a, **k)
        pytest.MonkeyPatch.setattr(monkeypatch, environments, "load", load)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One memo and hydration cache for the module: the roots differ, so no test replays another's run."""
    cache = tmp_path_factory.mktemp("replay-cache")
    if (REPO / ".cache" / "hydrate").is_dir():
        shutil.copytree(REPO / ".cache" / "hydrate", cache / "hydrate")
    return cache


@pytest.fixture
def opts(tmp_path: Path, cache: Path) -> Options:
    """A rendered copy of the repository whose chart archives and CRD schemas are copies the test may change."""
    root = copy_repo(tmp_path / "repo")
    upstream_charts = next(d for _, d in upstream.chart_dirs(None, REPO) if d.is_dir())
    opts = Options(root=root, values=root / "values", cache=cache,
                   crds=Path(shutil.copytree(crds.resolve_crd_dir(None, REPO), tmp_path / "crds")),
                   charts=Path(shutil.copytree(upstream_charts, tmp_path / "charts")))
    pipeline.render_to_disk(opts, log=lambda _: None)
    return opts


def render(opts: Options, log: list[str] | None = None) -> None:
    pipeline.render_to_disk(opts, log=log.append if log is not None else lambda _: None)


def full_run(opts: Options, tmp_path: Path) -> dict[str, bytes]:
    """What a run that redoes everything writes: the same inputs rendered in another root, which no record is for
    (its stages may come from the memo: tests/test_memo.py shows those give the bytes a memo-less render gives)."""
    other = copy_repo(tmp_path / "other", values=opts.values)
    shutil.rmtree(other / "charts")
    shutil.copytree(opts.root / "charts", other / "charts", symlinks=True)
    pipeline.render_to_disk(dataclasses.replace(opts, root=other, values=other / "values"), log=lambda _: None)
    return tree(other)


def test_nothing_changed_is_replayed_with_the_same_bytes_and_the_same_findings(opts, monkeypatch) -> None:
    before = tree(opts.root)
    loads = Loads(monkeypatch)
    full: list[str] = []
    render(dataclasses.replace(opts, memo=False), full)  # without the memo nothing is replayed: it does everything
    assert loads.count == 1 and tree(opts.root) == before
    again: list[str] = []
    render(opts, again)
    render(opts)
    assert loads.count == 1 and tree(opts.root) == before
    assert [l for l in again if l.startswith("waived:")] == [l for l in full if l.startswith("waived:")] != []
    assert pipeline.check(opts, log=lambda _: None) == [] and loads.count == 1


def _model(opts: Options) -> None:
    edit(opts.values / "services.yaml", "auth-api, tag: v0.6.0", "auth-api, tag: v0.6.1")


def _template(opts: Options) -> None:  # same output, other bytes: still read again
    path = opts.root / "charts" / "api" / "templates" / "hpa.yaml"
    path.write_text(path.read_text() + "{{/* a comment changes no output */}}\n")


def _unowned_schema(opts: Options) -> None:  # a values schema the render does not generate is a chart's input
    (opts.root / "charts" / "lib" / "values.schema.json").write_text('{"type": "object"}\n')


def _archive_dir(opts: Options) -> None:
    (opts.charts / "NOTES.txt").write_text("another file where the archives are\n")


def _crd_schema(opts: Options) -> None:
    first = sorted(p for p in opts.crds.rglob("*.yaml") if p.is_file())[0]
    first.write_bytes(first.read_bytes() + b"\n# the same schema, other bytes\n")


def _other_helm(opts: Options, monkeypatch, tmp_path: Path) -> None:
    copy = tmp_path / "bin" / "helm"
    copy.parent.mkdir()
    shutil.copy2(helm.find_helm().path, copy)
    monkeypatch.setenv("HELM", str(copy))
    helm.find_helm.cache_clear()


@pytest.mark.parametrize("change", [_model, _template, _unowned_schema, _archive_dir, _crd_schema, _other_helm])
def test_any_input_changed_runs_in_full_and_writes_what_a_full_run_writes(change, opts, monkeypatch, tmp_path) -> None:
    loads = Loads(monkeypatch)
    if change is _other_helm:
        change(opts, monkeypatch, tmp_path)
    else:
        change(opts)
    try:
        render(opts)
        assert loads.count == 1
        render(opts)
        assert loads.count == 1  # and the run it made is replayed in turn
        assert tree(opts.root) == full_run(opts, tmp_path)
    finally:
        helm.find_helm.cache_clear()


def _edited(root: Path) -> None:
    path = root / "rendered" / "prod" / "manifests" / "auth.yaml"
    path.write_bytes(path.read_bytes().replace(b"replicas:", b"replicas:  ", 1))


def _added(root: Path) -> None:
    (root / "rendered" / "prod" / "manifests" / "stray.yaml").write_text("kind: ConfigMap\n")


def _removed(root: Path) -> None:
    (root / "argocd" / "prod" / "root.yaml").unlink()


def _schema_edited(root: Path) -> None:
    path = root / "charts" / "api" / "values.schema.json"
    path.write_bytes(path.read_bytes() + b" ")


@pytest.mark.parametrize("tamper", [_edited, _added, _removed, _schema_edited])
def test_a_generated_file_changed_on_disk_is_rendered_again(tamper, opts, monkeypatch) -> None:
    before = tree(opts.root)
    tamper(opts.root)
    loads = Loads(monkeypatch)
    assert pipeline.check(opts, log=lambda _: None) != []  # check sees the drift: it ran in full
    assert pipeline.check(opts, log=lambda _: None) != [] and loads.count == 2  # and never replays as no drift
    render(opts)
    assert loads.count == 3 and tree(opts.root) == before


@pytest.mark.parametrize("other", [{"hydrate": False, "validate": False}, {"envs": ("dev",)}])
def test_other_options_are_another_run(other, opts, monkeypatch) -> None:
    before = tree(opts.root)
    loads = Loads(monkeypatch)
    render(dataclasses.replace(opts, **other))
    assert loads.count == 1
    render(opts)
    assert tree(opts.root) == before


def test_an_input_changed_while_the_run_read_it_records_nothing(opts, monkeypatch) -> None:
    """The key is taken before the model is read: a run whose inputs are other bytes when it ends must not be stored
    under it, or going back to the keyed bytes would replay the other bytes' output."""
    before = tree(opts.root)
    real = environments.load

    def load_after_an_edit(*a, **k):
        _model(opts)  # after the key was taken, before the model is read
        return real(*a, **k)
    pytest.MonkeyPatch.setattr(monkeypatch, environments, "load", load_after_an_edit)
    pipeline.render_to_disk(opts, log=lambda _: None, replayed=False)  # keyed by v0.6.0, read and wrote v0.6.1
    pytest.MonkeyPatch.setattr(monkeypatch, environments, "load", real)
    assert tree(opts.root) != before
    edit(opts.values / "services.yaml", "auth-api, tag: v0.6.1", "auth-api, tag: v0.6.0")  # the keyed bytes again
    render(opts)  # must not replay the v0.6.1 output
    assert tree(opts.root) == before


@pytest.fixture
def keyed(tmp_path: Path, monkeypatch) -> Options:
    """Options whose every input is a copy in tmp_path, the lock files' directory included."""
    root = copy_repo(tmp_path / "repo")
    locks = tmp_path / "locks"
    locks.mkdir()
    for lock in ("charts.lock", "schemas.lock"):
        shutil.copy(REPO / lock, locks / lock)
    (tmp_path / "archives").mkdir()
    (tmp_path / "schemas").mkdir()
    monkeypatch.setattr(helm, "REPO_ROOT", locks)
    monkeypatch.setenv("ECO2_CACHE", str(locks / ".cache"))
    return Options(root=root, values=root / "values", crds=tmp_path / "schemas", charts=tmp_path / "archives")


def _relinked(o: Options) -> None:
    link = o.root / "charts" / "api" / "charts" / "lib"
    link.unlink()
    os.symlink("../../worker", link)


@pytest.mark.parametrize("change", [
    lambda o: (o.values / "extra.yaml").write_text("# x\n"),
    lambda o: (o.root / "charts" / "api" / "NOTES").write_text("x"),
    _relinked,  # a symlink by its target
    lambda o: (o.charts / "x").write_text("x"),
    lambda o: (o.crds / "x").write_text("x"),
    lambda o: (helm.REPO_ROOT / "charts.lock").write_text("# other\n"),
    lambda o: (helm.REPO_ROOT / "schemas.lock").write_text("# other\n"),
], ids=["model", "chart", "chart symlink", "archives", "crds", "charts.lock", "schemas.lock"])
def test_the_key_covers_each_input(change, keyed) -> None:
    before = replay.key(keyed)
    assert replay.key(keyed) == before
    change(keyed)
    assert replay.key(keyed) != before


@pytest.mark.parametrize("field", ["root", "values", "hydrate", "validate", "crds", "charts", "envs"])
def test_the_key_covers_each_option(field, keyed, tmp_path) -> None:
    other = {"hydrate": False, "validate": False, "envs": ("dev",)}.get(field, tmp_path / "elsewhere")
    assert replay.key(dataclasses.replace(keyed, **{field: other})) != replay.key(keyed)


def test_the_key_covers_every_helm_a_run_could_pick(keyed, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("HELM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    before = replay.key(keyed)
    pinned = helm.REPO_ROOT / ".cache" / "tools" / f"helm-{helm.HELM_VERSION}" / "helm"  # fetched by the run
    pinned.parent.mkdir(parents=True)
    pinned.write_text("#!/bin/sh\n")
    assert replay.key(keyed) != before
    before = replay.key(keyed)
    on_path = tmp_path / "bin" / "helm"
    on_path.parent.mkdir()
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    assert replay.key(keyed) != before
    before = replay.key(keyed)
    on_path.write_text("#!/bin/sh\n# replaced\n")
    assert replay.key(keyed) != before
    before = replay.key(keyed)
    monkeypatch.setenv("HELM", str(pinned))
    assert replay.key(keyed) != before


def test_the_key_leaves_out_the_schemas_it_generates(tmp_path) -> None:
    root = copy_repo(tmp_path / "repo")
    o = Options(root=root, values=root / "values")
    before = replay.key(o)
    (root / "charts" / "api" / "values.schema.json").write_text("{}")  # an output, compared on disk instead
    assert replay.key(o) == before
    (root / "charts" / "api" / "templates" / "values.schema.json").write_text("{}")  # not one: an input
    assert replay.key(o) != before


def test_the_cli_replays_without_loading_the_model(tmp_path: Path, cache: Path) -> None:
    root = copy_repo(tmp_path / "repo")
    env = {**os.environ, "ECO2_CACHE": str(cache), "HELM": str(helm.find_helm().path)}  # nothing fetched mid-run

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-X", "importtime", "-m", "generator", *args, "--root", str(root)],
                              env=env, capture_output=True, text=True, timeout=600)
    first = cli("render")
    assert first.returncode == 0, first.stderr
    assert " generator.model.model" in first.stderr  # importtime lists it: the full run loaded it
    for command in ("render", "check"):
        again = cli(command)
        assert again.returncode == 0, again.stderr
        imported = {line.rsplit("|", 1)[-1].strip() for line in again.stderr.splitlines() if line.startswith("import time:")}
        assert not imported & {"generator.model.model", "pydantic", "jsonschema", "generator.pipeline", "generator.hydrate.hydrate"}
        assert [l for l in again.stderr.splitlines() if l.startswith("waived:")] == \
            [l for l in first.stderr.splitlines() if l.startswith("waived:")]
