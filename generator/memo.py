"""A content-addressed memo on disk for the pure, costly steps: the same input bytes give the stored output.

Each entry is keyed by the SHA-256 of its stage and its input, under a directory named by a salt that
changes with this package's source and the libraries whose output it stores (PyYAML, jsonschema,
kubernetes-validate, helm-python-sdk): a new generator never reads an old entry, and only the last few versions' entries
are kept. Entries are written atomically (temp file + rename), so a killed run leaves none half-written;
a missing, unreadable or foreign entry is computed again. Nothing is required of the cache: deleting
`.cache/memo` only costs time, and a run without a memo (tests, `--no-cache`) computes everything.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import threading
from functools import cache
from pathlib import Path
from typing import Any, Callable


@cache
def salt() -> str:
    """Changes with this package's code (templates included) and the versions of the libraries that shape stored
    results."""
    from importlib.metadata import PackageNotFoundError, version

    import yaml

    h = hashlib.sha256()
    here = Path(__file__).parent
    for path in sorted(p for p in here.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(path.relative_to(here).as_posix().encode() + b"\0" + path.read_bytes())  # code and templates
    libraries = [version(d) for d in ("PyYAML", "jsonschema", "kubernetes-validate")]
    try:
        libraries.append(version("helm-python-sdk"))  # renders local charts in process (helmsdk.py)
    except PackageNotFoundError:
        libraries.append("no helm-python-sdk")
    h.update(f"{libraries} {getattr(yaml, '__with_libyaml__', False)}".encode())
    return h.hexdigest()[:16]


KEEP = 3  # generator versions whose entries stay (a branch switch back finds its own)


class Memo:
    def __init__(self, root: Path):
        self.root = root
        self.dir = root / salt()
        self._dir = str(self.dir)
        self.hits = self.misses = 0
        self._made: set[str] = set()  # entry directories known to exist (a cold run stores 10,000 entries)
        self._tmp = itertools.count()
        self._prune()

    def _prune(self) -> None:
        """Entries of older generator versions can never be read again: keep only the KEEP most recent ones."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            os.utime(self.dir)
            versions = sorted((p for p in self.root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
        except OSError:
            return
        for old in versions[KEEP:]:
            shutil.rmtree(old, ignore_errors=True)

    def _path(self, stage: str, key: bytes) -> str:
        """The entry's file: a string, not a Path (thousands of lookups a run; pathlib's joins cost more than the read)."""
        digest = hashlib.sha256(stage.encode() + b"\0" + key).hexdigest()
        return os.path.join(self._dir, stage, digest[:2], digest + ".json")

    def lookup(self, stage: str, key: bytes) -> Any:
        """The stored result for (stage, key), or None."""
        try:
            with open(self._path(stage, key), "rb") as f:
                value = json.loads(f.read())
            self.hits += 1
            return value
        except (OSError, ValueError):
            return None

    def has(self, stage: str, key: bytes) -> bool:
        """Whether an entry for (stage, key) is there, without reading it."""
        return os.path.exists(self._path(stage, key))

    def store(self, stage: str, key: bytes, value: Any) -> str | None:
        """Keep value for (stage, key); a full disk or a value JSON cannot hold only costs time later. Returns the
        stored JSON text (None if the value could not be encoded)."""
        path = self._path(stage, key)
        where = os.path.dirname(path)
        text = tmp = None
        try:
            if where not in self._made:
                os.makedirs(where, exist_ok=True)
                self._made.add(where)
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)  # C, in one piece
            # A name no other writer uses (process, thread, count), made with O_EXCL: mkstemp's random names cost a
            # third of a store, 0.2 s in 3,000.
            tmp = os.path.join(where, f".tmp-{os.getpid()}-{threading.get_ident()}-{next(self._tmp)}")
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except (OSError, ValueError, TypeError):
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
        return text

    def get(self, stage: str, key: bytes, compute: Callable[[], Any], stored_form: bool = False) -> Any:
        """The stored result for (stage, key), or compute() stored. Results must survive a JSON round trip
        unchanged (str keys, no tuples); compute() may signal that one does not by raising Unstorable.

        stored_form=True: a computed result is returned as a lookup would give it, decoded from the stored JSON (equal,
        but JSON decoding shares each mapping key's string: with PyYAML's objects kept for the review and the
        validation, a cold render at 1000 services peaked at 304 MiB, with these at 276 MiB)."""
        value = self.lookup(stage, key)
        if value is not None:
            return value
        self.misses += 1
        try:
            value = compute()
        except Unstorable as exc:
            return exc.value
        text = self.store(stage, key, value)
        return json.loads(text) if stored_form and text is not None else value


def digest(*parts: bytes | str) -> bytes:
    """A fixed-size key for a stage's inputs: each part length-prefixed, so no two part lists collide."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big") + data)
    return h.digest()


def digest_files(files: dict[str, bytes]) -> bytes:
    """The key of a set of files: their paths and contents."""
    return digest(*(x for path in sorted(files) for x in (path, hashlib.sha256(files[path]).digest())))


def stage(name: str, key: bytes, compute: Callable[[], Any], encode: Callable[[Any], Any],
          decode: Callable[[Any], Any]) -> Any:
    """A whole stage of the run, keyed by everything it reads (the caller names it all in key): the stored result
    when those inputs were seen before, else compute(). Without an active memo, compute() alone."""
    m = _active
    if m is None:
        return compute()
    stored = m.lookup(f"stage-{name}", key)
    if stored is not None:
        return decode(stored)
    m.misses += 1
    value = compute()
    m.store(f"stage-{name}", key, encode(value))
    return value


class Index:
    """One entry holding the values a set read together (an environment's files, its values files and Applications)
    found in the memo last time: a re-run after one change reads it instead of thousands of entries. Its values are
    those of the entries themselves, under their own stage and key, so a stale or foreign index only costs lookups;
    save() rewrites it with what this run looked up and remembered."""

    def __init__(self, m: Memo, name: bytes):
        self.m, self.name = m, name
        self._last: dict[str, Any] = m.lookup("index", name) or {}
        self._now: dict[str, Any] = {}

    @staticmethod
    def _id(stage: str, key: bytes) -> str:
        return hashlib.sha256(stage.encode() + b"\0" + key).hexdigest()

    def lookup(self, stage: str, key: bytes) -> Any:
        """m.lookup(stage, key), from the index when it holds it."""
        found = self._last.get(self._id(stage, key))
        if found is None:
            found = self.m.lookup(stage, key)
        if found is not None:
            self._now[self._id(stage, key)] = found
        return found

    def remember(self, stage: str, key: bytes, value: Any) -> None:
        """A value computed (and stored under stage and key) this run."""
        self._now[self._id(stage, key)] = value

    def save(self) -> None:
        if self._now != self._last:
            self.m.store("index", self.name, self._now)


class Unstorable(Exception):
    """A result that a JSON round trip would change (e.g. integer mapping keys): returned, not stored."""

    def __init__(self, value: Any):
        super().__init__("not storable")
        self.value = value


def key_of(value: Any) -> bytes:
    """A key for parsed YAML: its repr tells {1: x} from {"1": x} and 1 from 1.0 from True, which JSON would not,
    and is as fast (C); deterministic for dicts, lists and scalars, which is all parsed YAML holds."""
    return repr(value).encode("utf-8", "surrogatepass")


def json_safe(value: Any) -> bool:
    """Whether value survives json.dumps/json.loads unchanged (YAML may give int or bool mapping keys)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            if not all(type(k) is str for k in v):
                return False
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                return False
        elif not (v is None or isinstance(v, (str, int, bool))):
            return False
    return True


_active: Memo | None = None


def active() -> Memo | None:
    return _active


class using:
    """with memo.using(Memo(dir)): ... — the memo the pure steps consult during one command."""

    def __init__(self, m: Memo | None):
        self.m = m

    def __enter__(self) -> Memo | None:
        global _active
        self.prev, _active = _active, self.m
        return self.m

    def __exit__(self, *exc: Any) -> None:
        global _active
        _active = self.prev
