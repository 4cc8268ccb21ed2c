"""Applications -> plain manifests, by running `helm template` exactly as Argo CD's repo-server would.

Everything about a call is read off the Application: chart (a path in this repository, or a chart of a
Helm repository resolved to its pinned, verified archive), release, namespace, value files, the pinned
kubeVersion and apiVersions, and Argo CD's defaults (`--include-crds` unless skipCrds). The output is then
treated the way Argo CD treats it: `List` objects are unwrapped, and Helm hooks are mapped onto Argo CD's
(objects whose hook Argo CD does not support are never applied, so they are dropped here, on the record).
Charts whose templates can generate random or time-based content are rendered twice and compared.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .. import yamlio
from ..helm import Helm
from . import helmsdk

ChartSource = Callable[[str, str, str], Path]  # (name, version, repo URL) -> verified .tgz


@dataclass(frozen=True)
class Invocation:
    """One `helm template` call, read off an Application."""

    app: str
    chart: Path  # a chart directory, or a verified chart archive
    release: str
    namespace: str
    value_files: tuple[Path, ...]
    kube_version: str | None = None
    api_versions: tuple[str, ...] = ()
    include_crds: bool = True  # Argo CD passes --include-crds unless the Application sets skipCrds
    skip_tests: bool = False
    value_names: tuple[str, ...] = ()  # the value files as paths in the repository (what the cache key names)

    @property
    def shown_chart(self) -> str:
        return self.chart.name if self.chart.suffix == ".tgz" else self.chart.as_posix()


def _value_file(ref: str, base: Path, repo: Path, refs: dict[str, dict[str, Any]], app: str) -> Path:
    if ref.startswith("$"):
        name, _, rest = ref[1:].partition("/")
        if name not in refs:
            raise ValueError(f"{app}: value file {ref} names source ref {name!r}, which the Application does not have")
        path = Path(os.path.normpath(repo / rest))
    else:
        path = Path(os.path.normpath(base / ref))
    # Argo CD refuses value files outside the repository.
    if not path.is_relative_to(repo):
        raise ValueError(f"{app}: value file {path} is outside the repository")
    return path


def invocation(app: dict[str, Any], repo: Path, charts: ChartSource | None = None) -> Invocation | None:
    """What Argo CD renders for this Application from a checkout at `repo`; None if it renders no Helm chart."""
    spec = app["spec"]
    name = app["metadata"]["name"]
    sources = spec.get("sources") or ([spec["source"]] if spec.get("source") else [])
    refs = {s["ref"]: s for s in sources if s.get("ref")}
    helm_sources = [s for s in sources if "path" in s or "chart" in s]
    if not helm_sources:
        return None
    if len(helm_sources) > 1:
        raise ValueError(f"{name}: more than one chart source; hydration handles one per Application")
    source = helm_sources[0]
    helm = source.get("helm") or {}
    if "chart" in source:
        if charts is None:
            raise ValueError(f"{name}: chart {source['chart']} comes from a Helm repository and no chart source was given")
        chart = charts(source["chart"], source["targetRevision"], source["repoURL"])
        base = repo
    else:
        chart = repo / source["path"]
        base = chart
    files = tuple(_value_file(f, base, repo, refs, name) for f in helm.get("valueFiles", []))
    return Invocation(name, chart, helm.get("releaseName", name), helm.get("namespace") or spec["destination"]["namespace"],
                      files, helm.get("kubeVersion"), tuple(helm.get("apiVersions", ())),
                      not helm.get("skipCrds", False), bool(helm.get("skipTests", False)),
                      tuple(f.relative_to(repo).as_posix() for f in files))


# ---------------------------------------------------------------- what Argo CD does with helm's output

# gitops-engine pkg/sync/hook/helm (Argo CD 3.5): the Helm hooks Argo CD runs, as its own hook phases;
# pre-delete and post-delete are mapped by the application controller (controller/hook.go).
HELM_HOOKS = {"pre-install": "PreSync", "pre-upgrade": "PreSync", "post-install": "PostSync",
              "post-upgrade": "PostSync", "pre-delete": "PreDelete", "post-delete": "PostDelete"}
ARGO_HOOK = "argocd.argoproj.io/hook"
HELM_HOOK = "helm.sh/hook"


def _annotations(doc: dict[str, Any]) -> dict[str, str]:
    return ((doc.get("metadata") or {}).get("annotations")) or {}


def hook_phases(doc: dict[str, Any]) -> list[str] | None:
    """None for an ordinary resource, else the Argo CD phases it runs in ([] = a hook Argo CD never runs).

    An Argo CD hook annotation wins over Helm's; `crd-install` is no hook to Argo CD.
    """
    ann = _annotations(doc)
    if ARGO_HOOK in ann:
        phases = [p.strip() for p in str(ann[ARGO_HOOK]).split(",") if p.strip()]
        return None if phases == ["Skip"] else phases
    if HELM_HOOK not in ann or ann[HELM_HOOK] == "crd-install":
        return None
    return [HELM_HOOKS[h] for h in (p.strip() for p in str(ann[HELM_HOOK]).split(",")) if h in HELM_HOOKS]


def key_of(doc: dict[str, Any]) -> tuple[str, str, str]:
    meta = doc.get("metadata") or {}
    return (str(doc.get("kind", "")), str(meta.get("namespace", "")), str(meta.get("name", "")))


def _flatten(docs: list[Any]) -> Iterator[Any]:
    """Argo CD applies the items of a `kind: List`, not the List."""
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            yield from _flatten(doc["items"])
        else:
            yield doc


@dataclass
class Output:
    """One app's hydrated objects, as Argo CD will apply them."""

    docs: list[dict[str, Any]]
    dropped: list[str] = field(default_factory=list)  # "Pod ns/name (helm.sh/hook: test)": never applied by Argo CD

    @property
    def crds(self) -> list[dict[str, Any]]:
        return [d for d in self.docs if d.get("kind") == "CustomResourceDefinition"]

    @property
    def resources(self) -> list[dict[str, Any]]:
        return [d for d in self.docs if d.get("kind") != "CustomResourceDefinition"]


def normalize(helm_output: str) -> Output:
    """Helm's documents as Argo CD applies them, sorted by kind/namespace/name so a reordered template never shows."""
    kept, dropped = [], []
    for doc in _flatten(yamlio.load_all(helm_output, remembered=False)):
        if not isinstance(doc, dict):
            raise ValueError(f"helm rendered a document that is not an object: {str(doc)[:80]!r}")
        if hook_phases(doc) == []:
            ann = _annotations(doc)
            shown = "/".join(p for p in key_of(doc) if p)
            dropped.append(f"{shown} ({HELM_HOOK}: {ann.get(HELM_HOOK)}): a hook Argo CD never runs")
            continue
        kept.append(doc)
    kept.sort(key=key_of)
    for a, b in zip(kept, kept[1:]):
        if key_of(a) == key_of(b):
            raise ValueError(f"helm rendered {'/'.join(key_of(a))} twice")
    return Output(kept, sorted(dropped))


# ---------------------------------------------------------------- charts and their content


def chart_files(chart: Path) -> list[Path]:
    """Every file helm reads for a chart, through the charts/lib symlink (Path.rglob would not follow it)."""
    if chart.is_file():
        return [chart]
    found = []
    for top, _, names in os.walk(chart, followlinks=True):
        found.extend(Path(top) / n for n in names)
    return sorted(found)


# Template functions whose result changes from one render to the next (Sprig's random and crypto
# generators, the clock) or depends on a live cluster (lookup, empty offline).
UNSTABLE = re.compile(r"\b(rand(AlphaNum|Alpha|Numeric|Ascii|Bytes|Int)|uuidv4|genCA|genCAWithKey|genPrivateKey|"
                      r"genSelfSignedCert|genSelfSignedCertWithKey|genSignedCert|genSignedCertWithKey|now|"
                      r"htpasswd|bcrypt|lookup)\b")


def _templates(chart: Path) -> Iterator[str]:
    if chart.is_file():
        with tarfile.open(chart) as tar:
            for member in tar.getmembers():
                if member.isfile() and "/templates/" in member.name:
                    yield tar.extractfile(member).read().decode("utf-8", "replace")  # type: ignore[union-attr]
    else:
        for path in chart_files(chart):
            if "templates" in path.relative_to(chart).parts:
                yield path.read_text(encoding="utf-8", errors="replace")


def may_flap(chart: Path) -> bool:
    """Whether any template action calls a function that can differ between two renders."""
    actions = re.compile(r"\{\{(.*?)\}\}", re.S)
    return any(UNSTABLE.search(m.group(1)) for text in _templates(chart) for m in actions.finditer(text))


def _chart_digest(chart: Path) -> str:
    """Content hash of a chart's files (names and bytes); one read per chart per run, however many apps use it."""
    h = hashlib.sha256()
    for path in chart_files(chart):
        rel = path.name if chart.is_file() else path.relative_to(chart).as_posix()
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _sdk_safe(chart: Path) -> bool:
    """Whether nothing in this chart directory renders differently through Helm's SDK (helmsdk.py): no CRDs, hooks,
    Capabilities or kubeVersion constraint, nothing that may flap."""
    for path in chart_files(chart):
        parts = path.relative_to(chart).parts
        if "crds" in parts[:-1]:
            return False
        if path.name == "Chart.yaml":
            if "kubeVersion" in path.read_text(encoding="utf-8", errors="replace"):
                return False
        elif "templates" in parts:
            text = path.read_text(encoding="utf-8", errors="replace")
            if "Capabilities" in text or HELM_HOOK in text:
                return False
    return not may_flap(chart)


def in_process(inv: Invocation, safe: dict[Path, bool] | None = None) -> bool:
    """Whether this call renders through Helm's SDK (helmsdk.py) rather than with the helm CLI: a local chart that is
    _sdk_safe, one value file, and the SDK installed. `safe` keeps each chart's answer for one run."""
    if not helmsdk.available() or not inv.chart.is_dir() or len(inv.value_files) != 1:
        return False
    safe = {} if safe is None else safe
    if inv.chart not in safe:
        safe[inv.chart] = _sdk_safe(inv.chart)
    return safe[inv.chart]


def _digest(inv: Invocation, repo: Path, helm: Helm, charts: dict[Path, str] | None = None,
            safe: dict[Path, bool] | None = None) -> str:
    """Content hash of everything the output depends on: chart (and library) files, value files, flags, and what
    renders it (the CLI's version, or the SDK's)."""
    h = hashlib.sha256()
    renderer = helmsdk.describe() if in_process(inv, safe) else helm.version
    flags = (renderer, inv.kube_version or "", inv.release, inv.namespace, str(inv.include_crds),
             str(inv.skip_tests), *inv.api_versions)
    for part in flags:
        h.update(part.encode() + b"\0")
    if charts is None:
        charts = {}
    if inv.chart not in charts:
        charts[inv.chart] = _chart_digest(inv.chart)
    h.update(charts[inv.chart].encode() + b"\0")
    for f, name in zip(inv.value_files, inv.value_names or [f.relative_to(repo).as_posix() for f in inv.value_files]):
        h.update(name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


# ---------------------------------------------------------------- comparing two renders


def _leaves(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    if isinstance(node, dict):
        if not node:
            yield path, {}
        for k, v in node.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(node, list):
        if not node:
            yield path, []
        for i, v in enumerate(node):
            yield from _leaves(v, path + (i,))
    else:
        yield path, node


def differences(first: Output, second: Output) -> list[tuple[tuple[str, str, str], tuple]]:
    """((kind, namespace, name), field path) of everything that differs between two renders of one app."""
    a = {key_of(d): d for d in first.docs}
    b = {key_of(d): d for d in second.docs}
    out: list[tuple[tuple[str, str, str], tuple]] = []
    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b:
            out.append((key, ()))
            continue
        la, lb = dict(_leaves(a[key])), dict(_leaves(b[key]))
        out += [(key, p) for p in sorted(set(la) | set(lb), key=str) if la.get(p, object()) != lb.get(p, object())]
    return out


def digests(invocations: list[Invocation], repo: Path, helm: Helm) -> dict[str, str]:
    """App -> the content hash of everything its helm output depends on (each chart read once)."""
    charts: dict[Path, str] = {}
    safe: dict[Path, bool] = {}
    return {inv.app: _digest(inv, repo, helm, charts, safe) for inv in invocations}


@dataclass
class Result:
    outputs: dict[str, Output]
    flaps: dict[str, list[tuple[tuple[str, str, str], tuple]]]  # app -> fields that differ between two renders
    rendered: int  # apps that needed helm
    cached: int  # apps served from the content-hash cache
    in_process: int = 0  # of the rendered ones, those meant for Helm's SDK (helmsdk.py)
    fell_back: tuple[str, ...] = ()  # of those, the apps the CLI rendered after the SDK failed (each with its error)


def hydrate(invocations: list[Invocation], repo: Path, helm: Helm, cache: Path, jobs: int | None = None,
            progress: Callable[[int, int], None] = lambda done, total: None) -> Result:
    """Render every invocation (concurrently), reusing cached output when nothing it depends on changed.

    A chart that may flap is rendered twice and the two renders compared; the cache keeps the first render
    (as JSON: parsing megabytes of YAML again on every run would cost seconds) and the fields that differed.
    """
    cache.mkdir(parents=True, exist_ok=True)
    keys = digests(invocations, repo, helm)

    def entry(inv: Invocation) -> Path:
        return cache / f"{keys[inv.app]}.json"

    todo = [inv for inv in invocations if not entry(inv).is_file()]
    safe: dict[Path, bool] = {}
    sdk = {inv.app for inv in todo if in_process(inv, safe)}
    workers = jobs or os.cpu_count() or 2
    session = helmsdk.Session(min(workers, len(sdk))) if sdk else None

    fell_back: list[str] = []
    flappy: dict[Path, bool] = {}  # may_flap of each chart, read once a run (1000 apps share a handful of charts)

    def render(inv: Invocation) -> Output:
        if session is not None and inv.app in sdk:
            try:
                return normalize(session.template(inv.chart, inv.release, inv.namespace, inv.value_files[0]))
            except Exception as exc:  # noqa: BLE001 — whatever failed, the CLI's run says it in the CLI's words
                fell_back.append(f"{inv.app} ({' '.join(str(exc).split())[:200]})")
        return normalize(helm.template(inv.chart, inv.release, inv.namespace, list(inv.value_files), inv.kube_version,
                                       list(inv.api_versions), include_crds=inv.include_crds, skip_tests=inv.skip_tests))

    def run(inv: Invocation) -> None:
        if inv.chart not in flappy:  # a race at worst computes the same answer twice
            flappy[inv.chart] = may_flap(inv.chart)
        renders = [render(inv) for _ in range(2 if flappy[inv.chart] else 1)]
        flaps = differences(*renders) if len(renders) == 2 else []
        data = {"docs": renders[0].docs, "dropped": renders[0].dropped, "flaps": [[list(k), list(p)] for k, p in flaps]}
        tmp = entry(inv).with_name(f".{entry(inv).name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(data, sort_keys=False), encoding="utf-8")
        os.replace(tmp, entry(inv))

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for done, future in enumerate([pool.submit(run, inv) for inv in todo], 1):
                future.result()
                progress(done, len(todo))
    finally:
        if session is not None:
            session.close()
    outputs, flaps = {}, {}
    for inv in invocations:
        data = json.loads(entry(inv).read_text(encoding="utf-8"))
        outputs[inv.app] = Output(data["docs"], data["dropped"])
        flaps[inv.app] = [(tuple(k), tuple(p)) for k, p in data["flaps"]]
    return Result(outputs, flaps, rendered=len(todo), cached=len(invocations) - len(todo), in_process=len(sdk),
                  fell_back=tuple(sorted(fell_back)))
