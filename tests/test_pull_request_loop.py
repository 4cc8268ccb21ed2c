"""The whole pull-request loop on a real clone: set-image and a model edit, render, commit, then `diff`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, edit, run_cli


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@e", "PATH": "/usr/bin:/bin"}).stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A repository with the Eco² model and its committed output, then two commits: an image bump and a canary weight."""
    root = tmp_path_factory.mktemp("loop") / "repo"
    for top in ("values", "charts", "rendered", "argocd", "schema"):
        shutil.copytree(REPO / top, root / top, symlinks=True)
    shutil.copy(REPO / ".gitignore", root / ".gitignore")  # as in any clone: the lock and staging stay untracked
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    bump = run_cli("set-image", "waste", "v0.6.1", "--root", str(root))
    assert bump.returncode == 0, bump.stderr
    git(root, "commit", "-q", "-am", "waste v0.6.1")
    # waste's own canary steps (the defaults would change chat-llm too)
    edit(root / "values/services.yaml", "    delivery: {strategy: canary}\n\n  recycle-info:",
         "    delivery: {strategy: canary, steps: [{setWeight: 10}, {pause: 5m}, {setWeight: 30}, {pause: 5m}, {setWeight: 50}, {pause: 5m}]}\n\n  recycle-info:")
    render = run_cli("render", "--root", str(root))
    assert render.returncode == 0, render.stderr
    assert git(root, "status", "--porcelain") == " M values/services.yaml\n", "an override equal to the default renders the same"
    git(root, "commit", "-q", "-am", "waste: own canary steps")
    edit(root / "values/services.yaml", "{setWeight: 10}, {pause: 5m}, {setWeight: 30}", "{setWeight: 10}, {pause: 5m}, {setWeight: 25}")
    render = run_cli("render", "--root", str(root))
    assert render.returncode == 0, render.stderr
    git(root, "commit", "-q", "-am", "canary step 2 to 25%")
    return root


def test_set_image_changed_one_line_of_values(clone: Path):
    changed = git(clone, "diff", "--numstat", "HEAD~3", "HEAD~2", "--", "values").split()
    assert changed == ["1", "1", "values/services.yaml"]
    files = set(git(clone, "diff", "--name-only", "HEAD~3", "HEAD~2").split())
    # the base sets waste's image and no overlay pins it: all three environments follow
    assert files == {"values/services.yaml"} | {f"rendered/{env}/{d}/waste.yaml" for env in ("dev", "staging", "prod")
                                                for d in ("values", "manifests")}


def test_diff_two_refs_prints_model_summary_then_fields(clone: Path):
    result = run_cli("diff", "--base", "HEAD~3", "--head", "HEAD", "--root", str(clone))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [l.split(":")[1] for l in lines[:3]] == [" dev", " prod", " staging"] and lines[3] == ""
    assert all(l.startswith("plan: ") and " 0 to add, " in l for l in lines[:3])
    # dev runs waste rolling (its overlay): the canary step reaches staging and prod only
    assert lines[4:7] == ["waste (every environment): image v0.6.0 → v0.6.1",
                          "prod/waste, staging/waste: canary step 2 weight 30 → 25 (not in dev)", ""]
    assert "ghcr.io/eco2-team/waste-api:v0.6.0 → ghcr.io/eco2-team/waste-api:v0.6.1" in result.stdout
    assert "spec.strategy.canary.steps[2].setWeight: 30 → 25" in result.stdout


def test_deleting_a_worker_volume_template_is_danger(clone: Path, tmp_path: Path):
    root = Path(shutil.copytree(clone, tmp_path / "repo", symlinks=True))
    sts = root / "charts/worker/templates/statefulset.yaml"
    text = sts.read_text()
    # the WAL on a scratch volume instead of a per-replica claim
    sts.write_text(text[:text.index("  volumeClaimTemplates:")] + "        - name: wal\n          emptyDir: {}\n")
    render = run_cli("render", "--root", str(root))
    assert render.returncode == 0, render.stdout + render.stderr
    result = run_cli("diff", "--base", "HEAD", "--root", str(root))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "volumeClaimTemplate wal removed" in result.stdout
    assert run_cli("diff", "--base", "HEAD", "--root", str(root), "--ack-danger").returncode == 0


def test_a_default_changed_for_several_apps_is_one_summary_line(clone: Path, tmp_path: Path):
    root = Path(shutil.copytree(clone, tmp_path / "repo", symlinks=True))
    # waste overrides only the steps: both canaries share the default analysis
    edit(root / "values/delivery.yaml", "successThreshold: 0.95", "successThreshold: 0.97")
    assert run_cli("render", "--root", str(root)).returncode == 0
    result = run_cli("diff", "--base", "HEAD", "--root", str(root))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[3:5] == [
        "prod/chat-llm, prod/waste, staging/chat-llm, staging/waste: canary analysis successThreshold 0.95 → 0.97 "
        "(not in dev)", ""]
