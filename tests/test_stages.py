"""Stages keyed by what they read: nothing changed, nothing recomputed; any input changed, its stages run again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import REPO, copy_repo, edit
from generator import memo, pipeline
from generator.hydrate import hydrate
from generator.render import overview, render
from generator.upstream import crds
from generator.validate import orphans, validation
from generator.write import output


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for top in output.MANAGED_DIRS for p in sorted((root / top).rglob("*")) if p.is_file()}


class Calls:
    """Counts the runs of the real stage functions, by environment where they have one."""

    def __init__(self, monkeypatch):
        self.validated: list[str] = []
        self.reviewed: list[str] = []
        self.built = 0
        self.helm_apps: list[str] = []
        self.helm_values: list[str] = []  # the value files of those helm runs, as paths in the repository
        real_validate, real_page, real_build, real_hydrate = (validation.validate_files, overview.page, render.build,
                                                             hydrate.hydrate)

        def validate_files(files, repo, loaded, *a, **k):
            self.validated.append(loaded.model.cluster.environment)
            return real_validate(files, repo, loaded, *a, **k)

        def page(objs, plan, *a, **k):
            self.reviewed.append(plan.environment)
            return real_page(objs, plan, *a, **k)

        def build(*a, **k):
            self.built += 1
            return real_build(*a, **k)

        def hydrate_(invocations, *a, **k):
            self.helm_apps += [inv.app for inv in invocations]
            self.helm_values += [name for inv in invocations for name in inv.value_names]
            return real_hydrate(invocations, *a, **k)
        # Wrappers that only count and call the real functions: pytest's own setattr, so that these tests keep the
        # memo they rendered with before counting (conftest's monkeypatch gives a patched test a memo of its own).
        for target, name, value in ((validation, "validate_files", validate_files), (overview, "page", page),
                                    (render, "build", build), (hydrate, "hydrate", hydrate_)):
            pytest.MonkeyPatch.setattr(monkeypatch, target, name, value)

    def reset(self) -> None:
        self.validated, self.reviewed, self.built, self.helm_apps, self.helm_values = [], [], 0, [], []


@pytest.fixture
def repo(tmp_path: Path):
    cache = tmp_path / "cache"
    if (REPO / ".cache" / "hydrate").is_dir():  # helm's outputs, so the first render does not run helm 51 times
        shutil.copytree(REPO / ".cache" / "hydrate", cache / "hydrate")
    return copy_repo(tmp_path / "repo"), cache


def run(root: Path, cache: Path, log: list[str] | None = None, **kw) -> None:
    pipeline.render_to_disk(pipeline.Options(root=root, values=root / "values", cache=cache, **kw),
                            log=(log.append if log is not None else lambda _: None))


def test_nothing_changed_recomputes_no_stage_and_writes_the_same_bytes(repo, monkeypatch) -> None:
    root, cache = repo
    calls = Calls(monkeypatch)
    first: list[str] = []
    run(root, cache, first)
    assert sorted(calls.validated) == sorted(calls.reviewed) == ["dev", "prod", "staging"] and calls.built == 1
    before = tree(root)
    calls.reset()
    again: list[str] = []
    run(root, cache, again)
    assert (calls.validated, calls.reviewed, calls.built, calls.helm_apps) == ([], [], 0, [])
    assert tree(root) == before
    # What the stored stages said is said again: waivers, validation summaries, orphan warnings.
    assert [l for l in again if l.startswith("waived:")] == [l for l in first if l.startswith("waived:")] != []
    cold = copy_repo(root.parent / "cold")
    run(cold, root.parent / "empty-cache", memo=False)
    assert tree(cold) == before  # and it is what a render without any memo writes


def test_a_change_to_one_environment_reruns_only_its_stages(repo, monkeypatch) -> None:
    root, cache = repo
    run(root, cache)
    before = tree(root)
    calls = Calls(monkeypatch)
    edit(root / "values" / "environments" / "dev.yaml", "replicas: 1", "replicas: 2")
    run(root, cache)
    assert calls.validated == ["dev"] and calls.reviewed == ["dev"]
    assert calls.built == 1  # the tree is built from every environment's model
    # helm runs for exactly the apps whose value files changed bytes, and nothing else does
    changed = sorted(p for p, data in tree(root).items() if before.get(p) != data)
    values = [p for p in changed if "/values/" in p]
    assert values and all(p.startswith("rendered/dev/") for p in changed)
    assert sorted(calls.helm_values) == values and len(calls.helm_apps) == len(values)


def test_a_waiver_reason_reaches_the_log_although_no_file_changes(repo, monkeypatch) -> None:
    """The model is part of validation's key even where the files it validates are the same bytes."""
    root, cache = repo
    run(root, cache)
    text = (root / "values" / "waivers.yaml").read_text()
    reason = "Grafana itself has both probes."
    assert reason in text
    edit(root / "values" / "waivers.yaml", reason, "Grafana has both probes (reason reworded).")
    log: list[str] = []
    run(root, cache, log)
    waived = [l for l in log if l.startswith("waived:") and "grafana-sc-dashboard" in l]
    assert waived and all(l.endswith("Grafana has both probes (reason reworded).") for l in waived)


def test_other_crd_schemas_rerun_validation(repo, monkeypatch, tmp_path: Path) -> None:
    root, cache = repo
    source = crds.resolve_crd_dir(None, REPO)
    copy = Path(shutil.copytree(source, tmp_path / "crds"))
    run(root, cache, crds=copy)
    calls = Calls(monkeypatch)
    run(root, cache, crds=copy)
    assert calls.validated == []
    first = sorted(p for p in copy.rglob("*.yaml") if p.is_file())[0]
    first.write_bytes(first.read_bytes() + b"\n# the same schema, other bytes\n")
    run(root, cache, crds=copy)
    assert sorted(calls.validated) == ["dev", "prod", "staging"]


def test_a_stage_key_is_every_part_and_their_boundaries() -> None:
    assert memo.digest(b"ab", b"c") != memo.digest(b"a", b"bc") != memo.digest(b"abc")
    assert memo.digest("x") == memo.digest(b"x")
    assert memo.digest_files({"a": b"1", "b": b"2"}) == memo.digest_files({"b": b"2", "a": b"1"})
    assert memo.digest_files({"a": b"1"}) != memo.digest_files({"b": b"1"}) != memo.digest_files({"b": b"2"})


def test_without_a_memo_a_stage_is_computed_every_time() -> None:
    runs = []
    for _ in range(2):
        assert memo.stage("t", b"k", lambda: runs.append(1) or 7, str, int) == 7
    assert len(runs) == 2


def test_a_stage_is_stored_encoded_and_given_back_decoded(tmp_path: Path) -> None:
    runs = []
    with memo.using(memo.Memo(tmp_path)):
        assert memo.stage("t", b"k", lambda: runs.append(1) or (1, "a"), list, tuple) == (1, "a")
        assert memo.stage("t", b"k", lambda: runs.append(1) or (2, "b"), list, tuple) == (1, "a")
        assert memo.stage("t", b"other", lambda: runs.append(1) or (3, "c"), list, tuple) == (3, "c")
    assert len(runs) == 2


def test_orphan_warnings_are_said_again_from_the_stored_review(repo, monkeypatch) -> None:
    root, cache = repo
    real = orphans.find
    monkeypatch.setattr(orphans, "find", lambda objs, model, loads=None: real(objs, model, loads) + [
        orphans.Finding(("nodes",), "a warning the test adds")])
    logs: list[list[str]] = [[], []]
    for log in logs:
        run(root, cache, log)
    said = [[l for l in log if "a warning the test adds" in l] for log in logs]
    assert said[0] == said[1] and len(said[0]) == 3  # once per environment, on both runs


def test_a_test_that_patches_the_generator_gets_a_memo_of_its_own(monkeypatch, tmp_path: Path) -> None:
    """conftest's guard: a render with a patched function must never store its output where make render reads."""
    asked = tmp_path / "memo"
    assert memo.Memo(asked).dir.parent == asked  # nothing patched yet: the memo is where it is asked to be
    monkeypatch.setattr("os.sep", "/")  # not the generator's: changes nothing
    assert memo.Memo(asked).dir.parent == asked
    monkeypatch.setattr("generator.validate.orphans.find", orphans.find)
    assert not memo.Memo(asked).dir.is_relative_to(asked)
