"""The benchmarks run on any state of the model: `make bench` once crashed when waste was no longer at v0.6.0."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import diff_bench  # noqa: E402


@pytest.mark.parametrize("tag,next_tag", [("v0.6.0", "v0.6.1"), ("v0.6.9", "v0.6.10"), ("16.10-alpine", "16.10-alpine-1"),
                                          ("sha-abc1234", "sha-abc1235"), ("sha-abc", "sha-abc-1")])
def test_the_bumped_tag_differs(tag: str, next_tag: str):
    assert diff_bench.bumped(tag) == next_tag


def test_the_diff_bench_bumps_whatever_tag_waste_has(tmp_path: Path):
    source = tmp_path / "source"
    for top in ("rendered", "argocd"):
        shutil.copytree(REPO / top, source / top)
    old = diff_bench.current_tag(REPO, "waste")
    for rel in ("rendered/prod/values/waste.yaml", "rendered/prod/manifests/waste.yaml"):
        path = source / rel
        path.write_text(path.read_text().replace(old, "v9.9.9"))
    assert diff_bench.current_tag(source, "waste") == "v9.9.9"
    assert diff_bench.history(source, tmp_path / "repo", "waste", "v9.9.9", diff_bench.bumped("v9.9.9")) > 0
    assert "tag: v9.9.10" in (tmp_path / "repo" / "rendered/prod/values/waste.yaml").read_text()


def test_a_tree_without_waste_says_so(tmp_path: Path):
    with pytest.raises(SystemExit, match="render first"):
        diff_bench.current_tag(tmp_path, "waste")


def test_the_synthetic_model_loads_as_one_environment(tmp_path: Path):
    """bench/synth.py against the model as it is now (it broke once the model had environments)."""
    import synth

    from generator.model import environments

    values = synth.write(12, tmp_path)
    envs = environments.load(values)
    assert list(envs) == ["prod"] and len(envs["prod"].model.services) == 12
