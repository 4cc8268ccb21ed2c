"""Where the pinned upstream CRDs come from: schemas.lock, finding a local copy, fetching and verifying one."""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
import tomllib
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ..validate.kubeschema import SchemaError
from . import upstream

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK_NAME = upstream.CRDS_LOCK
HINT = "run `make schemas` (downloads them into .cache/crds), or set ECO2_CRDS to a directory that holds them"

Opener = Callable[[str], BinaryIO]  # url -> readable binary stream usable as a context manager


@dataclass(frozen=True)
class Locked:
    path: str  # relative to the CRD directory
    url: str
    sha256: str


def read_lock(lock: Path) -> list[Locked]:
    try:
        entries = tomllib.loads(lock.read_text(encoding="utf-8")).get("crd")
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SchemaError(f"cannot read {lock}: {e}") from None
    if not isinstance(entries, list) or not entries:
        raise SchemaError(f"{lock}: no [[crd]] entries")
    out = []
    for i, e in enumerate(entries):
        if not (isinstance(e, dict) and all(isinstance(e.get(k), str) for k in ("path", "url", "sha256"))):
            raise SchemaError(f"{lock}: crd entry {i + 1} needs string path, url and sha256")
        p = PurePosixPath(e["path"])
        # The lock decides where downloads are written: keep them inside the destination.
        if p.is_absolute() or ".." in p.parts or not re.fullmatch(r"[0-9a-f]{64}", e["sha256"]):
            raise SchemaError(f"{lock}: crd entry {i + 1} needs a relative path and a lowercase hex sha256")
        out.append(Locked(e["path"], e["url"], e["sha256"]))
    return out


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()




def resolve_crd_dir(explicit: Path | None, repo_root: Path) -> Path:
    """The first complete CRD directory of: explicit, $ECO2_CRDS, <repo>/../shared/crds, <repo>/.cache/crds."""
    wanted = [f.path for f in read_lock(repo_root / LOCK_NAME)]
    tried = []
    for label, d in upstream.crd_dirs(explicit, repo_root):
        if not d.is_dir():
            tried.append(f"{d} ({label}) does not exist")
            continue
        missing = [p for p in wanted if not (d / p).is_file()]
        if not missing:
            return d
        tried.append(f"{d} ({label}) lacks {', '.join(missing)}")
    raise SchemaError(f"no CRD schemas to validate custom resources against: {'; '.join(tried)}. {HINT}")


def verify(lock: Path, directory: Path) -> list[str]:
    """Problems with the copy in directory: missing files and files whose sha256 is not the locked one."""
    problems = []
    for f in read_lock(lock):
        target = Path(directory) / f.path
        if not target.is_file():
            problems.append(f"{target}: missing")
        elif (actual := _sha256(target)) != f.sha256:
            problems.append(f"{target}: sha256 {actual}, expected {f.sha256} (from {f.url})")
    return problems


def _urlopen(url: str) -> BinaryIO:
    return urllib.request.urlopen(url, timeout=60)


def fetch(lock: Path, dest: Path, opener: Opener = _urlopen) -> list[str]:
    """Download the locked files missing from dest (or with a wrong hash); returns the paths written.
    Each download is hashed before it is moved into place, so dest never holds an unverified file."""
    written, problems = [], []
    for f in read_lock(lock):
        target = Path(dest) / f.path
        if target.is_file() and _sha256(target) == f.sha256:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, opener(f.url) as response:
                while chunk := response.read(1 << 16):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() == f.sha256:
                os.replace(tmp, target)
                written.append(f.path)
            else:
                target.unlink(missing_ok=True)  # a stale copy with the wrong hash must not pass for the pinned one
                problems.append(f"{f.url}: sha256 mismatch, expected {f.sha256}, got {digest.hexdigest()}; "
                                f"refused and deleted")
        except OSError as e:  # urllib's URLError/HTTPError are OSErrors
            problems.append(f"{f.url}: download failed: {e}")
        finally:
            Path(tmp).unlink(missing_ok=True)
    if problems:
        raise SchemaError("fetching CRDs failed:\n  " + "\n  ".join(problems)
                          + "\nWithout access to those URLs, set ECO2_CRDS to a directory holding verified copies.")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator.upstream.crds", description=__doc__)
    parser.add_argument("--lock", type=Path, default=REPO_ROOT / LOCK_NAME)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download and verify the locked CRDs").add_argument(
        "--dest", type=Path, default=REPO_ROOT / ".cache" / "crds")
    sub.add_parser("verify", help="check a CRD directory against the lock").add_argument(
        "--dir", type=Path, help="default: the directory validation would use")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            written = fetch(args.lock, args.dest)
            print(f"{args.dest}: {len(written)} fetched, {len(read_lock(args.lock)) - len(written)} already verified")
            return 0
        directory = args.dir or resolve_crd_dir(None, REPO_ROOT)
        problems = verify(args.lock, directory)
        print("\n".join(problems) if problems else f"{directory}: all {len(read_lock(args.lock))} CRDs verified",
              file=sys.stderr if problems else sys.stdout)
        return 1 if problems else 0
    except SchemaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
