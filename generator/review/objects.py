"""The objects of one side: their identity (environment, app, apiVersion, kind, namespace, name), what a path says
of them, and the documents of the changed files, parsed lazily and collected by identity."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from .. import layout as layouts, yamlio
from .snapshot import DiffError, Snapshot


# Objects Kubernetes keeps outside namespaces: Helm leaves their namespace empty and so do we.
CLUSTER_SCOPED = frozenset({
    "Namespace", "Node", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
    "StorageClass", "PriorityClass", "IngressClass", "ValidatingWebhookConfiguration", "RuntimeClass",
    "MutatingWebhookConfiguration", "APIService", "CSIDriver", "VolumeSnapshotClass", "ClusterIssuer",
})
VALUES_KIND = "Values"  # the pseudo-object standing for rendered/<env>/values/<app>.yaml
VALUES_API = "eco2-gitops/values"


@dataclass(frozen=True, order=True)
class Key:
    """Identity of an object: environment, app, apiVersion, kind, namespace, name (env '' for argocd/)."""

    env: str
    app: str
    api_version: str
    kind: str
    namespace: str
    name: str

    @property
    def group(self) -> str:
        return f"{self.env}/{self.app}" if self.env else self.app

    @property
    def label(self) -> str:
        if self.kind == VALUES_KIND:
            return f"Helm values {self.env}/{self.name}"
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True)
class _Place:
    env: str
    app: str
    role: str  # apps | values | manifests | other


def _place(path: str) -> _Place:
    found = layouts.place(path)
    if found.env is not None:  # an app's CRDs are its manifests too, kept in a file of their own
        return _Place(found.env, found.app, "manifests" if found.dir == "crds" else found.dir)
    parts = path.split("/")
    if parts[0] == layouts.RENDERED and len(parts) >= 3:
        return _Place(parts[1], parts[-1].rsplit(".", 1)[0], "other")
    return _Place("", parts[0], "other")


def _manifest_path(env: str, app: str) -> str:
    return layouts.Layout(env).manifest_file(app)


def _apps_path(env: str, app: str) -> str:
    return layouts.Layout(env).app_file(app)


# Generated files join documents with a bare `---` line; splitting on it lets equal documents go unparsed.
_DOC_SEPARATOR = re.compile(rb"(?m)^---[ \t]*\r?\n")


def _chunks(data: bytes | None) -> list[bytes]:
    return _DOC_SEPARATOR.split(data) if data else []


class _Side:
    """One snapshot, parsed lazily: unchanged files, and unchanged documents of changed files, are never parsed."""

    def __init__(self, snap: Snapshot):
        self.snap = snap
        self._docs: dict[str, list[tuple[int, Any]]] = {}

    def _fail(self, path: str, exc: Exception) -> DiffError:
        return DiffError(f"cannot parse {self.snap.label}:{path}: {str(exc).splitlines()[0]}")

    def docs(self, path: str, skip: frozenset[bytes] = frozenset()) -> list[tuple[int, Any]]:
        """(index, document) of every document of `path` whose text is not in `skip`."""
        if not skip and path in self._docs:
            return self._docs[path]
        data = self.snap.files.get(path)
        out: list[tuple[int, Any]] = []
        try:
            for index, chunk in enumerate(_chunks(data)):
                if chunk in skip:
                    continue
                docs = yamlio.load_all(chunk.decode("utf-8"))
                if len(docs) > 1:
                    raise ValueError("not split on its separators")
                out += [(index, d) for d in docs]
        except (yaml.YAMLError, UnicodeDecodeError, ValueError):
            try:  # not the generator's layout (or broken): the whole file, the ordinary way
                out = list(enumerate(yamlio.load_all(data.decode("utf-8")))) if data else []
            except (yaml.YAMLError, UnicodeDecodeError) as exc:  # a broken file in one ref: name it, do not guess
                raise self._fail(path, exc) from None
        if not skip:
            self._docs[path] = out
        return out

    def destination_namespace(self, env: str, app: str) -> str:
        for _, doc in self.docs(_apps_path(env, app)):
            if isinstance(doc, dict) and doc.get("kind") == "Application":
                ns = ((doc.get("spec") or {}).get("destination") or {}).get("namespace")
                return ns if isinstance(ns, str) else ""
        return ""

    def objects(self, path: str, skip: frozenset[bytes] = frozenset()) -> Iterator[tuple[Key, Any]]:
        place = _place(path)
        docs = self.docs(path, skip)
        if place.role == "values":
            for _, doc in docs[:1]:
                yield Key(place.env, place.app, VALUES_API, VALUES_KIND, "", place.app), doc
            return
        default_ns = self.destination_namespace(place.env, place.app) if place.role == "manifests" else ""
        for index, doc in docs:
            meta = doc.get("metadata") if isinstance(doc, dict) else None
            if not (isinstance(meta, dict) and isinstance(doc.get("kind"), str) and meta.get("name") is not None):
                yield Key(place.env, place.app, "", "(document)", "", f"{path}#{index}"), doc
                continue
            kind = doc["kind"]
            ns = meta.get("namespace") or ("" if kind in CLUSTER_SCOPED else default_ns)
            yield Key(place.env, place.app, str(doc.get("apiVersion", "")), kind, str(ns), str(meta["name"])), doc


def _collect(side: _Side, paths: Iterable[str], skips: dict[str, frozenset[bytes]]) -> dict[Key, Any]:
    out: dict[Key, Any] = {}
    for path in paths:
        for key, doc in side.objects(path, skips.get(path, frozenset())):
            n = 2
            unique = key
            while unique in out:  # the same object twice in one tree: keep both, visibly
                unique = Key(key.env, key.app, key.api_version, key.kind, key.namespace, f"{key.name}#{n}")
                n += 1
            out[unique] = doc
    return out


def _equal_documents(old: bytes | None, new: bytes | None) -> frozenset[bytes]:
    """Document texts both sides have equally often: they cannot contribute a change."""
    a, b = Counter(_chunks(old)), Counter(_chunks(new))
    return frozenset(chunk for chunk, n in a.items() if b.get(chunk) == n)
