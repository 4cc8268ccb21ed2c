"""Applications -> plain manifests, by running `helm template` exactly as Argo CD's repo-server would."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import yamlio
from .helm import Helm


@dataclass(frozen=True)
class Invocation:
    """One `helm template` call, read off an Application."""

    app: str
    chart: Path
    release: str
    namespace: str
    value_files: tuple[Path, ...]


def invocation(app: dict[str, Any], repo: Path) -> Invocation | None:
    """What Argo CD renders for this Application from a checkout at `repo`; None for charts from Helm repositories."""
    spec = app["spec"]
    source = spec.get("source")
    if source is None or "path" not in source:
        return None
    chart = repo / source["path"]
    helm = source.get("helm", {})
    # Argo CD resolves value files relative to the source path and refuses paths leaving the repository.
    files = tuple(Path(os.path.normpath(chart / f)) for f in helm.get("valueFiles", []))
    for f in files:
        if not f.is_relative_to(repo):
            raise ValueError(f"{app['metadata']['name']}: value file {f} is outside the repository")
    return Invocation(app["metadata"]["name"], chart, helm.get("releaseName", app["metadata"]["name"]),
                      spec["destination"]["namespace"], files)


def _sort_key(doc: dict[str, Any]) -> tuple[str, str, str]:
    meta = doc.get("metadata") or {}
    return (str(doc.get("kind", "")), str(meta.get("namespace", "")), str(meta.get("name", "")))


def normalize(helm_output: str) -> list[dict[str, Any]]:
    """Helm's documents, sorted by kind/namespace/name so a reordered template never shows as a change."""
    docs = sorted(yamlio.load_all(helm_output), key=_sort_key)
    for a, b in zip(docs, docs[1:]):
        if _sort_key(a) == _sort_key(b):
            raise ValueError(f"helm rendered {'/'.join(_sort_key(a))} twice")
    return docs


def chart_files(chart: Path) -> list[Path]:
    """Every file helm reads for a chart, through the charts/lib symlink (Path.rglob would not follow it)."""
    found = []
    for top, _, names in os.walk(chart, followlinks=True):
        found.extend(Path(top) / n for n in names)
    return sorted(found)


def _digest(inv: Invocation, repo: Path, helm: Helm, kube_version: str, api_versions: list[str]) -> str:
    """Content hash of everything the output depends on: chart (and library) files, value files, flags."""
    h = hashlib.sha256()
    for part in (helm.version, kube_version, inv.release, inv.namespace, *api_versions):
        h.update(part.encode() + b"\0")
    for path in chart_files(inv.chart):
        h.update(path.relative_to(inv.chart).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for f in inv.value_files:
        h.update(f.relative_to(repo).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


@dataclass
class Result:
    docs: dict[str, list[dict[str, Any]]]
    rendered: int  # apps that needed helm
    cached: int  # apps served from the content-hash cache


def hydrate(invocations: list[Invocation], repo: Path, helm: Helm, kube_version: str, api_versions: list[str],
            cache: Path, jobs: int | None = None) -> Result:
    """Render every invocation (concurrently), reusing cached output when nothing it depends on changed."""
    cache.mkdir(parents=True, exist_ok=True)
    keys = {inv.app: _digest(inv, repo, helm, kube_version, api_versions) for inv in invocations}
    todo = [inv for inv in invocations if not (cache / f"{keys[inv.app]}.yaml").is_file()]

    def run(inv: Invocation) -> None:
        text = helm.template(inv.chart, inv.release, inv.namespace, list(inv.value_files), kube_version, api_versions)
        normalize(text)  # fail here, not later, on output we could not store
        tmp = cache / f".{keys[inv.app]}.{os.getpid()}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, cache / f"{keys[inv.app]}.yaml")

    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
        for future in [pool.submit(run, inv) for inv in todo]:
            future.result()
    docs = {inv.app: normalize((cache / f"{keys[inv.app]}.yaml").read_text(encoding="utf-8")) for inv in invocations}
    return Result(docs, rendered=len(todo), cached=len(invocations) - len(todo))
