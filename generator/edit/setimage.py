"""set-image: pin one component's image to a new tag or digest by a byte-exact splice into values/, validated before any write."""

from __future__ import annotations

import difflib
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml
from pydantic import ValidationError
from ruamel.yaml.nodes import MappingNode, Node

from .. import memo, pipeline
from ..errors import InvalidModel, Loc, Problem, format_loc
from ..model import environments, loader
from ..model.model import Image
from ..plan import resolve
from ..write import output
from . import yamledit

# How the edit works, in one place (the README's "set-image" section says the same):
#
# * The file is edited as text: only the characters of the tag (or digest) scalar as written are
#   replaced, at the exact position the YAML parser reports. Comments, key order, quoting, spacing,
#   line endings (LF or CRLF), a BOM and every other byte stay as they are. A quoted value stays
#   quoted in the same quotes; a plain value stays plain unless the new one would not read back as
#   that string (`16.10` is a float to YAML), then it is double-quoted.
# * A tag REF sets `tag`, a digest REF sets `digest`, `<tag>@<digest>` sets both. The other field is
#   kept: setting a digest on a tagged image gives tag@digest. Nothing is ever removed.
# * The one case that inserts text rather than replacing it: the field is not written yet (a
#   digest-only image gets a tag, or a tag-only image a digest). Flow mappings get `, tag: x` after
#   `repository` (or `, digest: x` after `tag`), on the same line; block mappings (and flow mappings
#   written over several lines) get a new line with the siblings' indentation - the only case in
#   which set-image adds a line.
# * Only the component's own `image` is reachable; the exporter images of postgresql and redis
#   (`exporter.image`) are not the component's image and are left alone.

TAG, DIGEST = "tag", "digest"
# `sha256:...` or `<algorithm>:<long hex>` is meant as a digest: it gets the digest rule's message, not the tag rule's.
_DIGEST_LIKE = re.compile(r"^(sha256:.*|[A-Za-z][A-Za-z0-9+._-]*:[0-9A-Fa-f]{16,})$", re.IGNORECASE)

Log = Callable[[str], None]


@dataclass(frozen=True)
class Ref:
    """What to set: a tag, a digest, or both."""

    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Ref:
        """'v0.6.1' -> tag, 'sha256:<hex>' -> digest, 'v0.6.1@sha256:<hex>' -> both. Syntax only: validity is the model's."""
        if "@" in text:
            tag, digest = text.split("@", 1)
            return cls(tag or None, digest)  # '@sha256:...' is a digest alone
        if _DIGEST_LIKE.match(text):
            return cls(digest=text)
        return cls(tag=text)

    def fields(self) -> dict[str, str]:
        return {k: v for k, v in ((TAG, self.tag), (DIGEST, self.digest)) if v is not None}


@dataclass(frozen=True)
class Change:
    """One value changed in a model file; `line` is 1-based, in the new text."""

    file: str
    line: int
    field: str
    old: str | None
    new: str
    added_line: bool = False

    def __str__(self) -> str:
        old = self.old if self.old is not None else "(not set)"
        return f"{self.file}:{self.line}: {self.field}: {old} → {self.new}" + (" (added line)" if self.added_line else "")


@dataclass(frozen=True)
class Plan:
    """A validated edit of one model file, not yet written. `before == after` means there is nothing to do."""

    component: str
    field: str  # the image's field path, e.g. services.waste.image
    path: Path
    display: str  # e.g. values/services.yaml
    before: bytes
    after: bytes
    changes: tuple[Change, ...]
    notes: tuple[str, ...]

    @property
    def noop(self) -> bool:
        return self.before == self.after


@dataclass(frozen=True)
class Result:
    plan: Plan
    written: bool
    rendered: tuple[str, ...]  # generated files (relative to the root) that the re-render changed


# ---------------------------------------------------------------- planning


def plan(values_dir: Path, component: str, ref: str | Ref, display_dir: str = "values") -> Plan:
    """The edit that pins `component`'s image to `ref`, checked on a copy of the whole model; writes nothing.

    Raises InvalidModel (one located problem per line) when the model does not load, the component
    does not exist or has no image, the ref is not immutable, or the edited model would be invalid.
    """
    envs = environments.load(values_dir, display_dir)  # the edit starts from a valid model, or says why not
    loaded = list(envs.values())[-1]  # the last environment, production
    comp = _component(loaded, component)
    image_loc = comp.loc + ("image",)
    image: Image = comp.spec.image  # type: ignore[union-attr]  # _component checked it
    parsed = ref if isinstance(ref, Ref) else Ref.parse(ref)
    if loaded.source.overlay_touches(image_loc):  # the base's line would not change this environment's image
        env = loaded.model.cluster.environment
        file, line, col, path = loaded.source.locate_in_overlay(image_loc)
        raise InvalidModel([Problem(file, line, col, path, f"{env} sets this image in its overlay; set-image without "
                                    f"--env edits the base model: use --env {env}")])
    _validate_ref(loaded.source, image_loc, image, parsed)
    wanted = {f: v for f, v in parsed.fields().items() if getattr(image, f) != v}
    notes = _notes(image, parsed, format_loc(image_loc)) + tuple(
        f"{env} keeps its own image ({other.source.locate_in_overlay(image_loc)[0]}:"
        f"{other.source.locate_in_overlay(image_loc)[1]}); set it with --env {env}"
        for env, other in envs.items() if other is not loaded and other.source.overlay_touches(image_loc)
        and component in resolve.by_name(other.model))
    section_file = loaded.source.files[image_loc[0]]  # known without parsing positions again
    path = values_dir / Path(section_file).name
    before = path.read_bytes()
    if not wanted:
        return Plan(component, format_loc(image_loc), path, section_file, before, before, (), notes)
    text = before.decode("utf-8")
    new_text, changes = _splice(text, image_loc, wanted, image, section_file, loaded.source)
    after = new_text.encode("utf-8")
    _validate_copy(values_dir, path.name, after, display_dir, component, wanted, image_loc, loaded.source, image, before)
    return Plan(component, format_loc(image_loc), path, section_file, before, after, tuple(changes), notes)


def _component(loaded: loader.Loaded, name: str) -> resolve.Component:
    comps = resolve.components(loaded.model)
    with_image = [c for c in comps if isinstance(getattr(c.spec, "image", None), Image)]
    found = next((c for c in comps if c.name == name), None)
    source = loaded.source
    if found is None:
        close = difflib.get_close_matches(name, [c.name for c in with_image], n=1, cutoff=0.6)
        if close:
            near = next(c for c in with_image if c.name == close[0])
            file, line, col, _ = source.locate(near.loc[:1])
            raise InvalidModel([Problem(file, line, col, format_loc(near.loc[:1] + (name,)),
                                        f"no component named {name!r} (did you mean {close[0]!r}?)")])
        names = ", ".join(sorted(c.name for c in with_image)) or "none"
        raise InvalidModel([Problem(f"{source.display_dir}/", 0, 0, name,
                                    f"no component named {name!r} (components with an image: {names})")])
    if found not in with_image:
        file, line, col, path = source.locate(found.loc)
        if found.kind == resolve.PLATFORM:
            why = "it is the platform app (namespaces, their policies, the ingress) and runs no image of its own"
        elif found.upstream:
            chart = found.spec.chart  # type: ignore[union-attr]
            why = f"it is {found.kind}, whose images come from its upstream chart {chart.name} {chart.version}"
        else:
            why = f"a {found.kind} component has no image field"
        names = ", ".join(sorted(c.name for c in with_image))
        raise InvalidModel([Problem(file, line, col, path,
                                    f"component {name!r} has no image: {why} (components with an image: {names})")])
    return found


def _validate_ref(source: loader.Source, image_loc: Loc, image: Image, ref: Ref) -> None:
    """The model's own Image rules (immutable tag, sha256 digest), applied to the image as it would become."""
    data = {"repository": image.repository, TAG: image.tag, DIGEST: image.digest} | ref.fields()
    try:
        Image.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = err["loc"][0] if err["loc"] else TAG
            file, line, col, path = source.locate(image_loc + (field,), missing_field=True)
            message = err["msg"].removeprefix("Value error, ")
            value = data.get(field)
            if field == TAG and isinstance(value, str) and ("/" in value or ":" in value):
                message += "; give the tag alone (v0.6.1), not repository:tag"
            problems.append(Problem(file, line, col, path, message))
        raise InvalidModel(problems) from None


def _notes(image: Image, ref: Ref, field: str) -> tuple[str, ...]:
    """What the user might not expect: the field the ref does not set is kept."""
    if ref.tag is not None and ref.digest is None and image.digest is not None:
        return (f"{field}.digest stays {image.digest}: the digest decides what runs, so the new tag changes nothing "
                f"in the cluster; set both with {ref.tag}@sha256:<hex>",)
    if ref.digest is not None and ref.tag is None and image.tag is not None:
        return (f"{field}.tag stays {image.tag} (the image is now pinned by tag and digest; the digest decides what runs)",)
    return ()


# ---------------------------------------------------------------- the text edit


# The shared text-edit helpers (yamledit.py): set-image keeps its own image-specific splice on top of them.
_yaml, _Unsupported, _compose, _child = yamledit.rt_yaml, yamledit.Unsupported, yamledit.compose, yamledit.child
_MAPPINGS, _SCALARS = yamledit.MAPPINGS, yamledit.SCALARS
_scalar, _line_end, _reads_back = yamledit.scalar, yamledit.line_end, yamledit.reads_back


def _find(root: Node, loc: Loc) -> MappingNode:
    node = root
    for part in loc:
        pair = _child(node, part)
        if pair is None:
            raise _Unsupported(f"{format_loc(loc)} is not written out as such in the file (a YAML merge key or alias?)")
        node = pair[1]
    if not isinstance(node, _MAPPINGS):
        raise _Unsupported(f"{format_loc(loc)} is not a mapping")
    return node


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    replacement: str
    value_at: int  # where the new value starts inside the replacement (for the reported line)
    field: str
    old: str | None
    new: str


def _replace(text: str, image: MappingNode, field: str, value: str, old: str | None) -> _Edit:
    key, node = _child(image, field)  # type: ignore[misc]
    scalar = yamledit.replacement(text, node, value, bool(image.flow_style), field)
    return _Edit(node.start_mark.index, node.end_mark.index, scalar, 0, field, old, value)


def _insert(text: str, image: MappingNode, field: str, value: str) -> _Edit:
    """Add `field: value` after its natural predecessor (tag after repository, digest after tag), in the siblings' style."""
    pairs = image.value
    names = [k.value for k, _ in pairs]
    after = "repository" if field == TAG or TAG not in names else TAG
    if after not in names:
        raise _Unsupported(f"it has no {after} to place the new {field} after")
    i = names.index(after)
    key, node = pairs[i]
    kv = text[key.end_mark.index:node.start_mark.index]
    if "\n" in kv or not kv.startswith(":"):  # a comment there would also end in a line break
        kv = ": "
    scalar = _scalar(value, None, bool(image.flow_style))
    nl = _line_end(text, node.end_mark.index)
    if image.flow_style:
        sep = ", "
        if len(pairs) >= 2:  # copy the spacing between two existing entries
            j = i if i + 1 < len(pairs) else i - 1
            sep = text[pairs[j][1].end_mark.index:pairs[j + 1][0].start_mark.index]
            if "#" in sep:  # a comment between entries (it ends in a line break): keep the break and the indent only
                sep = "," + nl + sep[sep.rfind("\n") + 1:]
        head = sep + field + kv
        return _Edit(node.end_mark.index, node.end_mark.index, head + scalar, len(head), field, None, value)
    indent = " " * key.start_mark.column
    end = node.end_mark.index
    if node.end_mark.column == 0 and end > node.start_mark.index:  # a block scalar ends at the next line's start
        return _Edit(end, end, indent + field + kv + scalar + nl, len(indent + field + kv), field, None, value)
    eol = text.find("\n", end)
    if eol == -1:  # the last line has no line break: keep it that way
        head = nl + indent + field + kv
        return _Edit(len(text), len(text), head + scalar, len(head), field, None, value)
    return _Edit(eol + 1, eol + 1, indent + field + kv + scalar + nl, len(indent + field + kv), field, None, value)


def _splice(text: str, image_loc: Loc, wanted: dict[str, str], image: Image, display: str,
            source: loader.Source) -> tuple[str, list[Change]]:
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    text = text[len(bom):]
    try:
        mapping = _find(_compose(text), image_loc)
        edits = [_replace(text, mapping, f, v, getattr(image, f)) if _child(mapping, f) else _insert(text, mapping, f, v)
                 for f, v in wanted.items()]
    except _Unsupported as exc:
        file, line, col, path = source.locate(image_loc)
        raise InvalidModel([Problem(file, line, col, path, f"cannot be edited in place: {exc}; set it by hand")]) from None
    out, pos, shift, changes = [], 0, 0, []
    for e in sorted(edits, key=lambda e: e.start):
        out += [text[pos:e.start], e.replacement]
        line = text.count("\n", 0, e.start) + 1 + shift + e.replacement.count("\n", 0, e.value_at)
        added = e.replacement.count("\n")  # what it replaces is on one line (_replace refuses more)
        changes.append(Change(display, line, format_loc(image_loc + (e.field,)), e.old, e.new, added_line=added > 0))
        shift += added
        pos = e.end
    out.append(text[pos:])
    return bom + "".join(out), changes


def _with(data: dict[str, Any], loc: Loc, wanted: dict[str, str]) -> dict[str, Any]:
    """`data` with `wanted` set in the mapping at `loc`, copying only the mappings on the way."""
    if not loc:
        return {**data, **wanted}
    return {**data, loc[0]: _with(data[loc[0]], loc[1:], wanted)}


def _only_image_changed(read: tuple, old: loader.Source, image_loc: Loc, wanted: dict[str, str]) -> None:
    """Belt and braces: the model must mean exactly what it meant before, except the fields set, as the loader
    reads it (`read`: read_sections of the edited copy; `old`: the source of the model before the edit).

    Catches what a splice cannot see, e.g. an image shared through a YAML anchor (the edit would move
    every alias) or a value that does not read back as the string written.
    """
    data, _, _, unreadable = read
    if unreadable or data != _with(old.data, image_loc, wanted):
        file, line, col, path = old.locate(image_loc)
        raise InvalidModel([Problem(file, line, col, path, "cannot be edited in place: the edit would change more than "
                                    "this image (is it shared through a YAML anchor?); set it by hand")])


def _events(text: str) -> list[tuple]:
    """The YAML event stream of text without positions: what a loader builds its data from (C, about 0.1 s for the
    0.6 MB services.yaml of 1000 services, where constructing the data takes 0.7 s)."""
    return [(type(e).__name__, getattr(e, "anchor", None), getattr(e, "tag", None), getattr(e, "implicit", None),
             getattr(e, "value", None), getattr(e, "style", None) or None, getattr(e, "flow_style", None))
            for e in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))]


def _means_only(before: str, after: str, old: dict[str, str | None], wanted: dict[str, str]) -> bool:
    """Whether `after` provably reads as `before` with the scalars holding `old` values now holding the `wanted` ones,
    and nothing else changed: the two event streams are equal but for exactly those scalars (same style, anchor, tag),
    no alias can repeat them (the file has none), and a plain new value resolves to that string. Anything else (an
    inserted line, a merge key, YAML libyaml refuses) is False: the caller then reads the edited file in full."""
    if "<<" in after:
        return False
    try:
        a, b = _events(before), _events(after)
    except yaml.YAMLError:
        return False
    if len(a) != len(b) or any(e[0] == "AliasEvent" for e in a):
        return False
    expected = {(old[f], v) for f, v in wanted.items() if old.get(f) is not None}
    if len(expected) != len(wanted):
        return False
    seen = set()
    for x, y in zip(a, b):
        if x == y:
            continue
        if x[0] != "ScalarEvent" or x[:4] != y[:4] or x[5:] != y[5:] or (x[4], y[4]) not in expected:
            return False
        if y[5] is None and not (yamledit.reads_back(y[4], y[4], True) and yamledit.reads_back(y[4], y[4], False)):
            return False
        seen.add((x[4], y[4]))
    return seen == expected and sum(x != y for x, y in zip(a, b)) == len(expected)


def _validate_copy(values_dir: Path, name: str, after: bytes, display_dir: str, component: str,
                   wanted: dict[str, str], image_loc: Loc, old: loader.Source, image: Image, before: bytes) -> None:
    """Read the whole model with the edited file in a scratch copy, once: it must mean what it meant but for the
    image, and every type and cross-check must still hold. Under a memo (set_image), that read is the one the
    render after it finds there.

    Where the event streams prove the edit changed nothing but the image's scalars (_means_only), the data read
    back is the old data with those fields set, recorded for the reader instead of parsing the edited file again;
    the types and every cross-check still run on it."""
    with tempfile.TemporaryDirectory(prefix="set-image-") as tmp:
        scratch = Path(tmp) / "values"
        scratch.mkdir()
        for p in values_dir.iterdir():  # what the loader reads: the top-level model files
            if p.suffix in (".yaml", ".yml") and p.is_file():
                shutil.copyfile(p, scratch / p.name)
        if (values_dir / environments.OVERLAY_DIR).is_dir():  # and the overlays: every environment must still hold
            shutil.copytree(values_dir / environments.OVERLAY_DIR, scratch / environments.OVERLAY_DIR)
        (scratch / name).write_bytes(after)
        if _means_only(before.decode("utf-8"), after.decode("utf-8"), {f: getattr(image, f) for f in wanted}, wanted):
            loader.remember_read(scratch, display_dir, _with(old.data, image_loc, wanted), old.files)
        read = loader.read_sections(scratch, display_dir)  # problems name values/<file> as if it were the real one
        _only_image_changed(read, old, image_loc, wanted)
        new = list(environments.load(scratch, display_dir).values())[-1]
    image = resolve.by_name(new.model)[component].spec.image  # type: ignore[union-attr]
    assert all(getattr(image, f) == v for f, v in wanted.items()), (image, wanted)


# ---------------------------------------------------------------- writing and rendering


def _atomic_write(target: Path, data: bytes) -> None:
    """Write beside the target under a name the loader ignores (no .yaml suffix), then rename over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write(p: Plan) -> None:
    """Replace the model file atomically, unless someone changed it since it was planned (then nothing is written)."""
    target = p.path.resolve()  # a symlinked model file stays a symlink; its target is rewritten
    if target.read_bytes() != p.before:
        raise InvalidModel([Problem(p.display, 0, 0, "", "changed on disk while set-image ran; nothing was written, run it again")])
    _atomic_write(target, p.after)


def display_dir(values_dir: Path, root: Path) -> str:
    """How messages name the model directory: relative to the root when inside it (as `render` does)."""
    try:
        return values_dir.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return values_dir.as_posix()


def set_image(root: Path, component: str, ref: str | Ref, values: Path | None = None, render: bool = True,
              hydrate: bool = True, crds: Path | None = None, log: Log = pipeline.stderr) -> Result:
    """Plan, write and re-render as `render` does (hydrate and validate unless hydrate=False).

    If rendering fails for any reason (helm, validation findings, ...) the model file is put back and
    the error is raised: nothing changes.
    """
    values_dir = values or root / "values"
    opts = pipeline.Options(root=root, values=values_dir, hydrate=hydrate, validate=hydrate, crds=crds)
    with output.locked(root):  # no other render or set-image edits the model or the tree meanwhile
        with memo.using(pipeline.memo_for(opts)):  # the model as the last render read it; the edited one for the next
            p = plan(values_dir, component, ref, display_dir(values_dir, root))
        if p.noop:
            return Result(p, False, ())
        write(p)
        if not render:
            return Result(p, True, ())
        try:
            tree = pipeline.render_to_disk(opts, log=log)
        except BaseException:
            target = p.path.resolve()
            if target.read_bytes() == p.after:  # only undo our own edit
                _atomic_write(target, p.before)
            raise
    return Result(p, True, tree.changed or ())  # what the swap replaced, added or removed (no read of the tree)

