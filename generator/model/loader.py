"""Reading values/: YAML with positions, merged into one typed Model, or every problem at once."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Iterator, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .. import memo
from ..errors import Finding, InvalidModel, Loc, Problem, format_loc
from . import checks
from .model import SECTIONS, KindUnion, Model


class Source:
    """Where each top-level section of the model was written, so any loc can be given a position.

    From the memo, the positions are read lazily: the files are parsed again only when a position is asked
    for (an error, a finding, set-image), never on a render that succeeds."""

    def __init__(self, display_dir: str, reparse: Path | None = None, files: dict[str, str] | None = None):
        self.display_dir = display_dir  # how the values directory is named in messages, e.g. "values"
        self._sections: dict[str, tuple[str, CommentedMap]] = {}
        self._reparse = reparse
        self.files: dict[str, str] = dict(files or {})  # section -> the file that writes it, as shown
        self.data: dict[str, Any] = {}  # the plain data of each section, as read
        # An environment's overlay (environments.py): its file as shown, its plain data, and where to parse it
        # for positions. A position is the overlay's where it writes the loc at least as deep as the base does.
        self.overlay_file: str | None = None
        self.overlay_data: dict[str, Any] = {}
        self._overlay_path: Path | None = None
        self._overlay_doc: CommentedMap | None = None

    def with_overlay(self, shown: str, data: dict[str, Any], path: Path, doc: CommentedMap | None = None) -> "Source":
        """This base's positions, layered with an environment's overlay file."""
        out = Source(self.display_dir, self._reparse, self.files)
        out._sections, out.data = self._sections, self.data
        out.overlay_file, out.overlay_data, out._overlay_path, out._overlay_doc = shown, data, path, doc
        return out

    @property
    def overlay_doc(self) -> CommentedMap | None:
        if self._overlay_doc is None and self._overlay_path is not None:
            self._overlay_doc = _yaml().load(self._overlay_path.read_text(encoding="utf-8"))
        return self._overlay_doc

    def locate_in_overlay(self, loc: Loc) -> tuple[str, int, int, str]:
        """Where the overlay writes loc (as deep as it does); only for a loc it touches."""
        assert self.overlay_file is not None and self.overlay_doc is not None and self.overlay_touches(loc[:1]), loc
        return _walk(self.overlay_file, self.overlay_doc, loc, False)[1]

    def overlay_touches(self, loc: Loc) -> bool:
        """Whether the overlay writes anything at or below loc (a banner names it beside the base file)."""
        node: Any = self.overlay_data
        for part in loc:
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    @property
    def sections(self) -> dict[str, tuple[str, CommentedMap]]:
        if self._reparse is not None:
            self._sections = _read_sections(self._reparse, self.display_dir)[1]._sections
            self._reparse = None
        return self._sections

    def add(self, key: str, shown: str, doc: CommentedMap) -> None:
        self._sections[key] = (shown, doc)
        self.files[key] = shown

    def where(self, loc: Loc) -> tuple[str, str]:
        """(file, field path) of a loc as locate() gives them, from the plain data: nothing is parsed again."""
        if not loc or loc[0] not in self.files:
            return f"{self.display_dir}/", format_loc(loc)
        node, shown = self.data.get(loc[0]), [loc[0]]
        for part in loc[1:]:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                continue  # not written in the file (a default, a union tag): locate skips it too
            shown.append(part)
        return self.files[loc[0]], format_loc(shown)

    def locate(self, loc: Loc, missing_field: bool = False) -> tuple[str, int, int, str]:
        """(file, line, col, field path) for a loc; walks as deep into the YAML as the loc exists: into the
        overlay's file when it writes the loc as deep as the base does (it set the value), else the base's."""
        base = _walk(*self.sections[loc[0]], loc, missing_field) if loc and loc[0] in self.sections else None
        if loc and self.overlay_file is not None and loc[0] in self.overlay_data and self.overlay_doc is not None:
            over = _walk(self.overlay_file, self.overlay_doc, loc, missing_field)
            # A tie goes to the overlay where it replaced the value (a scalar, a list, a `$patch: replace` mapping),
            # to the base where the overlay's mapping only merged into it: the base defines the thing, and a field
            # that neither file writes is missing where that thing is defined.
            if base is None or over[0] > base[0] or over[0] == base[0] and not (
                    missing_field and over[0] < len(loc) or _merged(over[2]) and isinstance(base[2], CommentedMap)):
                return over[1]
        if base is None:
            return (f"{self.display_dir}/", 0, 0, format_loc(loc))
        return base[1]

    def problem(self, finding: Finding) -> Problem:
        file, line, col, path = self.locate(finding.loc)
        return Problem(file, line, col, path, finding.message)


def _merged(node: Any) -> bool:
    """Whether an overlay's node merges into the base's (a mapping without `$patch: replace`)."""
    return isinstance(node, CommentedMap) and node.get("$patch") != "replace"


def _walk(file: str, doc: CommentedMap, loc: Loc, missing_field: bool) -> tuple[int, tuple[str, int, int, str], Any]:
    """(how many parts of loc the file writes, its position, the node there) for a loc whose section it holds."""
    line, col = doc.lc.key(loc[0])
    node: Any = doc[loc[0]]
    shown: list = [loc[0]]
    depth = 1
    rest = list(loc[1:])
    for i, part in enumerate(rest):
        last = i == len(rest) - 1
        if isinstance(node, CommentedMap) and part in node:
            line, col = _key_position(node, part, (line, col))
            node = node[part]
            shown.append(part)
            depth += 1
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line, col = node.lc.item(part)
            node = node[part]
            shown.append(part)
            depth += 1
        elif last and missing_field and isinstance(part, str):
            shown.append(part)  # a required field that is not there: point at its parent
        # else: a pydantic union tag or '[key]' marker; it is not in the file, skip it
    return depth, (file, line + 1, col + 1, format_loc(shown)), node


def _key_position(node: CommentedMap, key: Any, fallback: tuple[int, int]) -> tuple[int, int]:
    """Where a key is written: in this mapping, or, for a key a merge (`<<: *anchor`) brought in, in the
    anchored mapping it came from; the mapping's own position if neither knows."""
    try:
        return node.lc.key(key)
    except KeyError:
        pass
    for entry in getattr(node, "merge", []) or []:
        merged = entry[1] if isinstance(entry, tuple) else entry  # (index, map) in older ruamel, the map in newer
        if isinstance(merged, CommentedMap) and key in merged:
            return _key_position(merged, key, fallback)
    return fallback


def _plain(node: Any) -> Any:
    """ruamel's round-trip types -> plain dict/list/str/int/float/bool/None (pydantic strict wants those)."""
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, (int, bool)) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, TaggedScalar) and node.tag.value == _STR_TAG:  # `!!str 1.0`: the string '1.0'
        return str(node.value)
    return node


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def _fields_at(loc: tuple) -> list[str] | None:
    """The YAML keys allowed where `loc` points (for 'did you mean'), by walking the model's types."""
    current: Any = Model
    for part in loc[:-1]:
        current = _step(current, part)
        if current is None:
            return None
    while get_origin(current) in (Union, UnionType) or get_origin(current) is Annotated:
        if get_origin(current) is Annotated:
            current = _unannotated(current)
            continue
        args = [a for a in get_args(current) if a is not type(None)]
        current = args[0] if len(args) == 1 else None
        if current is None:
            return None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return None


def _unannotated(tp: Any) -> Any:
    """Annotated[T, ...] -> T; the kinds' union (model.KindUnion) -> the union of their classes."""
    base, *meta = get_args(tp)
    kinds = next((m for m in meta if isinstance(m, KindUnion)), None)
    return kinds.union() if kinds is not None else base


def _step(tp: Any, part: Any) -> Any:
    """The type one loc element below `tp` (field, dict value, list item, or discriminated union member)."""
    while get_origin(tp) is Annotated:
        tp = _unannotated(tp)
    origin = get_origin(tp)
    if origin in (Union, UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        for member in members:  # pydantic puts the union tag in the loc
            literal = getattr(member, "model_fields", {}).get("type") or getattr(member, "model_fields", {}).get("strategy")
            if literal is not None and part in get_args(literal.annotation):
                return member
        return _step(members[0], part) if len(members) == 1 else None
    if origin is dict:
        return get_args(tp)[1]
    if origin is list:
        return get_args(tp)[0]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, f in tp.model_fields.items():
            if part in (name, f.alias):
                return f.annotation
    return None


def _message(err: dict) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        allowed = _fields_at(tuple(err["loc"]))
        field = str(err["loc"][-1])
        if allowed:
            close = difflib.get_close_matches(field, allowed, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
            return f"unknown field ({hint})"
        return "unknown field"
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    value = err.get("input")
    if isinstance(value, (str, int, float, bool)) or value is None:
        shown = repr(value) if isinstance(value, str) else ("null" if value is None else str(value).lower() if isinstance(value, bool) else value)
        return f"{msg[0].lower()}{msg[1:]} (got {shown})"
    return f"{msg[0].lower()}{msg[1:]}"


def _merge_alternatives(problems: list[Problem]) -> list[Problem]:
    """A value that fits none of a union's types gets one error per type; say it once: 'a or b (got x)'."""
    groups: dict[tuple, list[str]] = {}
    for p in problems:
        groups.setdefault((p.file, p.line, p.col, p.field), []).append(p.message)
    out = []
    for (file, line, col, path), messages in groups.items():
        got = {m[m.rindex(" (got "):] for m in messages if " (got " in m}
        if len(messages) > 1 and len(got) == 1 and all(" (got " in m for m in messages):
            suffix = got.pop()
            parts = [m[: m.rindex(" (got ")].removeprefix("input should be ") for m in messages]
            messages = [f"input should be {' or '.join(dict.fromkeys(parts))}{suffix}"]
        out.extend(Problem(file, line, col, path, m) for m in dict.fromkeys(messages))
    return out


MAX_DEPTH = 64  # the Eco² model nests 9 deep; the YAML parser's recursion gives out in the thousands
MAX_INT_DIGITS = 4300  # Python's int() limit (sys.get_int_max_str_digits())
_LONG_INT = re.compile(r"[-+]?[0-9_]{%d,}" % (MAX_INT_DIGITS + 1))


def _long_int(text: str) -> tuple[int, int, int] | None:
    """(line, col, digits) of the first integer too long for Python to convert."""
    match = _LONG_INT.search(text)
    if match is None:
        return None
    line = text.count("\n", 0, match.start()) + 1
    col = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
    return line, col, len(match.group().lstrip("+-").replace("_", ""))


MAX_FILE_BYTES = 2 * 1024 * 1024  # a model file; Eco² has 27 KB in all, 1000 services about 0.5 MB
MAX_VALUES = 200_000  # values (scalars, collections) in one file, aliases expanded; Eco² has 2,010, a service 51


def _bounds_problem(text: str) -> tuple[int, int, str] | None:
    """(line, col, message) where the document nests deeper than MAX_DEPTH, holds more than MAX_VALUES values once
    its aliases are expanded ("billion laughs"), or has an alias inside its own anchor; judged on the parser's
    event stream, where an anchor is measured once and an alias costs one step, so in time linear in the file and
    memory linear in its anchors, before anything composes, recurses into or copies a value."""
    try:  # libyaml's parser, about 50x faster than ruamel's pure-Python one
        return _bounds_in(yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    except yaml.YAMLError:  # libyaml (YAML 1.1) and ruamel (1.2) disagree on the syntax: ruamel decides
        return _bounds_in(_yaml().parse(text))


_OPEN = {"MappingStartEvent", "SequenceStartEvent"}
_STR_TAG = "tag:yaml.org,2002:str"
# The YAML tags a model may carry: the plain types, written explicitly (`!!str 1.0` to keep a string a string).
# Others (`!!binary`, `!!timestamp`, `!!set`, an application tag like `!secret`) mean nothing to the model.
_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")} | {"!"}
_CLOSE = {"MappingEndEvent", "SequenceEndEvent"}


def _bounds_in(events: Iterator[Any]) -> tuple[int, int, str] | None:
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (values, depth) once its node is complete
    stack: list[list] = []  # per open collection: [anchor, depth of its deepest child, values before it]
    total = 0
    for event in events:  # PyYAML's and ruamel's event classes have the same names and fields
        kind, mark = type(event).__name__, event.start_mark
        tag = getattr(event, "tag", None)
        tag = getattr(tag, "value", tag)  # ruamel wraps it in a Tag; libyaml gives the string
        if tag is not None and tag not in _PLAIN_TAGS:
            shown = "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag
            return mark.line, mark.column, (f"YAML tag {shown} is not supported: the model is plain YAML (strings, "
                                            "numbers, booleans, lists and mappings)")
        if kind in _OPEN:
            stack.append([event.anchor, 0, total])
            total += 1
            if len(stack) > MAX_DEPTH:
                return mark.line, mark.column, f"nested more than {MAX_DEPTH} levels deep; a model is far flatter"
        elif kind in _CLOSE:
            anchor, below, start = stack.pop()
            if stack:
                stack[-1][1] = max(stack[-1][1], below + 1)
            if anchor is not None:
                anchors[anchor] = (total - start, below + 1)
        elif kind == "ScalarEvent":
            total += 1
            if event.anchor is not None:
                anchors[event.anchor] = (1, 0)
        elif kind == "AliasEvent":
            if any(frame[0] == event.anchor for frame in stack):
                return mark.line, mark.column, f"alias *{event.anchor} is inside its own anchor: the value would be infinite"
            if event.anchor not in anchors:
                continue  # undefined: the composer reports it
            values, depth = anchors[event.anchor]
            total += values
            if stack:
                stack[-1][1] = max(stack[-1][1], depth)
            if len(stack) + depth > MAX_DEPTH:
                return mark.line, mark.column, f"alias *{event.anchor} nests the values more than {MAX_DEPTH} levels deep; a model is far flatter"
            if total > MAX_VALUES:
                return mark.line, mark.column, f"alias *{event.anchor} expands the file past {MAX_VALUES:,} values; a model has thousands"
            continue
        else:
            continue
        if total > MAX_VALUES:
            return mark.line, mark.column, f"more than {MAX_VALUES:,} values in one file; a model has thousands"
    return None


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, col) of a character offset."""
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _syntax_problem(exc: MarkedYAMLError) -> tuple[int, int, str]:
    """Where a YAML syntax error is, on one line: an unclosed quote or bracket where it opens (the parser only
    notices at the end of the file, or on a later line), anything else where the parser stopped."""
    problem = " ".join(str(exc.problem or exc.context or "").split())
    context = " ".join(str(exc.context or "").split())
    opened = exc.context_mark is not None and context.startswith(("while scanning a quoted scalar", "while parsing a flow"))
    if opened:
        what = {"while scanning a quoted scalar": "quoted string"}.get(context, context.removeprefix("while parsing a "))
        mark = exc.problem_mark
        where = f" at {mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        return exc.context_mark.line + 1, exc.context_mark.column + 1, f"the {what} opened here is not closed ({problem}{where})"
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return line, col, problem


def unknown_section(shown: str, line: int, col: int, key: Any, allowed: tuple[str, ...], listing: str) -> Problem:
    """A top-level key that is no section (0-based position), with the closest one or the list."""
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"{listing}: {', '.join(allowed)}"
    return Problem(shown, line + 1, col + 1, str(key), f"unknown section ({hint})")


def _checked_text(path: Path, shown: str) -> tuple[str | None, list[Problem]]:
    """A model file's text, or None and why not: size, encoding, characters, numbers and bounds, all judged before
    a YAML constructor sees it."""

    def bad(line: int, col: int, message: str) -> tuple[None, list[Problem]]:
        return None, [Problem(shown, line, col, "", message)]

    if (size := path.stat().st_size) > MAX_FILE_BYTES:
        return bad(0, 0, f"is {size / 1024 / 1024:.1f} MiB; a model file is at most {MAX_FILE_BYTES // 1024 // 1024} MiB")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[:exc.start].decode("utf-8")
        return bad(*_position(before, len(before)), f"byte 0x{raw[exc.start]:02x} is not UTF-8; model files are UTF-8 text")
    if (nul := re.search(r"[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]", text)) is not None:
        # what YAML 1.2 forbids in a stream (section 5.1): reported where it is, not at 1:1 by the reader
        return bad(*_position(text, nul.start()), f"control character U+{ord(nul.group()):04X} is not allowed in YAML")
    if (long := _long_int(text)) is not None:
        return bad(long[0], long[1], f"a number of {long[2]} digits; no field of the model takes more than a few")
    try:
        bounds = _bounds_problem(text)
    except MarkedYAMLError as exc:
        line, col, message = _syntax_problem(exc)
        return bad(line, col, f"YAML syntax: {message}")
    except YAMLError as exc:
        return bad(1, 1, f"cannot be read as YAML: {' '.join(str(exc).split())}")
    if bounds is not None:
        return bad(bounds[0] + 1, bounds[1] + 1, bounds[2])
    return text, []


def read_file(path: Path, shown: str, empty_ok: bool = False) -> tuple[CommentedMap | None, list[Problem]]:
    """One model file parsed with positions, or None and why not (size, encoding, bounds, syntax, shape)."""

    def bad(line: int, col: int, message: str) -> tuple[None, list[Problem]]:
        return None, [Problem(shown, line, col, "", message)]

    text, trouble = _checked_text(path, shown)
    if text is None:
        return None, trouble
    try:
        doc = _yaml().load(text)
    except MarkedYAMLError as exc:
        line, col, message = _syntax_problem(exc)
        return bad(line, col, f"YAML syntax: {message}")
    except YAMLError as exc:
        return bad(1, 1, f"cannot be read as YAML: {' '.join(str(exc).split())}")
    if doc is None and empty_ok:
        return CommentedMap(), []
    if doc is None:
        return bad(1, 1, "file is empty; it must hold a mapping of model sections")
    if not isinstance(doc, CommentedMap):
        return bad(1, 1, f"top level must be a mapping of model sections, not a {type(doc).__name__}")
    return doc, []


def _fast_yaml() -> YAML:
    """ruamel's safe loader on libyaml's parser (ruamel.yaml.clib): the same YAML 1.2 resolver and constructor
    checks as the round trip, without positions, about 5x faster (1.2 s against 5.8 s for 1000 services)."""
    yaml = YAML(typ="safe", pure=False)
    yaml.allow_duplicate_keys = False
    return yaml


def fast_sections(paths: list[Path], display_dir: str) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The plain data of model files that read without any problem, and which file writes each section; None when
    any file has a problem (or YAML only the round-trip reader takes): that reader finds and places it."""
    data: dict[str, Any] = {}
    files: dict[str, str] = {}
    for path in paths:
        shown = f"{display_dir}/{path.name}"
        text, trouble = _checked_text(path, shown)
        if text is None or "<<" in text:  # a merge key: the round trip orders the merged keys after the mapping's own
            return None
        try:
            doc = _fast_yaml().load(text)
        except Exception:  # noqa: BLE001  (any refusal: the round trip reports it, at its position)
            return None
        if not isinstance(doc, dict) or any(type(k) is not str or k not in SECTIONS or k in data for k in doc):
            return None  # empty, not a mapping, an unknown or repeated section: problems with a position
        for key, value in doc.items():
            data[key], files[key] = _plain(value), shown
    if not memo.json_safe(data):  # a timestamp, a mapping key that is not a string, NaN: types only the round trip
        return None  # gives exactly (a TimeStamp, not a datetime), for the schema to refuse at their position
    return data, files


def read_sections(values_dir: Path, display_dir: str) -> tuple[dict[str, Any], Source, list[Problem], bool]:
    """Parse every values/*.yaml: the merged plain data, the positions, problems, and whether a file was unreadable.

    A model without problems is read fast and its positions are parsed on demand (an error, a finding, set-image);
    the same bytes read before come from the memo. Any problem, and only then, takes the round-trip reader."""
    m = memo.active()
    paths = _model_paths(values_dir)
    if not paths or not all(p.is_file() and p.stat().st_size <= MAX_FILE_BYTES for p in paths):
        return _read_sections(values_dir, display_dir)
    parsed: list = []

    def read() -> dict[str, Any]:
        fast = fast_sections(paths, display_dir)
        if fast is None:
            parsed.append(_read_sections(values_dir, display_dir))
            data, source, problems, unreadable = parsed[0]
            if problems or unreadable or not memo.json_safe(data):
                raise memo.Unstorable(None)
            fast = data, source.files
        data, files = fast
        return {"data": data, "files": {k: f.removeprefix(display_dir + "/") for k, f in files.items()}}
    if m is None:
        try:
            stored = read()
        except memo.Unstorable:
            return parsed[0]
    else:
        stored = m.get("model", _model_key(paths), read)
    if parsed:
        return parsed[0]
    files = {k: f"{display_dir}/{name}" for k, name in stored["files"].items()}
    source = Source(display_dir, reparse=values_dir, files=files)
    source.data = stored["data"]
    return stored["data"], source, [], False


def _model_paths(values_dir: Path) -> list[Path]:
    return sorted(p for p in values_dir.iterdir() if p.suffix in (".yaml", ".yml")) if values_dir.is_dir() else []


def _model_key(paths: list[Path]) -> bytes:
    """The memo key of the model read: every model file's name and bytes."""
    return b"".join(p.name.encode() + b"\0" + p.read_bytes() + b"\0" for p in paths)


def remember_read(values_dir: Path, display_dir: str, data: dict[str, Any], files: dict[str, str]) -> None:
    """Record, for the model files now in values_dir, the plain data and section files read_sections would give: for
    an edit whose meaning its caller has proven (set-image's one scalar), so that reading the edited model back costs
    no parse. Without an active memo, nothing."""
    m = memo.active()
    if m is not None:
        m.store("model", _model_key(_model_paths(values_dir)),
                {"data": data, "files": {k: f.removeprefix(display_dir + "/") for k, f in files.items()}})


def _read_sections(values_dir: Path, display_dir: str) -> tuple[dict[str, Any], Source, list[Problem], bool]:
    source = Source(display_dir)
    data: dict[str, Any] = {}
    problems: list[Problem] = []
    unreadable = False
    candidates = sorted(p for p in values_dir.iterdir() if p.suffix in (".yaml", ".yml")) if values_dir.is_dir() else []
    # A model file that is not a readable file (a dangling symlink, a directory) is an error, never silently
    # skipped: its sections would only seem to be missing.
    broken = [Problem(f"{display_dir}/{p.name}", 0, 0, "", "is a symbolic link to nothing" if p.is_symlink() and not p.exists()
                      else "is not a regular file") for p in candidates if not p.is_file()]
    if broken:
        raise InvalidModel(broken)
    files = candidates
    if not files:
        raise InvalidModel([Problem(f"{display_dir}/", 0, 0, "", "no model files (*.yaml) found")])
    for path in files:
        shown = f"{display_dir}/{path.name}"
        doc, trouble = read_file(path, shown)
        if doc is None:
            problems.extend(trouble)
            unreadable = True
            continue
        for key in doc:
            line, col = doc.lc.key(key)
            if key not in SECTIONS:
                problems.append(unknown_section(shown, line, col, key, SECTIONS, "the model has"))
            elif key in source.sections:
                first, first_doc = source.sections[key]
                first_line = first_doc.lc.key(key)[0] + 1
                problems.append(Problem(shown, line + 1, col + 1, str(key), f"section already defined at {first}:{first_line}"))
            else:
                source.add(key, shown, doc)
                data[key] = source.data[key] = _plain(doc[key])
    return data, source, problems, unreadable


@dataclass(frozen=True)
class Loaded:
    model: Model
    source: Source

    @cached_property
    def plan(self) -> "plan.Plan":
        """The facts derived from the model, computed on first use (a model that failed its checks never gets here)."""
        from ..plan import plan

        return plan.build(self.model)


def load(values_dir: Path, display_dir: str = "values", run_checks: bool = True, env: str | None = None) -> Loaded:
    """One environment's validated model and where each part was written (the last, production, unless `env` names
    another), or InvalidModel with every problem, each at file:line:col. environments.load gives them all.

    run_checks=False stops after the schema (types, unknown keys): for tests of single cross-object rules.
    """
    from . import environments

    envs = environments.load(values_dir, display_dir, run_checks, only=(env,) if env else ())
    return envs[env] if env else list(envs.values())[-1]


def build(read: tuple[dict[str, Any], Source, list[Problem], bool], display_dir: str = "values",
          run_checks: bool = True) -> Loaded:
    """load() from what read_sections() gave (set-image reads its edited copy once, compares, then builds)."""
    data, source, problems, unreadable = read
    if unreadable:  # its sections are unknown: checking the rest would only report them as missing
        raise InvalidModel(problems)
    try:
        model = Model.model_validate(data, by_alias=True)
    except ValidationError as exc:
        out = list(problems)
        for err in exc.errors():
            # a FieldError names the field below the validated object that is wrong
            loc = tuple(err["loc"]) + getattr(err.get("ctx", {}).get("error"), "loc", ())
            file, line, col, path = source.locate(loc, missing_field=err["type"] == "missing")
            if err["type"] == "missing" and len(err["loc"]) == 1:
                out.append(Problem(f"{display_dir}/", 0, 0, path, "required section is missing: no file in values/ defines it"))
            else:
                out.append(Problem(file, line, col, path, _message(err)))
        raise InvalidModel(_merge_alternatives(out)) from None
    if problems:
        raise InvalidModel(problems)
    findings = _checked(model, data) if run_checks else []
    if findings:
        raise InvalidModel(source.problem(f) for f in findings)
    return Loaded(model, source)


def _checked(model: Model, data: dict[str, Any]) -> list[Finding]:
    """checks.run(model), except for data whose model passed them before (the memo keeps passes only): set-image
    loads the model it edits, the edited one, then its render loads that again."""
    m = memo.active()
    key = memo.key_of(data) if m is not None else None
    if key is not None and m.lookup("checks-passed", key) is not None:
        return []
    findings = checks.run(model)
    if key is not None and not findings:
        m.store("checks-passed", key, True)
    return findings
