"""The generated files as one tree: staged in a temporary directory, compared with the repo, swapped in whole."""

from __future__ import annotations

import difflib
import fcntl
import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from ..layout import CHART_SCHEMA, MANAGED_DIRS  # what the generator owns in a repository: these directories, plus listed files


@dataclass
class Tree:
    """Generated files by path relative to the repository root."""

    files: dict[str, bytes] = field(default_factory=dict)
    managed_files: set[str] = field(default_factory=set)  # files outside MANAGED_DIRS (e.g. chart schemas)
    changed: tuple[str, ...] | None = None  # once swapped in (or found on disk as it is): the files that changed

    def add(self, path: str, text: str) -> None:
        if path in self.files:
            raise ValueError(f"two generated files would be written to {path}")
        self.files[path] = text.encode("utf-8")
        if path.split("/", 1)[0] not in MANAGED_DIRS:
            self.managed_files.add(path)

    def write(self, root: Path, unless_in: Path | None = None, only: Iterable[str] | None = None) -> None:
        """Write the files under root; with unless_in, only those whose bytes differ from that tree's copy (the
        staging directory of a render holds what changes, and the swap moves only that); with only, just those
        paths (what a later stage added)."""
        for rel in sorted(self.files if only is None else only):
            data = self.files[rel]
            if unless_in is not None and same_on_disk(unless_in / rel, data):
                continue
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def same_on_disk(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def owned_on_disk(root: Path, managed_files: set[str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for top in MANAGED_DIRS:
        base = root / top
        if base.is_dir():
            for path in sorted(base.rglob("*")):
                if path.is_file():
                    found[path.relative_to(root).as_posix()] = path.read_bytes()
    for rel in managed_files:
        if (root / rel).is_file():
            found[rel] = (root / rel).read_bytes()
    return found


def read_generated(root: Path, chart_schemas: bool = False) -> dict[str, bytes]:
    """What is on disk in the managed directories (and the charts' generated values schemas)."""
    listed = {p.relative_to(root).as_posix() for p in root.glob(CHART_SCHEMA.format(chart="*"))} if chart_schemas else set()
    return owned_on_disk(root, listed)


def drift(root: Path, tree: Tree) -> list[str]:
    """Unified diffs between what is committed under root and what the generator produces now."""
    have = owned_on_disk(root, tree.managed_files)
    out = []
    for rel in sorted(set(have) | set(tree.files)):
        old, new = have.get(rel), tree.files.get(rel)
        if old == new:
            continue
        old_lines = old.decode("utf-8", "replace").splitlines(keepends=True) if old is not None else []
        new_lines = new.decode("utf-8", "replace").splitlines(keepends=True) if new is not None else []
        diff = "".join(difflib.unified_diff(
            old_lines, new_lines,
            fromfile=f"a/{rel}" if old is not None else "/dev/null",
            tofile=f"b/{rel}" if new is not None else "/dev/null",
        ))
        out.append(diff if diff.endswith("\n") else diff + "\n\\ No newline at end of file\n")
    return out


@contextmanager
def staging(root: Path) -> Iterator[Path]:
    """A scratch directory on the same filesystem as root (so the final rename is atomic), always removed."""
    tmp = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------ one writer at a time

STAGING_PREFIX = ".render-"
LOCK = ".render.lock"
JOURNAL = ".render-journal.json"
_held: dict[Path, int] = {}  # root -> depth: the lock is re-entrant within one process (set-image renders)


class Busy(Exception):
    """Another process holds this checkout's lock."""


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold the checkout's lock (an flock the kernel releases whatever kills the holder), after completing or
    undoing a swap an earlier process was killed in. Concurrent commands fail at once with Busy."""
    key = root.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise Busy(f"{holder} is writing this checkout's generated files; run again when it has finished") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({' '.join(sys.argv[:2]) or 'python'})".encode(), 0)
        _held[key] = 1
        try:
            if (done := recover(root)) is not None:
                print(f"recovered: {done}", file=sys.stderr)
            yield
        finally:
            del _held[key]
    finally:
        os.close(fd)  # releases the flock


# ------------------------------------------------------------------------------------- the journaled swap


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_journal(root: Path, journal: dict) -> None:
    """Replace the journal atomically and durably: it must describe the tree before the tree changes."""
    tmp = root / (JOURNAL + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(journal, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, root / JOURNAL)
    _fsync_dir(root)


def _undo(root: Path, journal: dict) -> None:
    """Put back every target the journal's swap had moved, newest first; each step is idempotent, so an undo
    that is itself killed is finished by the next one."""
    staged = root / journal["staging"]
    for op in reversed(journal["ops"]):
        target, backup = root / op["target"], staged / op["backup"]
        new = staged / (op["new"] if op["new"] is not None else op["backup"] + ".new")
        if op["had_old"]:
            if not os.path.lexists(backup):
                continue  # not moved aside yet: the target is the old one
            if os.path.lexists(target):
                new.parent.mkdir(parents=True, exist_ok=True)
                os.rename(target, new)  # the new one goes back to staging, to be removed with it
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(backup, target)
        elif os.path.lexists(target) and not os.path.lexists(new):
            new.parent.mkdir(parents=True, exist_ok=True)
            os.rename(target, new)


def _finish(root: Path, journal: dict) -> None:
    shutil.rmtree(root / journal["staging"], ignore_errors=True)
    (root / JOURNAL).unlink(missing_ok=True)
    _fsync_dir(root)


def recover(root: Path) -> str | None:
    """Complete or undo a swap that a killed process left, and remove stale staging directories (only ever called
    under the lock, so no other process is using them). Returns what was done, for the log."""
    done = None
    path = root / JOURNAL
    if path.exists():
        try:
            journal = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            journal = None  # killed while writing the first journal: nothing had been moved yet
        if journal is not None and journal.get("state") == "swapping":
            _undo(root, journal)
            done = "an earlier render was killed during its swap: the tree before it is restored"
        elif journal is not None:
            done = "an earlier render was killed after its swap: its tree is complete"
        if journal is not None:
            _finish(root, journal)
        path.unlink(missing_ok=True)
    (root / (JOURNAL + ".tmp")).unlink(missing_ok=True)
    stale = [p for p in root.glob(STAGING_PREFIX + "*") if p.is_dir()]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return done or (f"removed {len(stale)} stale staging director{'y' if len(stale) == 1 else 'ies'}" if stale else None)


def swap(root: Path, staged: Path, tree: Tree) -> None:
    """Make the generated files on disk exactly tree's, all or nothing, touching only the files that change.

    Changed and new files come from staging (tree.write(staged, unless_in=root) put them there); files no
    longer generated are removed. A journal listing every rename is written before the first one; the swap
    is over when it says "committed". A process killed in between leaves the journal, and the next command
    (under the lock) undoes every rename it finds done, so the tree is the old one, complete; on an error in
    this process the same undo runs at once.
    """
    assert _held.get(root.resolve()), "swap without the checkout's lock"
    on_disk = _on_disk_paths(root, tree.managed_files)
    ops = []
    for rel in sorted(tree.files):
        if not same_on_disk(root / rel, tree.files[rel]):
            ops.append({"target": rel, "new": rel, "backup": f".old/{rel}", "had_old": os.path.lexists(root / rel)})
    for rel in sorted(on_disk - set(tree.files)):
        ops.append({"target": rel, "new": None, "backup": f".old/{rel}", "had_old": True})
    tree.changed = tuple(sorted(op["target"] for op in ops))  # replaced, added or removed
    if not ops:
        return
    journal = {"staging": staged.name, "state": "swapping", "ops": ops}
    _write_journal(root, journal)
    try:
        for op in ops:
            target, backup = root / op["target"], staged / op["backup"]
            if op["had_old"]:
                backup.parent.mkdir(parents=True, exist_ok=True)
                os.rename(target, backup)
            if op["new"] is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(staged / op["new"], target)
        _fsync_dir(root)
        _write_journal(root, {**journal, "state": "committed"})
    except BaseException:
        _undo(root, journal)
        (root / JOURNAL).unlink(missing_ok=True)
        raise
    for op in ops:  # directories a removal emptied
        if op["new"] is None:
            parent = (root / op["target"]).parent
            while parent != root and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
    _finish(root, journal)


def _on_disk_paths(root: Path, managed_files: set[str]) -> set[str]:
    found = set()
    for top in MANAGED_DIRS:
        for dirpath, _, names in os.walk(root / top):
            found.update(Path(dirpath, n).relative_to(root).as_posix() for n in names)
    return found | {rel for rel in managed_files if (root / rel).is_file()}
