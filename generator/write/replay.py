"""Nothing to redo: a render or `check` whose every input is as the last successful run read it.

A render that put its tree on disk (or a check that found the tree up to date) leaves in the memo, under the key
of everything the run could read, the digest of every generated file then on disk and the warnings it printed.
The key covers the options; the model's files; the local charts (their generated values schemas apart: those
are outputs, compared below); the lock files; every directory the chart archives and CRD schemas could come from
(upstream.py), file by file; every helm binary the run could pick, by path, size, inode and modification time, and whether the in-process
renderer is on (`ECO2_HELM_SDK`); and,
through the memo's salt, the generator's code and the versions of the libraries it stores results of.

A run with the same key whose generated files on disk are still exactly those bytes would write exactly those
bytes: it prints the warnings again and stops, before the model, pydantic, jsonschema or helm are loaded.
Anything else (an edited model, a changed chart or archive, a file under rendered/ touched by hand, another
helm) runs in full, and records anew when it succeeds. A run whose inputs are not, when it ends, those it was
keyed by when it started records nothing (an edit undone before the run ends is not seen: run again after editing). Without the memo (`Options.memo=False`) nothing is replayed.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any, Callable

from .. import helm, memo
from ..layout import CHART_SCHEMA
from ..options import Options
from ..upstream import upstream
from . import output

STAGE = "replay"
REPEATED = ("warning: ", "waived: ")  # the lines a replay prints again: findings a reader must keep seeing


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_chart_schema(rel: str) -> bool:
    """charts/<chart>/values.schema.json, relative to charts/: generated, so an output and not an input."""
    parts = rel.split("/")
    return len(parts) == 2 and parts[1] == CHART_SCHEMA.rsplit("/", 1)[1]


def _directory(directory: Path, skip: Callable[[str], bool] = lambda rel: False) -> list[str]:
    """Everything under directory that a run may read: each file by its content, each symlink by its target."""
    if not directory.is_dir():
        return [f"{directory}: {'not a directory' if directory.exists() else 'absent'}"]
    parts = [str(directory)]
    for top, dirs, files in os.walk(directory):
        dirs.sort()
        rel_top = os.path.relpath(top, directory)
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(top, d))]):
            path, rel = os.path.join(top, name), os.path.normpath(os.path.join(rel_top, name))
            if skip(rel):
                continue
            if os.path.islink(path):
                parts.append(f"{rel} -> {os.readlink(path)}")
            else:
                with open(path, "rb") as f:
                    parts.append(f"{rel} {hashlib.file_digest(f, 'sha256').hexdigest()}")
    return parts


def key(opts: Options) -> bytes:
    """The key of everything a render or check with these options reads (the memo's salt covers the code)."""
    parts = ["replay 1", repr((str(opts.root), str(opts.values), opts.hydrate, opts.validate, str(opts.crds),
                               str(opts.charts), opts.envs))]
    parts += _directory(opts.values)
    parts += _directory(opts.root / "charts", skip=_is_chart_schema)
    for name in (upstream.CHARTS_LOCK, upstream.CRDS_LOCK):
        parts += _file(helm.REPO_ROOT / name)
    for label, directory in upstream.chart_dirs(opts.charts, helm.REPO_ROOT) + upstream.crd_dirs(opts.crds, helm.REPO_ROOT):
        parts += [label, *_directory(directory)]
    parts += [helm.identity(), f"ECO2_HELM_SDK={os.environ.get('ECO2_HELM_SDK', '')}"]  # the SDK's version: in the salt
    return memo.digest(*parts)


def _file(path: Path) -> list[str]:
    try:
        return [f"{path} {_sha(path.read_bytes())}"]
    except OSError as exc:
        return [f"{path}: {exc.strerror}"]


def _unowned_schemas(root: Path, managed: set[str]) -> dict[str, str]:
    """The values schemas under charts/ this run does not generate (they are inputs helm reads)."""
    found = {p.relative_to(root).as_posix(): p for p in root.glob(CHART_SCHEMA.format(chart="*")) if p.is_file()}
    return {rel: _sha(p.read_bytes()) for rel, p in sorted(found.items()) if rel not in managed}


def store(opts: Options, started: bytes, tree: output.Tree, said: list[str], what: str) -> None:
    """Record a run that read the inputs of key `started` and left tree on disk (under the checkout's lock)."""
    m = memo.active()
    if m is None or key(opts) != started:  # an input changed while the run read it: its result is no one key's
        return
    m.store(STAGE, started, {"files": {p: _sha(b) for p, b in tree.files.items()},
                             "managed": sorted(tree.managed_files),
                             "schemas": _unowned_schemas(opts.root, tree.managed_files),
                             "said": [line for line in said if line.startswith(REPEATED)], "what": what})


def replay(opts: Options, log: Callable[[str], None]) -> output.Tree | None:
    """The generated tree on disk when it is what a run with these options would make now, else None."""
    if not opts.memo:
        return None
    started = time.perf_counter()
    with output.locked(opts.root):
        record: Any = memo.Memo(opts.cache_dir / "memo").lookup(STAGE, key(opts))
        if record is None:
            return None
        managed = set(record["managed"])
        have = output.owned_on_disk(opts.root, managed)
        if {p: _sha(b) for p, b in have.items()} != record["files"] or _unowned_schemas(opts.root, managed) != record["schemas"]:
            return None
    for line in record["said"]:
        log(line)
    log(f"rendered {len(have)} files for {record['what']} in {time.perf_counter() - started:.2f}s: nothing to redo "
        f"(every input as the last run read it, every generated file on disk as it left it)")
    return output.Tree(have, managed, changed=())  # the generated files on disk are the ones it recorded
