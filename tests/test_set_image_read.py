"""set-image's read-back without a parse: where the event streams prove an edit set only the image's scalars, the
edited model's data is the old data with those fields, recorded for the reader. The oracle is the reader itself
(loader.read_sections without a memo) on the edited file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from generator import memo
from generator.edit import setimage
from generator.model import loader
from test_set_image import COMMENTED, DIGEST4, commented_copy, files

OLD = {"tag": "1.0.0", "digest": None}


def read(values: Path):
    with memo.using(None):
        data, _, problems, unreadable = loader.read_sections(values, "values")
    assert not problems and not unreadable
    return data


@pytest.mark.parametrize("before,after", [
    ("a: {repository: r, tag: 1.0.0}\n", "a: {repository: r, tag: v1.0.1}\n"),
    ("a:\n  repository: r\n  tag: '1.0.0'  # kept\n", "a:\n  repository: r\n  tag: 'v1.0.1'  # kept\n"),
    ('a: {repository: r, tag: "1.0.0"}\nb: 1.0.0\n', 'a: {repository: r, tag: "v1.0.1"}\nb: 1.0.0\n'),
])
def test_an_edit_of_one_scalar_is_proven(before: str, after: str):
    assert setimage._means_only(before, after, OLD, {"tag": "v1.0.1"})


@pytest.mark.parametrize("before,after,why", [
    ("a: &x {repository: r, tag: 1.0.0}\nb: *x\n", "a: &x {repository: r, tag: v1.0.1}\nb: *x\n", "an alias repeats it"),
    ("a: {repository: r, tag: 1.0.0}\n", "a: {repository: r, tag: v1.0.1, x: 1}\n", "an entry added"),
    ("a: {repository: r, tag: 1.0.0}\nb: 1\n", "a: {repository: r, tag: v1.0.1}\nb: 2\n", "another scalar changed"),
    ("a: {repository: r, tag: 1.0.0}\n", "a: {repository: s, tag: 1.0.0}\n", "not the field asked for"),
    ("a: {repository: r, tag: 1.0.0}\n", "a: {repository: r, tag: v1.0.2}\n", "not the value asked for"),
    ("a: {repository: r, tag: 1.0.0}\n", "a: {repository: r, tag: 'v1.0.1'}\n", "the style changed"),
    ("a: {repository: r, tag: 1.0.0}\n", "a: {repository: r, tag: !!str v1.0.1}\n", "a tag added"),
    ("a: {repository: r, tag: 1.0.0}\n", "a: {repository: r, tag: 1.0.0}\n", "nothing changed"),
    ("a: {repository: r, tag: 1.0.0}\n", "a: {repository: r, tag: [v1.0.1}\n", "the edit breaks the YAML"),
    ("base: &b {x: 1}\na: {<<: *b, tag: 1.0.0}\n", "base: &b {x: 1}\na: {<<: *b, tag: v1.0.1}\n", "a merge key"),
    ("a: {<<: {x: 1}, tag: 1.0.0}\n", "a: {<<: {x: 1}, tag: v1.0.1}\n", "a merge key without an alias"),
    ("a: {repository: r, tag: &t 1.0.0}\n", "a: {repository: r, tag: &u v1.0.1}\n", "its anchor changed"),
    ("a: {repository: r, tag: !a 1.0.0}\n", "a: {repository: r, tag: !b v1.0.1}\n", "its tag changed"),
    ("a: {repository: r, tag: '1.0.0'}\n", 'a: {repository: r, tag: "v1.0.1"}\n', "its quotes changed"),
    ("a: {repository: r, tag: 1.0.0}\nb: {tag: 1.0.0}\n", "a: {repository: r, tag: v1.0.1}\nb: {tag: v1.0.1}\n",
     "the same change twice"),
])
def test_anything_else_is_not(before: str, after: str, why: str):
    assert not setimage._means_only(before, after, OLD, {"tag": "v1.0.1"}), why


def test_a_plain_value_that_would_not_read_as_a_string_is_not():
    """16.10 written plain is a float to YAML: proven only if it reads back as the string."""
    assert not setimage._means_only("a: {repository: r, tag: 1.0.0}\n", "a: {repository: r, tag: 16.10}\n", OLD,
                                    {"tag": "16.10"})
    assert setimage._means_only("a: {repository: r, tag: '1.0.0'}\n", "a: {repository: r, tag: '16.10'}\n", OLD,
                                {"tag": "16.10"})


def test_a_plain_value_must_read_back_in_flow_and_in_block_context():
    """The event stream does not say which context the scalar is in: a plain value is proven only if it reads back
    as the string in both (`a,b` does in a block mapping, not in a flow one)."""
    assert not setimage._means_only("a:\n  repository: r\n  tag: 1.0.0\n", "a:\n  repository: r\n  tag: a,b\n",
                                    OLD, {"tag": "a,b"})
    assert setimage._means_only("a:\n  repository: r\n  tag: 1.0.0\n", "a:\n  repository: r\n  tag: 'a,b'\n",
                                OLD, {"tag": "a,b"}) is False  # quotes changed: not the same style
    assert setimage._means_only("a:\n  repository: r\n  tag: '1.0.0'\n", "a:\n  repository: r\n  tag: 'a,b'\n",
                                OLD, {"tag": "a,b"})


def test_a_field_without_an_old_value_is_not():
    """Nothing to compare the old scalar with: read in full (streams of equal length included)."""
    assert not setimage._means_only("a: {repository: r, tag: 1.0.0}\n", "a: {repository: r, tag: v1.0.1}\n",
                                    {"tag": None}, {"tag": "v1.0.1"})


def test_a_field_not_written_before_is_not():
    assert not setimage._means_only("a: {repository: r, tag: 1.0.0}\n", f"a: {{repository: r, tag: 1.0.0, digest: {DIGEST4}}}\n",
                                    OLD, {"digest": DIGEST4})


@pytest.mark.parametrize("component,ref", [("hello", "v1.0.1"), ("single", "v1.0.1"), ("both", "sha-def5678"),
                                           ("both", DIGEST4), ("digest-block", "v2.0.0")])
def test_the_recorded_read_is_what_the_reader_gives(tmp_path: Path, component: str, ref: str):
    """Under a memo, the edited model as set-image records it for the render equals a full read of the edited file,
    for every way an image is written in the commented model (a tag added to a digest-only image is read in full)."""
    values = commented_copy(tmp_path)
    cache = tmp_path / "memo"
    with memo.using(memo.Memo(cache)) as m:
        plan = setimage.plan(values, component, ref)
        stored_before = m.hits
        setimage.write(plan)
        data, _, _, _ = loader.read_sections(values, "values")
        assert m.hits == stored_before + 1  # the render's read came from the memo, recorded by the plan
    assert data == read(values)


def test_the_proof_spares_the_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A one-scalar edit is read back without parsing the edited file (the reader is not called on it); an edit it
    cannot prove, with it."""
    values = commented_copy(tmp_path)
    parsed: list[str] = []
    real = loader.fast_sections
    monkeypatch.setattr(loader, "fast_sections", lambda paths, shown: parsed.append("x") or real(paths, shown))
    with memo.using(memo.Memo(tmp_path / "memo")):
        setimage.plan(values, "hello", "v0.0.1")  # the model as it is, then the edit
        first = len(parsed)
        setimage.plan(values, "hello", "v0.0.2")
        assert len(parsed) == first  # the unedited model from the memo, the edited one recorded
        setimage.plan(values, "digest-block", "v2.0.0")  # inserts a tag line: read in full
        assert len(parsed) == first + 1
    assert files(values) == files(COMMENTED)
