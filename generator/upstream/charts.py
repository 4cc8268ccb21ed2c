"""Where the pinned upstream Helm charts come from: charts.lock, finding a verified local archive, pulling one."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import tomllib
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from .. import helm as helm_mod
from ..helm import Helm, HelmError
from . import upstream

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK_NAME = upstream.CHARTS_LOCK
ENV = upstream.CHARTS_ENV
HINT = ("Provide it in one of three ways: `--charts DIR` or `$ECO2_CHARTS` (a directory holding the archive), "
        "`../shared/charts` next to the repository (the CI mirror), or `make charts` "
        "(pulls the pinned archives into .cache/charts)")
REPOSITORY_ORIGIN = "chart repository {repo} (recorded by make charts, checked against its index.yaml digest)"
HEADER = """\
# Pinned upstream Helm charts: generator.upstream.charts resolves <name>-<version>.tgz only if its sha256 is one of
# the chart's accepted `archives`. Sources, in order: --charts DIR / $ECO2_CHARTS (final when given),
# ../shared/charts (the CI mirror), .cache/charts (filled by `make charts`).
# `make charts` (python -m generator.upstream.charts fetch) runs `helm pull --repo <repo> <name> --version <version>`
# and moves the archive into .cache/charts only if verified. The chart repository's archive is not the
# mirror's (different bytes, different sha256): the first one pulled is checked against the digest the
# repository's index.yaml publishes and then recorded here as a new archive -- commit that change.
# `python -m generator.upstream.charts verify --dir DIR` checks a directory. To bump a chart: change `version`,
# set `archives = []`, run `make charts` and review the recorded digest.
# Format: TOML, one [[chart]] table per chart. This file is rewritten by `make charts` (sorted, this header).
"""

Opener = Callable[[str], BinaryIO]  # url -> readable binary stream usable as a context manager


class ChartSourceError(Exception):
    """A pinned chart cannot be found, verified or fetched; the message is meant for the user."""


@dataclass(frozen=True)
class Archive:
    sha256: str
    origin: str  # where an archive with this digest comes from


@dataclass(frozen=True)
class Chart:
    name: str
    version: str
    repo: str  # the Helm repository URL
    archives: tuple[Archive, ...]

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.tgz"

    def accepts(self, sha256: str) -> Archive | None:
        return next((a for a in self.archives if a.sha256 == sha256), None)

    def repository_archive(self) -> Archive | None:
        """The accepted archive that was recorded from the chart repository itself, if any."""
        return next((a for a in self.archives if _from_repository(a, self.repo)), None)

    def expected(self) -> str:
        return ", ".join(f"{a.sha256} ({a.origin})" for a in self.archives) or "none yet (run `make charts`)"


def _from_repository(archive: Archive, repo: str) -> bool:
    prefix = f"chart repository {repo}"
    return archive.origin == prefix or archive.origin.startswith(prefix + " ")


# ---------------------------------------------------------------- the lock

_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _norm_repo(url: str) -> str:
    return url.rstrip("/")


def _parse_chart(lock: Path, i: int, e: Any) -> Chart:
    where = f"{lock}: chart entry {i + 1}"
    if not (isinstance(e, dict) and all(isinstance(e.get(k), str) for k in ("name", "version", "repo"))):
        raise ChartSourceError(f"{where} needs string name, version and repo")
    # name and version make a file name in the destination: keep it a plain file name.
    if not _NAME.fullmatch(e["name"]) or not _VERSION.fullmatch(e["version"]) or ".." in e["version"]:
        raise ChartSourceError(f"{where}: name must be a Helm chart name and version a plain version")
    if not re.match(r"https?://", e["repo"]):
        raise ChartSourceError(f"{where}: repo must be an http(s) Helm repository URL")
    archives = e.get("archives", [])
    if not isinstance(archives, list):
        raise ChartSourceError(f"{where}: archives must be a list of {{sha256, origin}} tables")
    out = []
    for j, a in enumerate(archives):
        if not (isinstance(a, dict) and isinstance(a.get("sha256"), str) and isinstance(a.get("origin"), str)
                and _SHA256.fullmatch(a["sha256"]) and a["origin"].strip()):
            raise ChartSourceError(f"{where}, archive {j + 1}: needs a lowercase hex sha256 and a non-empty origin")
        if any(o.sha256 == a["sha256"] for o in out):
            raise ChartSourceError(f"{where}: sha256 {a['sha256']} is listed twice")
        out.append(Archive(a["sha256"], a["origin"]))
    chart = Chart(e["name"], e["version"], _norm_repo(e["repo"]), tuple(out))
    if sum(1 for a in chart.archives if _from_repository(a, chart.repo)) > 1:
        raise ChartSourceError(f"{where}: more than one archive from the chart repository {chart.repo}")
    return chart


def read_lock(lock: Path) -> list[Chart]:
    try:
        entries = tomllib.loads(Path(lock).read_text(encoding="utf-8")).get("chart")
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ChartSourceError(f"cannot read {lock}: {e}") from None
    if not isinstance(entries, list) or not entries:
        raise ChartSourceError(f"{lock}: no [[chart]] entries")
    charts = [_parse_chart(lock, i, e) for i, e in enumerate(entries)]
    seen = set()
    for c in charts:
        if (c.name, c.version) in seen:
            raise ChartSourceError(f"{lock}: {c.name} {c.version} is locked twice")
        seen.add((c.name, c.version))
    return charts


def _order(c: Chart) -> tuple[str, str]:
    return c.name, c.version


def _toml_str(s: str) -> str:
    # A JSON string without ensure_ascii is a valid TOML basic string (same escapes, \uXXXX for controls).
    return json.dumps(s, ensure_ascii=False)


def dump_lock(charts: Iterable[Chart]) -> str:
    """The canonical text of a lock: fixed header, charts sorted by name and version, archives in order."""
    parts = [HEADER]
    for c in sorted(charts, key=_order):
        lines = ["", "[[chart]]", f"name = {_toml_str(c.name)}", f"version = {_toml_str(c.version)}",
                 f"repo = {_toml_str(c.repo)}"]
        if c.archives:
            lines.append("archives = [")
            lines += [f"  {{ sha256 = {_toml_str(a.sha256)}, origin = {_toml_str(a.origin)} }}," for a in c.archives]
            lines.append("]")
        else:
            lines.append("archives = []")
        parts.append("\n".join(lines) + "\n")
    return "".join(parts)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_lock(lock: Path, charts: list[Chart]) -> None:
    text = dump_lock(charts)
    # Never write a lock that would not read back as exactly these charts.
    reread = [_parse_chart(Path(lock), i, e) for i, e in enumerate(tomllib.loads(text)["chart"])]
    if sorted(reread, key=_order) != sorted(charts, key=_order):
        raise ChartSourceError(f"internal error: {lock} would not read back as written; not written")
    _atomic_write(Path(lock), text.encode("utf-8"))


# ---------------------------------------------------------------- resolving a verified archive


def _sha256(path: Path) -> str:
    """sha256 of a file, cached per (path, size, mtime) by generator.helm."""
    st = path.stat()
    return helm_mod._file_sha256(str(path), st.st_size, st.st_mtime_ns)


def find_locked(charts: list[Chart], name: str, version: str, repo: str, lock: Path) -> Chart:
    for c in charts:
        if c.name == name and c.version == version and c.repo == _norm_repo(repo):
            return c
    other = [f"{c.version} from {c.repo}" for c in charts if c.name == name]
    known = f" (the lock has {', '.join(other)})" if other else ""
    raise ChartSourceError(
        f"chart {name} {version} from {repo} is not pinned in {lock}{known}: add a [[chart]] entry with that "
        f"name, version and repo and `archives = []`, then run `make charts` to pin it (and commit {LOCK_NAME})")




def check_archive(chart: Chart, path: Path) -> None:
    """Raise ChartSourceError unless path's sha256 is one of the chart's accepted archives."""
    actual = _sha256(path)
    if not chart.accepts(actual):
        raise ChartSourceError(
            f"{path}: sha256 {actual} is not an accepted archive of {chart.name} {chart.version} "
            f"(expected one of: {chart.expected()}). Refusing it: a tampered or wrong copy -- delete it, "
            f"or if it is a new genuine archive, pin it with `make charts`")


def resolve_chart(name: str, version: str, repo: str, explicit: Path | None = None,
                  repo_root: Path = REPO_ROOT) -> Path:
    """The verified <name>-<version>.tgz from the first of: explicit, $ECO2_CHARTS, ../shared/charts,
    .cache/charts that holds it. A file there with a digest the lock does not accept is an error, not skipped."""
    lock = Path(repo_root) / LOCK_NAME
    chart = find_locked(read_lock(lock), name, version, repo, lock)
    tried = []
    for label, d in upstream.chart_dirs(explicit, Path(repo_root)):
        path = d / chart.filename
        if not d.is_dir():
            tried.append(f"{d} ({label}) does not exist")
        elif not path.is_file():
            tried.append(f"{d} ({label}) has no {chart.filename}")
        else:
            check_archive(chart, path)
            return path
    raise ChartSourceError(f"no {chart.filename} (chart {name} {version} from {chart.repo}): "
                           f"{'; '.join(tried)}. {HINT}")


def verify(lock: Path, directory: Path) -> list[str]:
    """Problems with the archives in directory: missing ones and ones whose sha256 the lock does not accept."""
    problems = []
    for c in read_lock(lock):
        path = Path(directory) / c.filename
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        try:
            check_archive(c, path)
        except ChartSourceError as e:
            problems.append(str(e))
    return problems


# ---------------------------------------------------------------- fetching


def _urlopen(url: str) -> BinaryIO:
    return urllib.request.urlopen(url, timeout=120)


def index_digest(repo_url: str, name: str, version: str, opener: Opener = _urlopen) -> str:
    """The sha256 a Helm repository's index.yaml publishes for one chart version."""
    url = f"{_norm_repo(repo_url)}/index.yaml"
    try:
        with opener(url) as response:
            data = response.read()
    except OSError as e:  # urllib's URLError/HTTPError are OSErrors
        raise ChartSourceError(f"{url}: download failed: {e}") from None
    try:
        index = yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        raise ChartSourceError(f"{url}: not YAML: {e}") from None
    entries = (index or {}).get("entries") if isinstance(index, dict) else None
    versions = entries.get(name) if isinstance(entries, dict) else None
    found = [v for v in versions or [] if isinstance(v, dict) and str(v.get("version")) == version]
    if len(found) != 1 or not isinstance(found[0].get("digest"), str):
        raise ChartSourceError(f"{url} publishes no single digest for {name} {version}")
    return found[0]["digest"].strip().lower()


def _select(charts: list[Chart], names: Iterable[str] | None, lock: Path) -> list[Chart]:
    if names is None:
        return charts
    names = list(names)
    unknown = sorted(set(names) - {c.name for c in charts})
    if unknown:
        raise ChartSourceError(f"not in {lock}: {', '.join(unknown)}")
    return [c for c in charts if c.name in names]


def _verify_download(lock: Path, chart: Chart, actual: str, pulled_from: str,
                     opener: Opener) -> Chart | None:
    """None if the download is already accepted; the chart with the new archive recorded if the repository's
    index.yaml vouches for it; otherwise ChartSourceError."""
    if chart.accepts(actual):
        return None
    if known := chart.repository_archive():
        raise ChartSourceError(
            f"{chart.name} {chart.version} from {pulled_from}: sha256 {actual}, but {lock} already records "
            f"{known.sha256} from the chart repository: the archive changed upstream or was tampered with")
    published = index_digest(pulled_from, chart.name, chart.version, opener)
    if published != actual:
        raise ChartSourceError(
            f"{chart.name} {chart.version} from {pulled_from}: sha256 {actual}, but its index.yaml publishes "
            f"{published}; accepted ones: {chart.expected()}")
    origin = REPOSITORY_ORIGIN.format(repo=chart.repo)
    if pulled_from != chart.repo:
        origin += f", pulled from the mirror {pulled_from}"
    return replace(chart, archives=(*chart.archives, Archive(actual, origin)))


def _fetch_one(lock: Path, chart: Chart, dest: Path, helm: Helm, pulled_from: str, opener: Opener) -> bool:
    """Pull one chart into dest, verified; True if the lock gained an archive (already written)."""
    tmp = Path(tempfile.mkdtemp(dir=dest, prefix=f".{chart.filename}."))
    try:
        helm.pull(chart.name, pulled_from, chart.version, tmp)
        pulled = list(tmp.glob("*.tgz"))
        if len(pulled) != 1:
            raise ChartSourceError(f"helm pull {chart.name} {chart.version} wrote {len(pulled)} archives")
        updated = _verify_download(lock, chart, _sha256(pulled[0]), pulled_from, opener)
        if updated:
            # Record first: an archive in dest that the lock does not accept would be refused later.
            write_lock(lock, [updated if c == chart else c for c in read_lock(lock)])
            print(f"{lock}: recorded sha256 {updated.archives[-1].sha256} of {chart.filename} from "
                  f"{chart.repo} (matches its index.yaml); commit {LOCK_NAME}")
        os.replace(pulled[0], dest / chart.filename)
        return updated is not None
    except (ChartSourceError, HelmError):
        (dest / chart.filename).unlink(missing_ok=True)  # a stale wrong copy must not pass for the pinned one
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(lock_path: Path, dest: Path, helm: Helm, repo_override: dict[str, str] | None = None,
          charts: Iterable[str] | None = None, opener: Opener = _urlopen) -> list[str]:
    """Pull the locked charts (or the named subset) missing from dest or with a digest the lock does not
    accept; returns the file names written. Each download is verified before it is moved into dest."""
    lock_path, dest = Path(lock_path), Path(dest)
    override = {_norm_repo(k): v for k, v in (repo_override or {}).items()}
    dest.mkdir(parents=True, exist_ok=True)
    written, problems = [], []
    for chart in _select(read_lock(lock_path), charts, lock_path):
        target = dest / chart.filename
        if target.is_file() and chart.accepts(_sha256(target)):
            continue
        # Re-read: an earlier chart may have recorded an archive in the lock.
        current = find_locked(read_lock(lock_path), chart.name, chart.version, chart.repo, lock_path)
        try:
            _fetch_one(lock_path, current, dest, helm, override.get(chart.repo, chart.repo), opener)
            written.append(chart.filename)
        except (ChartSourceError, HelmError) as e:
            problems.append(f"{chart.filename}: {e}\n    (nothing written to {dest} for it)")
    if problems:
        raise ChartSourceError("fetching charts failed:\n  " + "\n  ".join(problems)
                               + f"\nWithout access to the chart repositories, set {ENV} to a directory "
                                 "holding verified archives (or use ../shared/charts).")
    return written


# ---------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator.upstream.charts", description=__doc__)
    parser.add_argument("--lock", type=Path, default=REPO_ROOT / LOCK_NAME)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="helm pull and verify the locked charts").add_argument(
        "--dest", type=Path, default=REPO_ROOT / ".cache" / "charts")
    sub.add_parser("verify", help="check a chart directory against the lock").add_argument(
        "--dir", type=Path, help="default: check each chart where rendering would find it")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            written = fetch(args.lock, args.dest, helm_mod.find_helm())
            print(f"{args.dest}: {len(written)} fetched, {len(read_lock(args.lock)) - len(written)} already verified")
            return 0
        if args.dir:
            problems = verify(args.lock, args.dir)
            print("\n".join(problems) if problems else f"{args.dir}: all {len(read_lock(args.lock))} charts verified",
                  file=sys.stderr if problems else sys.stdout)
            return 1 if problems else 0
        lock = read_lock(args.lock)
        root = args.lock.resolve().parent
        problems = []
        for c in lock:
            try:
                print(f"{c.filename}: verified, {resolve_chart(c.name, c.version, c.repo, repo_root=root)}")
            except ChartSourceError as e:
                problems.append(str(e))
        if problems:
            print("\n".join(problems), file=sys.stderr)
        return 1 if problems else 0
    except (ChartSourceError, HelmError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
