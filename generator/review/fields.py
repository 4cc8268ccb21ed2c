"""The field diff of two parsed YAML values (named lists matched by name, unnamed ones by content, JSON carried in
strings as JSON), which changes are noise, how alike two objects are (for renames), and how a path and a value read
on one line."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from typing import Any

from .. import credentials, labels
from ..credentials import REDACTED


# Labels and annotations that change on every chart bump or config edit without changing behaviour by themselves:
# the chart label, the version label (it mirrors the image tag, which is shown where it matters) and checksums.
NOISE_LABELS = frozenset({labels.HELM_CHART, labels.VERSION})
NOISE_ANNOTATION_PREFIX = "checksum/"


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_./:@+~-][^\s,{}\[\]\"'#]*$")
_LOOKS_TYPED = re.compile(r"^([-+]?[0-9][0-9_.eE+-]*|true|false|yes|no|on|off|null|~)$", re.IGNORECASE)


Name = credentials.Name  # a path step into a list of named items (containers[app]), not a key or an index


def format_path(parts: Iterable) -> str:
    """('spec', 'containers', Name('app'), 'image') -> spec.containers[app].image; odd keys are quoted."""
    out = ""
    for part in parts:
        if isinstance(part, (Name, int)):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out


def _show(value: Any, limit: int = 240) -> str:
    """A value on one line: plain when unambiguous (v0.6.1, 30), quoted when it could be misread ('30')."""
    if value == REDACTED:
        return REDACTED
    if isinstance(value, str):
        text = value if _PLAIN_VALUE.match(value) and not _LOOKS_TYPED.match(value) else json.dumps(value, ensure_ascii=False)
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    elif value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return text if len(text) <= limit else text[:limit] + f"… (+{len(text) - limit} chars)"


def _name_of(item: Any) -> Any:
    if not isinstance(item, dict):
        return None
    name = item.get("name")
    if name is None and isinstance(item.get("metadata"), dict):
        name = item["metadata"].get("name")  # volumeClaimTemplates
    return name if isinstance(name, (str, int)) and not isinstance(name, bool) else None


def _list_names(items: list) -> list[str] | None:
    """Names of a list of named items (containers, env, ports, volumes, volumeClaimTemplates), if all unique."""
    names = []
    for item in items:
        name = _name_of(item)
        if name is None:
            return None
        names.append(str(name))
    return names if len(set(names)) == len(names) else None


def _json_container(text: str) -> Any:
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, (dict, list)) else None


def _canonical(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except TypeError:  # mixed key types (YAML allows 1 and "a" as keys of one mapping)
        return repr(value)


def _same(a: Any, b: Any) -> bool:
    # `1 == True` in Python: a YAML type change must still show.
    return type(a) is type(b) and a == b


Raw = tuple  # (op, parts, old, new)


def diff_values(old: Any, new: Any, parts: tuple = ()) -> list[Raw]:
    """Field-level changes between two parsed YAML values; named lists are matched by name, not position."""
    out: list[Raw] = []
    _diff(old, new, parts, out)
    return out


def _diff(old: Any, new: Any, parts: tuple, out: list[Raw]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for k, v in old.items():
            step = k if isinstance(k, str) else str(k)
            if k in new:
                _diff(v, new[k], parts + (step,), out)
            else:
                _whole("removed", parts + (step,), v, out)
        for k, v in new.items():
            if k not in old:
                _whole("added", parts + (k if isinstance(k, str) else str(k),), v, out)
    elif isinstance(old, list) and isinstance(new, list):
        _diff_list(old, new, parts, out)
    elif isinstance(old, str) and isinstance(new, str):
        if old == new:
            return
        old_json, new_json = _json_container(old), _json_container(new)
        if old_json is not None and new_json is not None and type(old_json) is type(new_json):
            _diff(old_json, new_json, parts, out)  # JSON carried in a string (definitions.json, ALB annotations)
        else:
            out.append(("changed", parts, old, new))
    elif not _same(old, new):
        out.append(("changed", parts, old, new))


def _whole(op: str, parts: tuple, value: Any, out: list[Raw]) -> None:
    """A key that appears or disappears; a list of named items is listed item by item (volumeClaimTemplates[wal])."""
    names = _list_names(value) if isinstance(value, list) and value else None
    if names is None:
        out.append((op, parts, value, None) if op == "removed" else (op, parts, None, value))
        return
    for name, item in zip(names, value):
        out.append((op, parts + (Name(name),), item, None) if op == "removed" else (op, parts + (Name(name),), None, item))


def _diff_list(old: list, new: list, parts: tuple, out: list[Raw]) -> None:
    if old == new and all(_same(a, b) for a, b in zip(old, new)):
        return
    old_names, new_names = _list_names(old), _list_names(new)
    if old_names is not None and new_names is not None and (old or new):
        by_old = dict(zip(old_names, old))
        by_new = dict(zip(new_names, new))
        for name, item in by_old.items():
            if name in by_new:
                _diff(item, by_new[name], parts + (Name(name),), out)
            else:
                out.append(("removed", parts + (Name(name),), item, None))
        for name, item in by_new.items():
            if name not in by_old:
                out.append(("added", parts + (Name(name),), None, item))
        return
    if all(not isinstance(v, (dict, list)) for v in old + new):
        out.append(("changed", parts, old, new))  # lists of scalars read best whole: [a, b] -> [a]
        return
    # Unnamed items (steps, rules, destinations): align by content so an insertion does not shift everything.
    matcher = difflib.SequenceMatcher(None, [_canonical(v) for v in old], [_canonical(v) for v in new], autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        common = min(i2 - i1, j2 - j1) if op == "replace" else 0
        for k in range(common):
            _diff(old[i1 + k], new[j1 + k], parts + (j1 + k,), out)
        for i in range(i1 + common, i2):
            out.append(("removed", parts + (i,), old[i], None))
        for j in range(j1 + common, j2):
            out.append(("added", parts + (j,), None, new[j]))


def is_noise(parts: tuple) -> bool:
    if len(parts) < 2 or isinstance(parts[-1], int):
        return False
    parent, last = parts[-2], str(parts[-1])
    return (parent == "labels" and last in NOISE_LABELS) or (
        parent == "annotations" and last.startswith(NOISE_ANNOTATION_PREFIX))


def _leaves(value: Any, parts: tuple, out: set) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _leaves(v, parts + (str(k),), out)
    elif isinstance(value, list):
        names = _list_names(value)
        for i, v in enumerate(value):
            _leaves(v, parts + ((Name(names[i]),) if names is not None else (i,)), out)
    elif not is_noise(parts) and parts != ("metadata", "name"):
        out.add((parts, type(value).__name__, value if not isinstance(value, float) else repr(value)))


def similarity(a: Any, b: Any) -> float:
    """Share of equal leaves (ignoring metadata.name and noise): 1.0 identical, 0.0 nothing in common."""
    la, lb = set(), set()
    _leaves(a, (), la)
    _leaves(b, (), lb)
    return _set_similarity(la, lb)


def _set_similarity(la: set, lb: set) -> float:
    if not la and not lb:
        return 1.0
    return len(la & lb) / max(len(la), len(lb))
