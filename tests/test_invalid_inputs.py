"""Invalid models: each case in tests/invalid/ breaks a copy of the Eco² model and must fail with exactly its messages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from conftest import edit
from generator.errors import InvalidModel
from generator.loader import load

CASES = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))


def apply(case: dict, values: Path) -> None:
    for e in case["edits"]:
        if e["old"] is None:
            (values / e["file"]).write_text(e["new"], encoding="utf-8")
        else:
            edit(values / e["file"], e["old"], e["new"], e.get("count", 1))


def problems(values: Path) -> list[str]:
    try:
        load(values, display_dir="values")
    except InvalidModel as exc:
        return [str(p) for p in exc.problems]
    return []


def test_enough_cases():
    assert len(CASES) >= 15


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_invalid_case(path: Path, model_dir: Path):
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    apply(case, model_dir)
    got = problems(model_dir)
    if os.environ.get("UPDATE_GOLDEN"):
        case["expected"] = got
        text = path.read_text(encoding="utf-8").split("\nexpected:")[0].rstrip("\n") + "\n"
        path.write_text(text + yaml.safe_dump({"expected": got}, allow_unicode=True, width=1000, sort_keys=False), encoding="utf-8")
    assert got == case["expected"], (
        "messages differ; if the new ones are right, update with: UPDATE_GOLDEN=1 make test")


def test_eco2_model_is_valid():
    assert problems(Path(__file__).resolve().parents[1] / "values") == []


def test_a_dangling_symlink_in_values_is_an_error(model_dir: Path):
    """It used to be skipped, and its sections then seemed missing from the model."""
    (model_dir / "extra.yaml").symlink_to(model_dir / "nowhere.yaml")
    assert problems(model_dir) == ["values/extra.yaml: is a symbolic link to nothing"]
