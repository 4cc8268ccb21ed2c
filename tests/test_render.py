"""Rendering as a whole: golden trees, byte determinism, all-or-nothing writes, drift detection, the CLI contract."""

from __future__ import annotations

import difflib
import os
import shutil
from pathlib import Path

import pytest

from conftest import REPO, copy_repo, edit, run_cli
from generator import pipeline
from generator.helm import find_helm
from generator.write import output

CASES = sorted(p for p in (Path(__file__).parent / "cases").iterdir() if (p / "values").is_dir())
GENERATED = ("rendered", "argocd")


def snapshot(root: Path, tops=output.MANAGED_DIRS) -> dict[str, bytes]:
    files = {}
    for top in tops:
        base = root / top
        for path in sorted(base.rglob("*")) if base.is_dir() else []:
            if path.is_file():
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def render(root: Path, values: Path | None = None) -> None:
    pipeline.render_to_disk(pipeline.Options(root=root, values=values or root / "values"), log=lambda _: None)


@pytest.fixture
def rendered_copy(tmp_path: Path) -> Path:
    root = copy_repo(tmp_path / "repo")
    render(root)
    return root


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case: Path, tmp_path: Path):
    root = copy_repo(tmp_path, case / "values")
    render(root)
    got, want = snapshot(root, GENERATED), snapshot(case / "expected", GENERATED)
    # eco2's expected tree is a set of symlinks to this repository's own output: `make render` updates it.
    if os.environ.get("UPDATE_GOLDEN") and not any((case / "expected" / top).is_symlink() for top in GENERATED):
        for top in GENERATED:
            shutil.rmtree(case / "expected" / top, ignore_errors=True)
            if (root / top).is_dir():
                shutil.copytree(root / top, case / "expected" / top)
        return
    diffs = []
    for rel in sorted(set(got) | set(want)):
        if got.get(rel) != want.get(rel):
            diffs.extend(difflib.unified_diff(
                want.get(rel, b"").decode().splitlines(True), got.get(rel, b"").decode().splitlines(True),
                f"expected/{rel}", f"rendered/{rel}"))
    assert not diffs, "".join(diffs[:200]) + "\nIf the new output is right: UPDATE_GOLDEN=1 make test (or make render for eco2)"


def test_repository_is_up_to_date():
    """The biggest golden: what is committed equals what values/ and charts/ produce (make check)."""
    diffs = pipeline.check(pipeline.Options(root=REPO, values=REPO / "values"), log=lambda _: None)
    assert diffs == [], "".join(diffs)[:5000]


def test_deterministic_across_hash_seeds_timezones_and_locales(tmp_path: Path):
    trees = []
    helm = str(find_helm().path)
    for i, env in enumerate([
        {"PYTHONHASHSEED": "0", "TZ": "UTC", "LC_ALL": "C", "LANG": "C"},
        {"PYTHONHASHSEED": "4242", "TZ": "Asia/Seoul", "LC_ALL": "C.UTF-8", "LANG": "ko_KR.UTF-8"},
    ]):
        root = copy_repo(tmp_path / f"run{i}")
        # An empty cache per run: helm really renders every chart twice instead of the second run reusing the first.
        env |= {"ECO2_CACHE": str(tmp_path / f"cache{i}"), "HELM": helm}
        result = run_cli("render", "--root", str(root), env=env)
        assert "17 rendered, 0 unchanged" in result.stderr, result.stderr
        assert result.returncode == 0, result.stderr
        schemas = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.glob("charts/*/values.schema.json"))}
        trees.append(snapshot(root) | schemas)
    assert trees[0] == trees[1]
    assert len(trees[0]) > 20


def test_invalid_model_changes_nothing(rendered_copy: Path):
    before = snapshot(rendered_copy)
    edit(rendered_copy / "values" / "services.yaml", "    replicas: 2\n", "    replicas: -1\n")
    result = run_cli("render", "--root", str(rendered_copy))
    assert result.returncode == 2
    assert snapshot(rendered_copy) == before
    assert not list(rendered_copy.glob(".render-*")), "a staging directory was left behind"


def test_replicas_minus_one_is_one_line_with_position(rendered_copy: Path):
    edit(rendered_copy / "values" / "services.yaml", "    replicas: 2\n", "    replicas: -1\n")
    result = run_cli("render", "--root", str(rendered_copy))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "values/services.yaml:18:5: services.auth.replicas: in staging, prod: input should be greater than or equal to 0 (got -1)"]
    assert "Traceback" not in result.stderr


def test_interrupted_swap_leaves_previous_tree(rendered_copy: Path, monkeypatch):
    before = snapshot(rendered_copy)
    edit(rendered_copy / "values" / "services.yaml", "tag: v0.6.0", "tag: v0.6.1")
    real_rename, calls = os.rename, []

    def flaky_rename(src, dst):
        calls.append(src)
        if len(calls) == 3:  # rendered/ is already swapped, argocd/ is half way
            raise OSError("disk went away")
        return real_rename(src, dst)

    monkeypatch.setattr(output.os, "rename", flaky_rename)
    with pytest.raises(OSError):
        render(rendered_copy)
    monkeypatch.undo()
    assert snapshot(rendered_copy) == before
    render(rendered_copy)
    assert snapshot(rendered_copy) != before


def test_removed_component_disappears(rendered_copy: Path):
    assert (rendered_copy / "rendered/prod/apps/recycle-info.yaml").exists()
    text = (rendered_copy / "values/services.yaml").read_text()
    start = text.index("  recycle-info:\n")
    end = text.index("  chat-llm:\n")
    (rendered_copy / "values/services.yaml").write_text(text[:start] + text[end:])
    for env in ("dev", "staging"):  # an overlay that still changed it would define a component of its own, half
        overlay = rendered_copy / f"values/environments/{env}.yaml"
        overlay.write_text("".join(l for l in overlay.read_text().splitlines(keepends=True) if "  recycle-info:" not in l))
    render(rendered_copy)
    leftovers = [p for p in snapshot(rendered_copy) if "recycle-info" in p]
    assert leftovers == []


def test_check_reports_drift_and_stale_files(rendered_copy: Path):
    clean = run_cli("check", "--root", str(rendered_copy))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    waste = rendered_copy / "rendered/prod/values/waste.yaml"
    waste.write_text(waste.read_text().replace("replicas: 2", "replicas: 3"))
    (rendered_copy / "rendered/prod/apps/stale.yaml").write_text("kind: Application\n")
    drift = run_cli("check", "--root", str(rendered_copy))
    assert drift.returncode == 1
    assert "-replicas: 3\n+replicas: 2\n" in drift.stdout
    assert "--- a/rendered/prod/apps/stale.yaml\n+++ /dev/null" in drift.stdout
    assert "run `make render`" in drift.stderr


def test_check_fails_when_a_chart_changes_without_rerender(rendered_copy: Path):
    template = rendered_copy / "charts/api/templates/serviceaccount.yaml"
    assert template.exists()
    template.write_text(template.read_text().replace("automountServiceAccountToken: false", "automountServiceAccountToken: false\nimagePullSecrets: []"))
    result = run_cli("check", "--root", str(rendered_copy))
    assert result.returncode == 1
    assert "rendered/prod/manifests/auth.yaml" in result.stdout


def test_libyaml_and_pure_python_emit_the_same_bytes():
    """Output must not depend on whether PyYAML was built with libyaml: compare both emitters on every generated file."""
    from generator import yamlio

    files = sorted(REPO.glob("rendered/**/*.yaml")) + sorted(REPO.glob("argocd/**/*.yaml"))
    assert len(files) > 40
    for path in files:
        for doc in yamlio.load_all(path.read_text(encoding="utf-8")):
            assert yamlio.dump(doc) == yamlio.dump(doc, yamlio._PyDumper), path
