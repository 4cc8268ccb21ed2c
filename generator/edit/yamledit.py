"""Comment-preserving edits of YAML text: one scalar set at a key path, every other byte left as it is.

The text is edited as text, at the positions the YAML parser reports: a scalar that is written is replaced in its
own style (quoted stays quoted, plain stays plain unless the value would not read back as that string); one that is
not written yet is inserted with the keys missing on its way, in the style of the mapping it goes into (`, key: v`
before a flow mapping's closing brace, new lines at the siblings' indentation in a block mapping). Used by
set-image (one image) and by promotion and `set-image --env` (any file: the base's sections and the overlays).
Callers check the result's meaning by reading it back; this module only guarantees the bytes it touches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode

from ..errors import Loc, format_loc


class Unsupported(Exception):
    """The value is written in a way a splice cannot safely edit; the message says how it is written."""


def rt_yaml() -> YAML:
    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    return y


# The text is composed with libyaml when it can (C, about 50x faster than ruamel's pure-Python composer on a model of
# 1000 services) and with ruamel when libyaml refuses it (YAML 1.1 and 1.2 differ at the edges); both give the nodes'
# positions and styles. If the two ever placed a node differently, the callers' meaning check would refuse the edit.
MAPPINGS = (MappingNode, yaml.MappingNode)
SCALARS = (ScalarNode, yaml.ScalarNode)
_COMPOSE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def compose(text: str) -> Node | None:
    """`text` (no BOM: libyaml does not count one in its positions) as nodes with positions; None when empty."""
    try:
        return yaml.compose(text, Loader=_COMPOSE_LOADER)
    except yaml.YAMLError:
        return rt_yaml().compose(text)


def child(node: Node, key: Any) -> tuple[ScalarNode, Node] | None:
    if isinstance(node, MAPPINGS):
        for k, v in node.value:
            if isinstance(k, SCALARS) and k.value == key:
                return k, v
    return None


def reads_back(scalar_text: str, value: str, flow: bool) -> bool:
    """Does `scalar_text` written as a value (in a flow or block mapping) load as exactly the string `value`?"""
    doc = f"k: {{t: {scalar_text}}}\n" if flow else f"k:\n  t: {scalar_text}\n"
    try:
        got = rt_yaml().load(doc)["k"]["t"]
    except (YAMLError, TypeError, KeyError):
        return False
    return isinstance(got, str) and str(got) == value


def scalar(value: str, style: str | None, flow: bool) -> str:
    """`value` as a YAML scalar in the given style; plain only when it reads back as the same string."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style != '"' and reads_back(value, value, flow):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def line_end(text: str, at: int) -> str:
    """The line break used by the line holding `at` (CRLF files stay CRLF)."""
    nl = text.find("\n", at)
    if nl == -1:
        nl = text.rfind("\n")
    return "\r\n" if nl > 0 and text[nl - 1] == "\r" else "\n"


def replacement(text: str, node: Node, value: str, flow: bool, what: str) -> str:
    """The text that replaces the scalar `node` (in a flow or block mapping) so that it reads as `value`."""
    style = getattr(node, "style", None) or None  # plain: None to ruamel, '' to libyaml
    if not isinstance(node, SCALARS) or style not in (None, "'", '"'):
        raise Unsupported(f"its {what} is written as a {style or 'non-scalar'} block")
    if node.start_mark.line != node.end_mark.line:
        raise Unsupported(f"its {what} spans several lines")
    if text[node.start_mark.index] in "!&*":
        raise Unsupported(f"its {what} carries a YAML tag or anchor")
    return scalar(value, style, flow)


@dataclass(frozen=True)
class Edited:
    """The new text, the 1-based line of the value in it, and whether lines were added."""

    text: str
    line: int
    added_lines: bool


def _last_end(node: Node) -> tuple[int, int]:
    """(offset, column) where the text of a node's last value ends: a block collection ends where its last leaf does
    (its own end mark is the next token's position, possibly lines further on)."""
    while not getattr(node, "flow_style", True) and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, MAPPINGS) else last
    return node.end_mark.index, node.end_mark.column


def _nested(keys: Loc, value: str, flow: bool, indent: str, nl: str) -> tuple[str, int]:
    """`k1: {k2: value}` (flow) or `k1:` / `  k2: value` lines (block) for the missing keys; and where the value
    starts in it."""
    names = [scalar(str(k), None, True) for k in keys]
    if flow:
        head = "".join(f"{k}: {{" for k in names[:-1]) + f"{names[-1]}: "
        return head + scalar(value, None, True) + "}" * (len(names) - 1), len(head)
    lines = "".join(f"{indent}{'  ' * i}{k}:{nl}" for i, k in enumerate(names[:-1]))
    head = lines + f"{indent}{'  ' * (len(names) - 1)}{names[-1]}: "
    return head + scalar(value, None, False) + nl, len(head)


def set_value(text: str, loc: Loc, value: str) -> Edited:
    """`text` with the scalar at the key path `loc` set to the string `value`, replaced where it is written,
    otherwise inserted (with the keys missing on its way) into the deepest mapping of the path that is written."""
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    body = text[len(bom):]
    root = compose(body)
    node, depth = root, 0
    while node is not None and depth < len(loc):
        pair = child(node, loc[depth])
        if pair is None:
            break
        parent, node, depth = node, pair[1], depth + 1
    if node is not None and depth == len(loc):  # written: replace it
        if isinstance(node, MAPPINGS) or not isinstance(node, SCALARS):
            raise Unsupported(f"{format_loc(loc)} is not a single value")
        new = replacement(body, node, value, bool(parent.flow_style), format_loc(loc[-1:]))
        start, end = node.start_mark.index, node.end_mark.index
        return Edited(bom + body[:start] + new + body[end:], body.count("\n", 0, start) + 1, False)
    nl = line_end(body, 0) if body else "\n"
    if node is None:  # an empty document (or only comments): the keys start at column 0 at its end
        sep = "" if not body or body.endswith("\n") else nl
        snippet, at = _nested(loc, value, False, "", nl)
        start = len(body)
        snippet = sep + snippet
        at += len(sep)
    elif not isinstance(node, MAPPINGS):
        raise Unsupported(f"{format_loc(loc[:depth])} is not a mapping")
    elif node.flow_style:
        snippet, at = _nested(loc[depth:], value, True, "", nl)
        if node.value:
            start = _last_end(node.value[-1][1])[0]
            snippet, at = ", " + snippet, at + 2
        else:
            start = node.start_mark.index + 1
    else:
        indent = " " * node.value[0][0].start_mark.column
        snippet, at = _nested(loc[depth:], value, False, indent, nl)
        end, column = _last_end(node.value[-1][1])
        if column == 0 and end > 0:  # a block scalar ends at the next line's start
            start = end
        else:
            eol = body.find("\n", end)
            if eol == -1:  # the last line has no line break: keep it that way
                start, snippet, at = len(body), nl + snippet[:-len(nl)], at + len(nl)
            else:
                start = eol + 1
    new_body = body[:start] + snippet + body[start:]
    return Edited(bom + new_body, new_body.count("\n", 0, start + at) + 1, "\n" in snippet)
