"""The fast model read (ruamel's safe loader on libyaml) against the round-trip reader that places problems: the same
data, type for type, or no fast result at all (then the round trip reads and reports). The oracle is ruamel's
round-trip loader, which the generator used alone before."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.model import loader

ROOT = Path(__file__).resolve().parents[1]

# YAML whose reading differs between YAML 1.1 and 1.2, or between constructors: booleans, octal, sexagesimal,
# merge keys, anchors, explicit tags, keys that are not strings, block scalars, escapes, a BOM.
SNIPPETS = {
    "booleans-1.1-words": "cluster:\n  a: yes\n  b: on\n  c: No\n  d: true\n  e: False\n",
    "numbers": "cluster:\n  a: 010\n  b: 0o10\n  c: 0x1F\n  d: 1e3\n  f: 1_000\n  g: +12\n  h: -.5\n  i: 0b11\n"
               "  j: 12:30\n  k: 1.\n  l: 0.\n  m: 1.0\n",
    "nulls": "cluster:\n  a: ~\n  b: null\n  c:\n  d: Null\n",
    "timestamp": "cluster:\n  a: 2026-01-01\n  b: 2026-01-01T10:00:00Z\n",  # TimeStamp in the round trip
    "nan": "cluster:\n  a: .nan\n  b: .inf\n",
    "explicit-tags": "cluster:\n  a: !!str 1.0\n  b: !!int '7'\n  c: !!float '1'\n  d: !!bool 'true'\n",
    "merge-key": "cluster:\n  base: &b {x: 1, y: 2}\n  other:\n    <<: *b\n    y: 3\n",
    "merge-list": "cluster:\n  a: &a {x: 1}\n  b: &b {y: 2}\n  c:\n    <<: [*a, *b]\n    z: 3\n",
    "alias-scalar": "cluster:\n  a: &v hello\n  b: *v\n  c: [*v, *v]\n",
    "non-string-keys": "cluster:\n  1: a\n  true: b\n  1.5: c\n",
    "block-scalars": "cluster:\n  a: |\n    l1\n    l2\n  b: >-\n    folded\n    text\n  c: |+\n    kept\n\n",
    "quotes-and-escapes": "cluster:\n  a: 'it''s'\n  b: \"\\u00e9\\t\\x41\"\n  c: \"multi\n    line\"\n",
    "flow": "cluster:\n  a: [1, {b: [2, 3]}, 'x']\n  c: {}\n  d: []\n",
    "bom": "\ufeffcluster:\n  a: 1\n",
    "unicode": "cluster:\n  name: Eco² – 재활용\n",
    "equals-sign": "cluster:\n  a: =\n",
    "document-markers": "%YAML 1.2\n---\ncluster:\n  a: 1\n...\n",
    # Problems: the fast read gives up and the round trip reports them.
    "duplicate-key": "cluster:\n  a: 1\n  a: 2\n",
    "unknown-section": "clusters:\n  a: 1\n",
    "not-a-mapping": "- cluster\n",
    "empty": "",
    "syntax": "cluster:\n  a: [1, 2\n",
    "undefined-alias": "cluster:\n  a: *nowhere\n",
    "tab-indent": "cluster:\n\ta: 1\n",
}


# Valid YAML the fast read leaves to the round trip, which reads it differently or only it reads: merged keys come
# after a mapping's own there; its TimeStamp is not safe's datetime; `=` is YAML 1.1's value tag to safe.
LEFT_TO_THE_ROUND_TRIP = {"timestamp", "nan", "non-string-keys", "merge-key", "merge-list", "equals-sign"}


def typed(value: object) -> str:
    """A form where 1, 1.0 and True differ (they are equal in Python) and mapping order counts."""
    return repr(value)


def round_trip(values: Path) -> tuple[dict, dict, list]:
    data, source, problems, _ = loader._read_sections(values, "values")
    return data, dict(source.files), [str(p) for p in problems]


@pytest.mark.parametrize("name", list(SNIPPETS))
def test_the_fast_read_is_the_round_trip_read_or_nothing(tmp_path: Path, name: str) -> None:
    (tmp_path / "model.yaml").write_text(SNIPPETS[name], encoding="utf-8")
    fast = loader.fast_sections([tmp_path / "model.yaml"], "values")
    data, files, problems = round_trip(tmp_path)
    if problems or name in LEFT_TO_THE_ROUND_TRIP:
        assert fast is None, (name, problems)
    else:
        assert fast is not None, f"{name}: the round trip reads it without a problem, the fast read gave up"
        assert typed(fast[0]) == typed(data) and fast[1] == files


def test_what_is_left_to_the_round_trip_reads_as_it_always_did(model_dir: Path) -> None:
    """read_sections takes the round trip for these: its data, exactly."""
    for name in sorted(LEFT_TO_THE_ROUND_TRIP):
        (model_dir / "zz.yaml").write_text(SNIPPETS[name].replace("cluster:", "delivery:"), encoding="utf-8")
        (model_dir / "delivery.yaml").unlink(missing_ok=True)
        data = loader.read_sections(model_dir, "values")[0]
        assert typed(data) == typed(round_trip(model_dir)[0]), name


def test_the_problem_snippets_are_problems(tmp_path: Path) -> None:
    """So the test above covers both branches: each of these must be a problem for the round-trip reader."""
    for name in ("duplicate-key", "unknown-section", "not-a-mapping", "empty", "syntax", "undefined-alias", "tab-indent"):
        (tmp_path / "model.yaml").write_text(SNIPPETS[name], encoding="utf-8")
        assert round_trip(tmp_path)[2], name


def test_a_section_in_two_files_is_left_to_the_round_trip(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("cluster:\n  a: 1\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("cluster:\n  b: 2\n", encoding="utf-8")
    assert loader.fast_sections(sorted(tmp_path.iterdir()), "values") is None
    assert round_trip(tmp_path)[2] == ["values/b.yaml:1:1: cluster: section already defined at values/a.yaml:1"]


def test_the_eco2_model_reads_the_same_both_ways() -> None:
    values = ROOT / "values"
    paths = sorted(p for p in values.iterdir() if p.suffix == ".yaml")
    fast = loader.fast_sections(paths, "values")
    data, files, problems = round_trip(values)
    assert problems == [] and fast is not None
    assert typed(fast[0]) == typed(data) and fast[1] == files


def test_a_model_read_without_problems_parses_positions_only_when_asked(model_dir: Path) -> None:
    data, source, problems, unreadable = loader.read_sections(model_dir, "values")
    assert (problems, unreadable) == ([], False)
    assert source._reparse == model_dir  # not parsed yet
    file, line, col, path = source.locate(("cluster", "name"))
    text = (model_dir / Path(file).name).read_text(encoding="utf-8").splitlines()
    assert text[line - 1][col - 1:] == f"name: {data['cluster']['name']}" and path == "cluster.name"
