"""The memo of parsed, emitted and validated YAML changes time, never results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import REPO, copy_repo
from generator import memo, parallel, pipeline, yamlio
from generator.write import output


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for top in output.MANAGED_DIRS for p in sorted((root / top).rglob("*")) if p.is_file()}


def render(root: Path, cache: Path, use_memo: bool) -> None:
    pipeline.render_to_disk(pipeline.Options(root=root, values=root / "values", cache=cache, memo=use_memo),
                            log=lambda _: None)


def test_a_render_from_the_memo_is_byte_identical_to_one_without(tmp_path: Path):
    cache = tmp_path / "cache"
    shutil.copytree(REPO / ".cache" / "hydrate", cache / "hydrate") if (REPO / ".cache" / "hydrate").is_dir() else None
    cold = copy_repo(tmp_path / "cold")
    render(cold, cache, use_memo=False)
    assert not (cache / "memo").exists()
    warm = copy_repo(tmp_path / "warm")
    render(warm, cache, use_memo=True)  # fills the memo
    m = memo.Memo(cache / "memo")
    stored = sum(1 for _ in (cache / "memo").rglob("*.json"))
    assert stored > 100
    render(warm, cache, use_memo=True)  # served from it
    assert files(warm) == files(cold)
    assert m.root.is_dir()


def test_a_damaged_entry_is_computed_again(tmp_path: Path):
    m = memo.Memo(tmp_path)
    text = "a: 1\n---\nb: [x, y]\n"
    with memo.using(m):
        assert yamlio.load_all(text) == [{"a": 1}, {"b": ["x", "y"]}]
    (entry,) = list(tmp_path.rglob("*.json"))
    entry.write_text('{"truncated', encoding="utf-8")
    with memo.using(m):
        assert yamlio.load_all(text) == [{"a": 1}, {"b": ["x", "y"]}]
    assert json.loads(entry.read_text()) == [{"a": 1}, {"b": ["x", "y"]}]
    assert (m.hits, m.misses) == (0, 2)
    with memo.using(m):
        yamlio.load_all(text)
    assert m.hits == 1


def test_what_json_would_change_is_never_stored(tmp_path: Path):
    m = memo.Memo(tmp_path)
    with memo.using(m):
        assert yamlio.load_all("1: one\nx: 2\n") == [{1: "one", "x": 2}]
        assert yamlio.load_all("1: one\nx: 2\n") == [{1: "one", "x": 2}]
    assert not list(tmp_path.rglob("*.json"))
    assert memo.json_safe({"a": [1, 2.5, None, True]}) and not memo.json_safe({"a": float("nan")})
    assert not memo.json_safe([("tuple",)])


def test_the_salt_changes_with_the_code(tmp_path: Path, monkeypatch):
    before = memo.salt()
    memo.salt.cache_clear()
    fake = tmp_path / "generator"
    shutil.copytree(Path(memo.__file__).parent, fake, ignore=shutil.ignore_patterns("__pycache__"))
    (fake / "extra.py").write_text("X = 1\n")
    monkeypatch.setattr(memo, "__file__", str(fake / "memo.py"))
    try:
        assert memo.salt() != before
    finally:
        memo.salt.cache_clear()


def test_only_the_last_versions_are_kept(tmp_path: Path):
    import os
    import time
    for i in range(5):
        (tmp_path / f"old-{i}").mkdir()
        os.utime(tmp_path / f"old-{i}", (time.time() - 100 + i, time.time() - 100 + i))
    memo.Memo(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([memo.salt(), "old-4", "old-3"])


def test_a_model_from_the_memo_still_points_at_file_line_and_column(tmp_path: Path):
    """Its positions are parsed again on demand: the error is the same whether the model came from the memo or not."""
    from conftest import edit
    from generator.model import loader
    from generator.errors import InvalidModel

    root = copy_repo(tmp_path / "repo")
    edit(root / "values" / "services.yaml", "placement: {node: k8s-api-waste}", "placement: {node: k8s-api-wast}")
    messages = []
    for _ in range(3):  # without the memo, filling it, served from it
        with memo.using(memo.Memo(tmp_path / "memo") if messages else None) as m:
            try:
                loader.load(root / "values")
            except InvalidModel as exc:
                messages.append([str(p) for p in exc.problems])
    # The reads of the base and of the two overlays (dev, staging), and the checks of dev and staging, which pass
    # (their overlays place the service elsewhere); prod's fail, and failures are not kept.
    assert m.hits == 5
    assert messages[0] == messages[1] == messages[2]
    assert messages[0][0].startswith("values/services.yaml:") and "k8s-api-wast" in messages[0][0]


def test_validation_through_the_memo_finds_what_it_finds_without(tmp_path: Path):
    """Schema and credential findings are stored per file: from the memo, the same findings at the same documents."""
    from generator.validate import validation
    from generator.model.loader import load

    root = REPO  # the committed tree (rendered/ matches values/: make check)
    tree = {p: b for p, b in files(root).items() if p.startswith(("rendered/prod/", "argocd/prod/"))}
    manifests = "rendered/prod/manifests/waste.yaml"
    docs = yamlio.load_all(tree[manifests].decode())
    later = next(i for i, d in enumerate(docs) if i > 0 and d and d.get("kind") == "PodDisruptionBudget")
    docs[later]["spec"]["minAvailble"] = docs[later]["spec"].pop("minAvailable")  # a schema finding, not at doc 0
    rollout = next(i for i, d in enumerate(docs) if i > 0 and d and d.get("kind") == "Rollout")
    docs[rollout]["spec"]["template"]["spec"]["containers"][0].setdefault("env", []).append(
        {"name": "BROKER_URL", "value": "amqp://eco:hunter2@rabbitmq:5672/"})  # a credential in an object
    tree[manifests] = yamlio.dump_all(docs).encode()
    values = "rendered/prod/values/waste.yaml"
    tree[values] += b"extraEnv:\n  BROKER_URL: amqp://eco:hunter2@rabbitmq:5672/\n"  # a credential in a values file
    loaded = load(root / "values")

    def report() -> list:
        return validation.validate_files(tree, root, loaded, loaded.model.cluster.kubernetes_version).issues
    plain = report()
    assert {(i.source, i.doc, i.check, i.object) for i in plain} >= {
        (manifests, later, "schema", "PodDisruptionBudget api/waste"), (values, 0, "policy.credentials", "values"),
        (manifests, rollout, "policy.credentials", "Rollout api/waste")}
    m = memo.Memo(tmp_path / "memo")
    with memo.using(m):
        cold = report()
        hits = m.hits
        warm = report()
    assert plain == cold == warm and m.hits > hits
    # The environment's index of those findings answers alone: without the per-file entries, nothing is computed.
    for stage in ("schema-file", "credentials-file"):
        shutil.rmtree(Path(m._dir) / stage)
    import generator.validate.kubeschema as kubeschema
    from generator.validate import policy

    real = (kubeschema.Validator.validate, policy.credential_problems)
    kubeschema.Validator.validate = lambda *a: pytest.fail("validated again")
    policy.credential_problems = lambda *a: pytest.fail("scanned again")
    try:
        with memo.using(m):
            assert report() == plain
    finally:
        kubeschema.Validator.validate, policy.credential_problems = real
    # A file that changes is looked at again, not taken from the index: its new finding shows.
    tree[values] += b"moreEnv:\n  DATABASE_URL: postgres://eco:hunter3@postgresql:5432/eco\n"
    with memo.using(m):
        again = report()
    assert again == report()  # as without the memo
    assert len([i for i in again if i.source == values]) > len([i for i in plain if i.source == values])


@pytest.mark.skipif(not parallel.available(), reason="fork-based split only on Linux with 2+ CPUs")
def test_validation_split_with_a_forked_process_finds_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The files not in the memo are checked (schema, credentials) half in a forked child (parallel.halves): the same
    findings at the same documents as one process, with and without the memo, and the child's half is stored like
    the rest."""
    from generator.validate import validation
    from generator.model.loader import load

    tree = {p: b for p, b in files(REPO).items() if p.startswith(("rendered/prod/", "argocd/prod/"))}
    manifests = "rendered/prod/manifests/waste.yaml"
    docs = yamlio.load_all(tree[manifests].decode())
    pdb = next(i for i, d in enumerate(docs) if d and d.get("kind") == "PodDisruptionBudget")
    docs[pdb]["spec"]["minAvailble"] = docs[pdb]["spec"].pop("minAvailable")
    tree[manifests] = yamlio.dump_all(docs).encode()
    tree["rendered/prod/manifests/zz-broken.yaml"] = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: [1]\n"
    loaded = load(REPO / "values")
    split: list[int] = []  # how many files were left to check, each time they were split
    real = parallel.halves

    def halves(fn, items):
        out = real(fn, items)
        if len(items) >= parallel.MIN_ITEMS:
            split.append(len(items))
        return out
    monkeypatch.setattr(parallel, "halves", halves)

    def report() -> list:
        return validation.validate_files(tree, REPO, loaded, loaded.model.cluster.kubernetes_version).issues
    monkeypatch.setattr(parallel, "MIN_ITEMS", 10**9)
    alone = report()
    assert {(i.source, i.check) for i in alone} >= {(manifests, "schema"), ("rendered/prod/manifests/zz-broken.yaml", "schema")}
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    assert report() == alone and split  # without a memo, every file is split
    m = memo.Memo(tmp_path / "memo")
    with memo.using(m):
        assert report() == alone  # filling the memo, split
        split.clear()
        assert report() == alone and split == []  # every file from the memo, the child's half included


def test_the_model_checks_of_a_model_that_passed_them_are_not_run_again(tmp_path: Path, monkeypatch):
    from conftest import VALUES, edit
    from generator.model import checks, environments
    from generator.errors import InvalidModel

    ran: list[str] = []
    real = checks.run
    monkeypatch.setattr(checks, "run", lambda model: ran.append(model.cluster.environment) or real(model))
    values = Path(shutil.copytree(VALUES, tmp_path / "values"))
    environments.load(values)  # no memo: always checked
    environments.load(values)
    assert ran == ["dev", "staging", "prod"] * 2
    with memo.using(memo.Memo(tmp_path / "memo")):
        ran.clear()
        environments.load(values)
        environments.load(values)  # the same data: passed before
        assert ran == ["dev", "staging", "prod"]
        edit(values / "services.yaml", "replicas: 2", "replicas: 3")  # auth's: checked again where it changes the model
        environments.load(values)
        assert ran == ["dev", "staging", "prod", "staging", "prod"]  # dev's overlay sets auth's replicas itself
        ran.clear()
        edit(values / "infra.yaml", "maxmemory: 1Gi", "maxmemory: 2Gi")  # fails redis's rule: never remembered
        for _ in range(2):
            with pytest.raises(InvalidModel, match="maxmemory 2Gi must stay below"):
                environments.load(values)
        assert ran == ["dev", "staging", "prod"] * 2


def test_emitted_files_come_back_from_their_index_and_only_what_changed_is_emitted(tmp_path: Path, monkeypatch):
    batches = [[{"name": f"app-{i}", "replicas": i, "env": [{"name": "A", "value": str(i)}]}] for i in range(30)]
    plain = yamlio.dump_each(batches)  # no memo
    m = memo.Memo(tmp_path / "memo")
    with memo.using(m):
        assert yamlio.dump_each(batches, "apps of prod") == plain
    shutil.rmtree(Path(m._dir) / "dump")  # the per-entry copies gone: the index alone answers
    emitted = []
    real = yamlio.dump
    monkeypatch.setattr(yamlio, "dump", lambda doc, *a: emitted.append(doc) or real(doc, *a))
    with memo.using(m):
        assert yamlio.dump_each(batches, "apps of prod") == plain and emitted == []
        batches[7] = [{"name": "app-7", "replicas": 70}]
        changed = yamlio.dump_each(batches, "apps of prod")
        assert emitted == [{"name": "app-7", "replicas": 70}]  # the one that changed, and only it
        assert yamlio.dump_each(batches, "apps of prod") == changed and len(emitted) == 1  # the index has it now
    monkeypatch.undo()
    assert changed == yamlio.dump_each(batches)  # as without the memo
