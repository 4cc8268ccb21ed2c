"""The two sides of a diff: the generated files (YAML under rendered/ and argocd/) at a git ref or in the working
tree."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError


TOPS = ("rendered", "argocd")
WORKING_TREE = "working tree"


class DiffError(UsageError):
    """A ref, repository or file the diff cannot read (exit 2)."""


@dataclass
class Snapshot:
    """The generated files of one side: repo-relative path -> bytes (YAML files under rendered/ and argocd/ only)."""

    label: str
    files: dict[str, bytes]


def _git(root: Path, args: list[str], stdin: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], input=stdin, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise DiffError("git is not installed") from exc
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise DiffError(f"git {args[0]} failed in {root}: {message[-1] if message else 'exit ' + str(proc.returncode)}")
    return proc.stdout


def git_archive(root: Path, ref: str, path: str) -> bytes:
    """A tar of `path` at `ref` (the model directory, for the release fields the PR comment compares)."""
    if not ref or ref.startswith("-") or any(c.isspace() for c in ref):
        raise DiffError(f"{ref!r} is not a git ref")
    return _git(root, ["archive", "--format=tar", f"{ref}^{{commit}}", "--", path])


def _is_yaml(path: str) -> bool:
    return path.endswith((".yaml", ".yml"))


def read_git(root: Path, ref: str) -> Snapshot:
    """The generated tree at `ref`: one `ls-tree` and one `cat-file --batch` for all blobs."""
    if not ref or ref.startswith("-") or any(c.isspace() for c in ref):
        raise DiffError(f"{ref!r} is not a git ref")
    if not Path(root).is_dir():
        raise DiffError(f"{root} is not a directory")
    try:
        listing = _git(root, ["ls-tree", "-r", "-z", f"{ref}^{{commit}}", "--", *TOPS])
    except DiffError as exc:
        if "not a git repository" in str(exc):
            raise DiffError(f"{Path(root).resolve()} is not inside a git repository") from None
        raise DiffError(f"unknown git ref {ref!r} in {Path(root).resolve()}") from None
    blobs: list[tuple[str, str]] = []
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, _, name = entry.partition(b"\t")
        _mode, kind, sha = meta.decode().split()
        path = name.decode("utf-8", errors="surrogateescape")
        if kind == "blob" and _is_yaml(path):
            blobs.append((path, sha))
    files: dict[str, bytes] = {}
    if blobs:
        out = _git(root, ["cat-file", "--batch"], "".join(f"{sha}\n" for _, sha in blobs).encode())
        pos = 0
        for path, sha in blobs:
            newline = out.index(b"\n", pos)
            header = out[pos:newline].split()
            if len(header) != 3:
                raise DiffError(f"cannot read {ref}:{path} ({sha}) from git")
            size = int(header[2])
            files[path] = out[newline + 1:newline + 1 + size]
            pos = newline + 1 + size + 1  # the content is followed by one newline
    return Snapshot(ref, files)


def read_worktree(root: Path) -> Snapshot:
    """The generated tree as it is on disk (committed or not)."""
    root = Path(root)
    if not root.is_dir():
        raise DiffError(f"{root} is not a directory")
    files = {}
    for top in TOPS:
        for path in sorted((root / top).rglob("*")) if (root / top).is_dir() else []:
            rel = path.relative_to(root).as_posix()
            if path.is_file() and _is_yaml(rel):
                files[rel] = path.read_bytes()
    return Snapshot(WORKING_TREE, files)
