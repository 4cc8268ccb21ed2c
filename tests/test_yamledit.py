"""yamledit.set_value: the oracle is the YAML parser (ruamel, round-trip) reading the edited text back, and the
original lines, which must all survive in order."""

from __future__ import annotations

import copy

import pytest
from ruamel.yaml import YAML

from generator.edit import yamledit


def load(text: str):
    return YAML(typ="safe", pure=True).load(text.removeprefix("\ufeff"))


def expected(data, loc, value):
    out = copy.deepcopy(data) if data is not None else {}
    node = out
    for part in loc[:-1]:
        node = node.setdefault(part, {})
    node[loc[-1]] = value
    return out


CASES = {
    "replace plain in flow": ("a: {b: 1.0.0, c: x}  # note\n", ("a", "b"), "1.1.0"),
    "replace single-quoted": ("a:\n  b: '1.0.0'   # keep\n", ("a", "b"), "2.0.0"),
    "replace needing quotes": ("a:\n  b: v1\n", ("a", "b"), "16.10"),
    "insert into flow": ("a: {b: 1}   # trailing\nz: 2\n", ("a", "c", "d"), "v1"),
    "insert into empty flow": ("a: {}\n", ("a", "c"), "v1"),
    "insert into multi-line flow": ("a: {\n  b: 1,\n  c: 2\n}\n", ("a", "d"), "v1"),
    "insert after a deeper block": ("a:\n  b:\n    c: 1\n    d:\n      e: 2   # deep\n  f: 3\n# tail\n",
                                    ("a", "b", "g"), "x"),
    "insert after a block sequence": ("a:\n  list:\n    - 1\n    - 2\nb: 1\n", ("a", "z", "y"), "v2"),
    "insert after a block scalar": ("a:\n  text: |\n    line one\n    line two\nb: 1\n", ("a", "k"), "v"),
    "new top-level key": ("a: 1\n# last comment\n", ("b", "c", "d"), "v"),
    "no trailing newline": ("a:\n  b: 1", ("a", "c"), "v"),
    "empty document": ("", ("a", "b"), "v"),
    "comments only": ("# header\n# more\n", ("a", "b"), "v"),
    "crlf": ("a:\r\n  b: 1\r\n", ("a", "c"), "v"),
    "bom": ("\ufeffa:\n  b: 1\n", ("a", "c"), "v"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_edited_text_reads_back_as_the_value_set_and_keeps_every_line(name: str):
    text, loc, value = CASES[name]
    edited = yamledit.set_value(text, loc, value)
    assert load(edited.text) == expected(load(text), loc, value)
    old = text.removeprefix("\ufeff").splitlines()
    new = edited.text.removeprefix("\ufeff").splitlines()
    if not edited.added_lines:  # a replacement or a same-line insert: one line differs, the rest are equal
        assert len(new) == len(old) and sum(a != b for a, b in zip(old, new)) == 1
    else:
        it = iter(new)  # every old line survives, in order
        assert all(any(line == n for n in it) for line in old), (old, new)
    assert value in new[edited.line - 1], (edited.line, new)
    assert edited.text.startswith("\ufeff") == text.startswith("\ufeff")
    if "\r\n" in text:
        assert edited.text.count("\n") == edited.text.count("\r\n")


def test_new_lines_take_the_siblings_indentation():
    edited = yamledit.set_value("top:\n    a:\n        b: 1\n    c: 2\n", ("top", "a", "d", "e"), "v")
    assert edited.text == "top:\n    a:\n        b: 1\n        d:\n          e: v\n    c: 2\n"
    assert edited.line == 5 and edited.added_lines


def test_flow_inserts_stay_on_the_line():
    assert yamledit.set_value("a: {b: 1}  # c\n", ("a", "x", "y"), "v").text == "a: {b: 1, x: {y: v}}  # c\n"
    assert yamledit.set_value("a: {}\n", ("a", "x"), "v").text == "a: {x: v}\n"


@pytest.mark.parametrize("text,loc,message", [
    ("a: 1\n", ("a", "b"), "a is not a mapping"),
    ("a: {b: {c: 1}}\n", ("a", "b"), "a.b is not a single value"),
    ("a: {b: !!str 1}\n", ("a", "b"), "its b carries a YAML tag or anchor"),
    ("a:\n  b: |\n    x\n", ("a", "b"), "its b is written as a | block"),
])
def test_what_cannot_be_spliced_says_how_it_is_written(text, loc, message):
    with pytest.raises(yamledit.Unsupported, match=message.replace("|", r"\|")):
        yamledit.set_value(text, loc, "v")


def test_a_value_is_quoted_where_its_context_needs_it():
    """`a, b` is plain in a block mapping but a flow mapping would split it at the comma."""
    assert yamledit.set_value("a: {b: 1}\n", ("a", "c"), "x, y").text == 'a: {b: 1, c: "x, y"}\n'
    assert yamledit.set_value("a:\n  b: 1\n", ("a", "c"), "x, y").text == "a:\n  b: 1\n  c: x, y\n"
    assert yamledit.set_value("a: {}\n", ("a", "c", "d"), "x, y").text == 'a: {c: {d: "x, y"}}\n'
    assert yamledit.set_value("a:\n  b: v1\n", ("a", "b"), "x, y").text == "a:\n  b: x, y\n"
    assert yamledit.set_value("a: {b: v1}\n", ("a", "b"), "x, y").text == 'a: {b: "x, y"}\n'


def test_a_document_without_a_final_line_break_gets_one_before_new_keys():
    edited = yamledit.set_value("# only a comment", ("a", "b"), "v")
    assert edited.text == "# only a comment\na:\n  b: v\n" and edited.line == 3
    # in a mapping the new key goes right after the last entry's line; the comment below it stays last
    edited = yamledit.set_value("x: 1\r\n# c", ("a",), "v")
    assert edited.text == "x: 1\r\na: v\r\n# c" and edited.line == 2
