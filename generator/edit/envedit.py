"""Set values in one environment's effective model, by comment-preserving edits of values/ (base or overlay).

Used by `promote` and `set-image --env`. Where a value is written, for environment E and field F:

1. E's overlay, when it writes F (or replaces a mapping above F with `$patch: replace`): edited there;
2. otherwise the base, when every other environment's overlay writes F: the base then changes E alone;
3. otherwise a new entry in E's overlay (the file is created when E has none), so no other environment moves.

Whatever the rule chose, the edited copy of the whole model is loaded and checked before anything is written: every
environment's checks must pass, every other environment's model must be exactly what it was, and E's must differ
only in the fields set. A render follows; if it fails, every file is put back as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import pipeline
from ..errors import Finding, InvalidModel, Loc, Problem, format_loc
from ..model import environments
from ..model.loader import Loaded, Source
from ..write import output
from . import setimage, yamledit
from .setimage import Change, Log

BASE, OVERLAY = "base", "overlay"


@dataclass(frozen=True)
class FileEdit:
    path: Path  # the real file
    display: str  # as messages name it, e.g. values/environments/staging.yaml
    before: bytes | None  # None: the file is new
    after: bytes


@dataclass(frozen=True)
class Plan:
    """Validated edits for one environment, not yet written; no files means nothing to do."""

    env: str
    files: tuple[FileEdit, ...]
    changes: tuple[Change, ...]

    @property
    def noop(self) -> bool:
        return not self.files


def _provides(overlay: dict[str, Any], loc: Loc) -> bool:
    """Does this overlay decide the value at loc (write it, remove it, or replace a mapping above it)?"""
    node: Any = overlay
    for part in loc:
        if not isinstance(node, dict):
            return False
        if node.get(environments.PATCH) == "replace":
            return True
        if part not in node:
            return False
        node = node[part]
    return True


def place(envs: dict[str, Loaded], env: str, loc: Loc) -> str:
    """BASE or OVERLAY: where a value at loc is written so that it changes `env` and no other environment."""
    if _provides(envs[env].source.overlay_data, loc):
        return OVERLAY
    others = [e for e in envs if e != env]
    if loc[0] in envs[env].source.files and all(_provides(envs[e].source.overlay_data, loc) for e in others):
        return BASE
    return OVERLAY


def overlay_header(env: str) -> str:
    return (f"# yaml-language-server: $schema=../../schema/overlay.schema.json\n"
            f"# {env}: what differs from the base model (values/*.yaml); maps merge by key, lists and scalars replace,\n"
            f"# `key: null` removes, `$patch: replace` replaces a whole map (README, Environments).\n")


def value_at(model: Any, loc: Loc) -> Any:
    """The value at a loc (file keys: aliases) in a model object, or None where it is not set."""
    node = model
    for part in loc:
        if isinstance(node, dict):
            node = node.get(part)
        elif node is None:
            return None
        else:
            fields = type(node).model_fields
            name = next((n for n, f in fields.items() if (f.alias or n) == part or n == part), None)
            if name is None:
                return None
            node = getattr(node, name)
    return node


def _masked(loaded: Loaded, locs: list[Loc]) -> dict[str, Any]:
    data = loaded.model.model_dump(by_alias=True, mode="json")
    for loc in locs:
        node = data
        for part in loc[:-1]:
            node = node.setdefault(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node[loc[-1]] = "<set>"
    return data


def plan(values_dir: Path, envs: dict[str, Loaded], env: str, wanted: dict[Loc, str], display_dir: str = "values") -> Plan:
    """The edits that give `env` the values in `wanted` (loc -> string), checked on a copy; writes nothing.

    `envs` is every environment as loaded from values_dir (environments.load); InvalidModel names the file and line
    when a value cannot be edited in place or when the edited model fails any environment's checks.
    """
    loaded = envs[env]
    source: Source = loaded.source
    wanted = {loc: v for loc, v in wanted.items() if value_at(loaded.model, loc) != v}
    if not wanted:
        return Plan(env, (), ())
    overlay_path = environments.overlay_files(values_dir).get(env) or values_dir / environments.OVERLAY_DIR / f"{env}.yaml"
    overlay_display = f"{display_dir}/{environments.OVERLAY_DIR}/{overlay_path.name}"
    texts: dict[Path, tuple[str, bytes | None, str]] = {}  # path -> (text now, bytes before, display)
    where: dict[Loc, Path] = {}
    for loc, value in wanted.items():
        if place(envs, env, loc) == BASE:
            display = source.files[loc[0]]
            path = values_dir / Path(display).name
        else:
            path, display = overlay_path, overlay_display
        if path not in texts:
            before = path.read_bytes() if path.is_file() else None
            texts[path] = (before.decode("utf-8") if before is not None else overlay_header(env), before, display)
        text, before, display = texts[path]
        try:
            text = yamledit.set_value(text, loc, value).text
        except yamledit.Unsupported as exc:
            file, line, col, field = source.locate(loc)
            raise InvalidModel([Problem(file, line, col, field, f"cannot be edited in place: {exc}; set it by hand")]) from None
        texts[path] = (text, before, display)
        where[loc] = path
    files = tuple(FileEdit(path, display, before, text.encode("utf-8")) for path, (text, before, display) in texts.items())
    changes = []
    for loc, value in wanted.items():
        text, _, display = texts[where[loc]]
        old = value_at(loaded.model, loc)
        written = yamledit.compose(text.removeprefix("\ufeff"))
        line = _line_of(written, loc)
        changes.append(Change(display, line, format_loc(loc), None if old is None else str(old), value))
    _verify(values_dir, envs, env, files, wanted, display_dir)
    return Plan(env, files, tuple(changes))


def _line_of(root: Any, loc: Loc) -> int:
    node = root
    for part in loc:
        node = yamledit.child(node, part)[1]  # type: ignore[index]  # set_value wrote it
    return node.start_mark.line + 1


def _verify(values_dir: Path, envs: dict[str, Loaded], env: str, files: tuple[FileEdit, ...], wanted: dict[Loc, str],
            display_dir: str) -> None:
    """Load and check every environment with the edited files in a scratch copy: only `env` may change, and only at
    the locs in `wanted`, to those values."""
    with tempfile.TemporaryDirectory(prefix="env-edit-") as tmp:
        scratch = Path(tmp) / "values"
        shutil.copytree(values_dir, scratch)  # the write's temporary files (.<name>.*.tmp) are no model files
        for f in files:
            target = scratch / f.path.relative_to(values_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f.after)
        after = environments.load(scratch, display_dir)
    first = next(iter(envs.values())).source
    if list(after) != list(envs):
        raise InvalidModel([first.problem(Finding(("environments",), "the edit would change the environments"))])
    for other, was in envs.items():
        now = after[other]
        if other != env and now.model != was.model:
            file, line, col, field = was.source.locate(next(iter(wanted)))
            raise InvalidModel([Problem(file, line, col, field, f"cannot be edited in place: the edit would change "
                                        f"{other} too; set it by hand")])
    now = after[env]
    for loc, value in wanted.items():
        got = value_at(now.model, loc)
        if got is None or str(got) != value:
            file, line, col, field = envs[env].source.locate(loc)
            raise InvalidModel([Problem(file, line, col, field, f"cannot be edited in place: {env} would read "
                                        f"{got!r}, not {value!r}; set it by hand")])
    if _masked(now, list(wanted)) != _masked(envs[env], list(wanted)):
        file, line, col, field = envs[env].source.locate(next(iter(wanted)))
        raise InvalidModel([Problem(file, line, col, field, "cannot be edited in place: the edit would change more "
                                    "than these fields (a YAML anchor?); set it by hand")])


def _write(f: FileEdit, data: bytes | None) -> None:
    target = f.path.resolve() if f.path.exists() else f.path
    if data is None:
        target.unlink(missing_ok=True)
        return
    if target.exists():
        setimage._atomic_write(target, data)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)


def apply(opts: pipeline.Options, p: Plan, render: bool = True, log: Log = pipeline.stderr) -> tuple[str, ...]:
    """Write the plan's files (each atomically; none if any changed since planning), then render as `render` does;
    a failed render puts every file back. The generated files the render changed, relative to the root."""
    for f in p.files:
        now = f.path.read_bytes() if f.path.is_file() else None
        if now != f.before:
            raise InvalidModel([Problem(f.display, 0, 0, "", "changed on disk meanwhile; nothing was written, run it again")])
    written: list[FileEdit] = []
    try:
        for f in p.files:
            _write(f, f.after)
            written.append(f)
        if not render:
            return ()
        tree = pipeline.render_to_disk(opts, log=log)
    except BaseException:
        for f in written:
            now = f.path.read_bytes() if f.path.is_file() else None
            if now == f.after:  # only undo our own edit
                _write(f, f.before)
        raise
    return tree.changed or ()  # what the swap replaced, added or removed


def locked(opts: pipeline.Options):
    return output.locked(opts.root)
