"""Invalid models: each case in tests/invalid/ breaks a copy of the Eco² model and must fail with exactly its messages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from conftest import edit
from generator.errors import InvalidModel
from generator.model.loader import load

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


def marked_position(values: Path, marker: dict) -> str:
    """The `file:line:col: ` a case's `at` marker names, found in the edited file by text search: an oracle for
    the position that does not come from the loader under test."""
    text = (values / marker["file"]).read_text(encoding="utf-8")
    assert text.count(marker["find"]) >= 1, f"marker {marker['find']!r} not in {marker['file']}"
    i = text.index(marker["find"]) + marker.get("offset", 0)
    line, col = text.count("\n", 0, i) + 1, i - (text.rfind("\n", 0, i) + 1) + 1
    return f"values/{marker['file']}:{line}:{col}: "


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_invalid_case(path: Path, model_dir: Path):
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    apply(case, model_dir)
    got = problems(model_dir)
    assert got, "the broken model was accepted"
    # Where each message must point, by the case's markers (one per expected message; null: the file as a whole).
    for marker, message in zip(case.get("at") or [], got):
        if marker is not None:
            assert message.startswith(marked_position(model_dir, marker)), (marker, message)
    assert all("\n" not in m for m in got), "a message spans several lines"
    if os.environ.get("UPDATE_GOLDEN"):
        assert not os.environ.get("CI"), "UPDATE_GOLDEN rewrites expectations; never in CI"
        text = path.read_text(encoding="utf-8").split("\nexpected:")[0].rstrip("\n") + "\n"
        path.write_text(text + yaml.safe_dump({"expected": got}, allow_unicode=True, width=1000, sort_keys=False), encoding="utf-8")
        pytest.skip("expected messages rewritten from the loader's output: review the diff of tests/invalid/")
    assert got == case["expected"], (
        "messages differ; if the new ones are right, update with: UPDATE_GOLDEN=1 make test")
    if "at" in case:
        assert len(case["at"]) == len(case["expected"]), "one `at` marker (or null) per expected message"


def test_eco2_model_is_valid():
    assert problems(Path(__file__).resolve().parents[1] / "values") == []


def test_a_dangling_symlink_in_values_is_an_error(model_dir: Path):
    """It used to be skipped, and its sections then seemed missing from the model."""
    (model_dir / "extra.yaml").symlink_to(model_dir / "nowhere.yaml")
    assert problems(model_dir) == ["values/extra.yaml: is a symbolic link to nothing"]


def test_a_byte_that_is_not_utf8_is_reported_where_it_is(model_dir: Path):
    text = (model_dir / "services.yaml").read_bytes()
    at = text.index(b"/api/v1/auth")
    (model_dir / "services.yaml").write_bytes(text[:at] + b"caf\xe9" + text[at:])
    line = text[:at].count(b"\n") + 1
    col = at - text[:at].rindex(b"\n")
    assert problems(model_dir) == [f"values/services.yaml:{line}:{col + 3}: byte 0xe9 is not UTF-8; model files are UTF-8 text"]


def test_a_file_over_the_size_bound_is_refused_before_it_is_read(model_dir: Path):
    from generator.model.loader import MAX_FILE_BYTES
    services = (model_dir / "services.yaml").read_bytes()
    padding = MAX_FILE_BYTES + 1 - len(services)
    (model_dir / "services.yaml").write_bytes(services + b"#" * (padding - 1) + b"\n")
    assert problems(model_dir) == ["values/services.yaml: is 2.0 MiB; a model file is at most 2 MiB"]


def test_an_explicit_str_tag_keeps_a_value_a_string(model_dir: Path):
    """`!!str 1.0` is YAML's own way to say "the string 1.0"; the model reads it so (it was refused as not a string)."""
    edit(model_dir / "services.yaml", "    replicas: 2\n", "    replicas: 2\n    env: {VERSION: !!str 1.0}\n")
    assert load(model_dir).model.services["auth"].env["VERSION"] == "1.0"
