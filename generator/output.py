"""The generated files as one tree: staged in a temporary directory, compared with the repo, swapped in whole."""

from __future__ import annotations

import difflib
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

# What the generator owns in a repository: these directories entirely, plus the listed files.
MANAGED_DIRS = ("rendered", "argocd", "schema")


@dataclass
class Tree:
    """Generated files by path relative to the repository root."""

    files: dict[str, bytes] = field(default_factory=dict)
    managed_files: set[str] = field(default_factory=set)  # files outside MANAGED_DIRS (e.g. chart schemas)

    def add(self, path: str, text: str) -> None:
        if path in self.files:
            raise ValueError(f"two generated files would be written to {path}")
        self.files[path] = text.encode("utf-8")
        if path.split("/", 1)[0] not in MANAGED_DIRS:
            self.managed_files.add(path)

    def write(self, root: Path) -> None:
        for rel, data in sorted(self.files.items()):
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def _on_disk(root: Path, managed_files: set[str]) -> dict[str, bytes]:
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


def read_generated(root: Path) -> dict[str, bytes]:
    """What is on disk in the managed directories."""
    return _on_disk(root, set())


def drift(root: Path, tree: Tree) -> list[str]:
    """Unified diffs between what is committed under root and what the generator produces now."""
    have = _on_disk(root, tree.managed_files)
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
    tmp = Path(tempfile.mkdtemp(prefix=".render-", dir=root))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def swap(root: Path, staged: Path, tree: Tree) -> None:
    """Replace each managed directory by its staged copy, then the managed files.

    Each directory is renamed aside and the new one renamed in, so a crash leaves either the old
    or the new directory, never a mix; on any error everything already moved is put back.
    """
    moved: list[tuple[Path, Path | None]] = []  # (target, backup or None if there was none)
    try:
        for top in MANAGED_DIRS:
            new, target = staged / top, root / top
            if not new.exists():
                new.mkdir()
            backup = None
            if target.exists():
                backup = staged / f".old-{top}"
                os.rename(target, backup)
            moved.append((target, backup))
            os.rename(new, target)
        for rel in sorted(tree.managed_files):
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged / rel, target)
    except BaseException:
        for target, backup in reversed(moved):
            if target.exists():
                shutil.rmtree(target)
            if backup is not None:
                os.rename(backup, target)
        raise
