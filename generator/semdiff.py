"""Semantic diff of the rendered tree between two git refs (or a ref and the working tree), object by object."""

from __future__ import annotations

import difflib
import fnmatch
import json
import re
import subprocess
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import yaml

from . import credentials, labels, yamlio
from .errors import UsageError
from .quantity import kubernetes_quantity

TOPS = ("rendered", "argocd")
WORKING_TREE = "working tree"
GITHUB_COMMENT_LIMIT = 65_536
RENAME_THRESHOLD = 0.9
# Past this many removed x added pairs of one kind, similarity scoring costs more than it explains.
RENAME_PAIR_LIMIT = 40_000

# Objects Kubernetes keeps outside namespaces: Helm leaves their namespace empty and so do we.
CLUSTER_SCOPED = frozenset({
    "Namespace", "Node", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
    "StorageClass", "PriorityClass", "IngressClass", "ValidatingWebhookConfiguration", "RuntimeClass",
    "MutatingWebhookConfiguration", "APIService", "CSIDriver", "VolumeSnapshotClass", "ClusterIssuer",
})
VALUES_KIND = "Values"  # the pseudo-object standing for rendered/<env>/values/<app>.yaml
VALUES_API = "eco2-gitops/values"

# Labels and annotations that change on every chart bump or config edit without changing behaviour by themselves:
# the chart label, the version label (it mirrors the image tag, which is shown where it matters) and checksums.
NOISE_LABELS = frozenset({labels.HELM_CHART, labels.VERSION})
NOISE_ANNOTATION_PREFIX = "checksum/"

REDACTED = credentials.REDACTED

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_./:@+~-][^\s,{}\[\]\"'#]*$")
_LOOKS_TYPED = re.compile(r"^([-+]?[0-9][0-9_.eE+-]*|true|false|yes|no|on|off|null|~)$", re.IGNORECASE)


class DiffError(UsageError):
    """A ref, repository or file the diff cannot read (exit 2)."""


Name = credentials.Name  # a path step into a list of named items (containers[app]), not a key or an index


def format_path(parts: Iterable) -> str:
    """('spec', 'containers', Name('app'), 'image') -> spec.containers[app].image; odd keys are quoted."""
    out = ""
    for part in parts:
        if isinstance(part, (Name, int)):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out


# ---------------------------------------------------------------------------------------------------------- reading


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


# ---------------------------------------------------------------------------------------------------------- objects


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
    parts = path.split("/")
    stem = parts[-1].rsplit(".", 1)[0]
    if parts[0] == "rendered" and len(parts) >= 3:
        env = parts[1]
        if len(parts) == 4 and parts[2] in ("apps", "values", "manifests", "crds"):
            # An app's CRDs are its manifests too, kept in a file of their own.
            return _Place(env, stem, "manifests" if parts[2] == "crds" else parts[2])
        return _Place(env, stem, "other")
    return _Place("", parts[0], "other")


def _manifest_path(env: str, app: str) -> str:
    return f"rendered/{env}/manifests/{app}.yaml"


def _apps_path(env: str, app: str) -> str:
    return f"rendered/{env}/apps/{app}.yaml"


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


# ---------------------------------------------------------------------------------------------------------- diffing


@dataclass
class FieldChange:
    """One leaf or subtree: op is added, removed or changed; old/new are already redacted."""

    op: str
    path: str
    old: Any = None
    new: Any = None
    noise: bool = False


@dataclass
class ObjectChange:
    """op: added, removed, changed or renamed (renamed also covers an apiVersion move of the same object)."""

    op: str
    key: Key
    old_key: Key | None = None
    fields: list[FieldChange] = field(default_factory=list)
    similarity: float | None = None
    shown: bool = True  # False: the values file of a hydrated app (its manifests show the effect)
    doc: Any = None  # an added object as it will be, a removed one as it was (redacted)

    @property
    def visible_fields(self) -> list[FieldChange]:
        return [f for f in self.fields if not f.noise]


@dataclass(frozen=True)
class Danger:
    rule: str
    group: str
    message: str


@dataclass(frozen=True)
class Restart:
    """A workload whose pods roll at sync: its pod template changed (checksum annotations and labels included)."""

    key: Key
    pods: int | None  # replicas after the change; None for a DaemonSet (one per node)

    @property
    def group(self) -> str:
        return self.key.group

    @property
    def only_pod(self) -> bool:
        return self.pods == 1

    @property
    def message(self) -> str:
        if self.pods is None:
            how = "its pod on every node"
        elif self.pods == 1:
            how = "its only pod: unavailable until the new one is ready"
        else:
            how = f"its {self.pods} pods"
        return f"{self.group}: {self.key.label} restarts {how}"


@dataclass
class Report:
    base: str
    head: str
    summary: list[str]
    objects: list[ObjectChange]
    dangers: list[Danger]
    keep_noise: bool = False
    restarts: list[Restart] = field(default_factory=list)

    @property
    def hidden_noise(self) -> int:
        return 0 if self.keep_noise else sum(len(o.fields) - len(o.visible_fields) for o in self.objects if o.shown)

    def shown_objects(self) -> list[ObjectChange]:
        """What the per-object section lists: without values of hydrated apps and (unless --all) noise-only changes."""
        out = []
        for obj in self.objects:
            if not obj.shown:
                continue
            if obj.op == "changed" and not self.keep_noise and not obj.visible_fields:
                continue
            out.append(obj)
        return out

    def fields_of(self, obj: ObjectChange) -> list[FieldChange]:
        return obj.fields if self.keep_noise else obj.visible_fields


def _name_of(item: Any) -> Any:
    if not isinstance(item, dict):
        return None
    name = item.get("name")
    if name is None and isinstance(item.get("metadata"), dict):
        name = item["metadata"].get("name")  # volumeClaimTemplates
    return name if isinstance(name, (str, int)) and not isinstance(name, bool) else None


def _list_names(items: list) -> list[str] | None:
    """Names of a list of named items (containers, env, ports, volumes, volumeClaimTemplates), if all unique."""
    names = []
    for item in items:
        name = _name_of(item)
        if name is None:
            return None
        names.append(str(name))
    return names if len(set(names)) == len(names) else None


def _json_container(text: str) -> Any:
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, (dict, list)) else None


def _canonical(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except TypeError:  # mixed key types (YAML allows 1 and "a" as keys of one mapping)
        return repr(value)


def _same(a: Any, b: Any) -> bool:
    # `1 == True` in Python: a YAML type change must still show.
    return type(a) is type(b) and a == b


Raw = tuple  # (op, parts, old, new)


def diff_values(old: Any, new: Any, parts: tuple = ()) -> list[Raw]:
    """Field-level changes between two parsed YAML values; named lists are matched by name, not position."""
    out: list[Raw] = []
    _diff(old, new, parts, out)
    return out


def _diff(old: Any, new: Any, parts: tuple, out: list[Raw]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for k, v in old.items():
            step = k if isinstance(k, str) else str(k)
            if k in new:
                _diff(v, new[k], parts + (step,), out)
            else:
                _whole("removed", parts + (step,), v, out)
        for k, v in new.items():
            if k not in old:
                _whole("added", parts + (k if isinstance(k, str) else str(k),), v, out)
    elif isinstance(old, list) and isinstance(new, list):
        _diff_list(old, new, parts, out)
    elif isinstance(old, str) and isinstance(new, str):
        if old == new:
            return
        old_json, new_json = _json_container(old), _json_container(new)
        if old_json is not None and new_json is not None and type(old_json) is type(new_json):
            _diff(old_json, new_json, parts, out)  # JSON carried in a string (definitions.json, ALB annotations)
        else:
            out.append(("changed", parts, old, new))
    elif not _same(old, new):
        out.append(("changed", parts, old, new))


def _whole(op: str, parts: tuple, value: Any, out: list[Raw]) -> None:
    """A key that appears or disappears; a list of named items is listed item by item (volumeClaimTemplates[wal])."""
    names = _list_names(value) if isinstance(value, list) and value else None
    if names is None:
        out.append((op, parts, value, None) if op == "removed" else (op, parts, None, value))
        return
    for name, item in zip(names, value):
        out.append((op, parts + (Name(name),), item, None) if op == "removed" else (op, parts + (Name(name),), None, item))


def _diff_list(old: list, new: list, parts: tuple, out: list[Raw]) -> None:
    if old == new and all(_same(a, b) for a, b in zip(old, new)):
        return
    old_names, new_names = _list_names(old), _list_names(new)
    if old_names is not None and new_names is not None and (old or new):
        by_old = dict(zip(old_names, old))
        by_new = dict(zip(new_names, new))
        for name, item in by_old.items():
            if name in by_new:
                _diff(item, by_new[name], parts + (Name(name),), out)
            else:
                out.append(("removed", parts + (Name(name),), item, None))
        for name, item in by_new.items():
            if name not in by_old:
                out.append(("added", parts + (Name(name),), None, item))
        return
    if all(not isinstance(v, (dict, list)) for v in old + new):
        out.append(("changed", parts, old, new))  # lists of scalars read best whole: [a, b] -> [a]
        return
    # Unnamed items (steps, rules, destinations): align by content so an insertion does not shift everything.
    matcher = difflib.SequenceMatcher(None, [_canonical(v) for v in old], [_canonical(v) for v in new], autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        common = min(i2 - i1, j2 - j1) if op == "replace" else 0
        for k in range(common):
            _diff(old[i1 + k], new[j1 + k], parts + (j1 + k,), out)
        for i in range(i1 + common, i2):
            out.append(("removed", parts + (i,), old[i], None))
        for j in range(j1 + common, j2):
            out.append(("added", parts + (j,), None, new[j]))


def is_noise(parts: tuple) -> bool:
    if len(parts) < 2 or isinstance(parts[-1], int):
        return False
    parent, last = parts[-2], str(parts[-1])
    return (parent == "labels" and last in NOISE_LABELS) or (
        parent == "annotations" and last.startswith(NOISE_ANNOTATION_PREFIX))


def _leaves(value: Any, parts: tuple, out: set) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _leaves(v, parts + (str(k),), out)
    elif isinstance(value, list):
        names = _list_names(value)
        for i, v in enumerate(value):
            _leaves(v, parts + ((Name(names[i]),) if names is not None else (i,)), out)
    elif not is_noise(parts) and parts != ("metadata", "name"):
        out.add((parts, type(value).__name__, value if not isinstance(value, float) else repr(value)))


def similarity(a: Any, b: Any) -> float:
    """Share of equal leaves (ignoring metadata.name and noise): 1.0 identical, 0.0 nothing in common."""
    la, lb = set(), set()
    _leaves(a, (), la)
    _leaves(b, (), lb)
    return _set_similarity(la, lb)


def _set_similarity(la: set, lb: set) -> float:
    if not la and not lb:
        return 1.0
    return len(la & lb) / max(len(la), len(lb))


# -------------------------------------------------------------------------------------------------------- redaction


def redact_text(text: str) -> str:
    """Credentials that are recognisable by their shape, wherever they occur in a string."""
    return credentials.redact_text(text)


def redact(value: Any, parts: tuple = (), kind: str = "") -> Any:
    """A copy of `value` (found at `parts` in an object of `kind`) with secret-like values replaced by <redacted>."""
    if isinstance(value, dict):
        return {k: redact(v, parts + (str(k),), kind) for k, v in value.items()}
    if isinstance(value, list):
        names = _list_names(value)
        return [redact(v, parts + ((Name(names[i]),) if names is not None else (i,)), kind) for i, v in enumerate(value)]
    if value is None or isinstance(value, bool):
        return value  # `automountServiceAccountToken: false` is not a secret
    if credentials.sensitive(parts, kind):
        return REDACTED
    return redact_text(value) if isinstance(value, str) else value


# ----------------------------------------------------------------------------------------------------------- danger

_APP_KINDS = ("Application", "ApplicationSet")
_PROJECT_WIDENING = ("sourceRepos", "destinations", "clusterResourceWhitelist", "namespaceResourceWhitelist",
                     "sourceNamespaces")
_PROJECT_BLACKLISTS = ("clusterResourceBlacklist", "namespaceResourceBlacklist")


def _is_argo(key: Key) -> bool:
    return key.api_version.startswith("argoproj.io/")


def _quantity(value: Any) -> Decimal | None:
    """A storage quantity ('10Gi', '500M', '1e9', 1073741824) in bytes, by the API server's grammar; None when it is
    not one (then no shrink can be told)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return Decimal(value)
    try:
        return kubernetes_quantity(str(value).strip())
    except ValueError:
        return None


def _is_volume_size(parts: tuple) -> bool:
    steps = [str(p) for p in parts if not isinstance(p, int)]
    return (len(steps) >= 2 and steps[-2:] == ["requests", "storage"]) or (
        len(steps) >= 2 and steps[-1] == "size" and steps[-2] in ("storage", "persistence", "volume"))


def _vct_names(doc: Any) -> list[str]:
    templates = ((doc or {}).get("spec") or {}).get("volumeClaimTemplates") or []
    return [str(_name_of(t)) for t in templates if _name_of(t) is not None]


def _queue_names(definitions: Any) -> set[str]:
    queues = definitions.get("queues") if isinstance(definitions, dict) else None
    return {str(q["name"]) for q in queues or [] if isinstance(q, dict) and "name" in q}


def _queues_of(key: Key | None, doc: Any) -> set[str] | None:
    """Queues a RabbitMQ definitions source declares: values `definitions`, or a ConfigMap's definitions.json."""
    if not isinstance(doc, dict):
        return None
    if key.kind == VALUES_KIND:
        return _queue_names(doc["definitions"]) if "definitions" in doc else None
    if key.kind == "ConfigMap":
        for name, text in (doc.get("data") or {}).items():
            if str(name).endswith(".json") and isinstance(text, str):
                parsed = _json_container(text)
                if isinstance(parsed, dict) and "queues" in parsed:
                    return _queue_names(parsed)
    return None


def _covers(pattern: Any, item: Any) -> bool:
    """Does a (new) AppProject list entry still allow an (old) one? Argo CD entries are globs."""
    if isinstance(pattern, dict) and isinstance(item, dict):
        return all(_covers(pattern.get(k, "" if k == "name" else "*"), v) for k, v in item.items())
    if isinstance(pattern, str) and isinstance(item, str):
        return fnmatch.fnmatchcase(item, pattern)
    return pattern == item


def _brief(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return str(value)


def _project_narrowing(old: dict, new: dict) -> list[str]:
    out = []
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    for name in _PROJECT_WIDENING:
        lost = [i for i in old_spec.get(name) or [] if not any(_covers(p, i) for p in new_spec.get(name) or [])]
        if lost:
            out.append(f"{name} loses {', '.join(_brief(i) for i in lost)}")
    for name in _PROJECT_BLACKLISTS:
        gained = [i for i in new_spec.get(name) or [] if i not in (old_spec.get(name) or [])]
        if gained:
            out.append(f"{name} gains {', '.join(_brief(i) for i in gained)}")
    return out


def _removal_danger(key: Key, doc: Any, how: str) -> Danger | None:
    g, label = key.group, key.label
    if key.kind in _APP_KINDS and _is_argo(key):
        return Danger("application-removed", g, f"{g}: {label} {how}: Argo CD deletes it and, through its "
                                                f"finalizer, everything it deployed")
    if key.kind == "AppProject" and _is_argo(key):
        return Danger("project-narrowed", g, f"{g}: {label} {how}: every Application in it stops syncing")
    if key.kind == "Namespace":
        return Danger("namespace-removed", g, f"{g}: {label} {how}: everything in it is deleted")
    if key.kind == "PersistentVolumeClaim":
        return Danger("pvc-removed", g, f"{g}: {label} {how}: its volume and the data on it go with it")
    if key.kind == "CustomResourceDefinition":
        return Danger("crd-removed", g, f"{g}: {label} {how}: every object of that type in the cluster is deleted")
    if key.kind == "StatefulSet" and _vct_names(doc):
        return Danger("volume-template-removed", g, f"{g}: {label} {how} with its volume templates "
                                                    f"({', '.join(_vct_names(doc))}): its replicas lose their volumes")
    return None


# Workloads whose pods roll when their pod template changes (restarts), and which a kind change replaces.
_ROLLING_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Rollout")
# Fields Kubernetes refuses to change on an existing object: the sync fails until it is deleted and created again.
_IMMUTABLE = {"Deployment": ("spec.selector",), "DaemonSet": ("spec.selector",), "Rollout": (),
              "StatefulSet": ("spec.selector", "spec.serviceName", "spec.podManagementPolicy")}


def _replacements(pairs: list[tuple[str, Key | None, Any, Key | None, Any, list[Raw]]]) -> list[Danger]:
    """A workload that changes kind under the same name (a rolling service made canary: Deployment -> Rollout), and a
    change to an immutable field: what happens at sync, and the safe path."""
    out = []
    removed = {(k.env, k.app, k.namespace, k.name): k for op, k, _, _, _, _ in pairs
               if op == "removed" and k.kind in _ROLLING_KINDS}
    for op, _, _, new, _, _ in pairs:
        old = removed.get((new.env, new.app, new.namespace, new.name)) if op == "added" and new.kind in _ROLLING_KINDS else None
        if old is None or old.kind == new.kind:
            continue
        if (old.kind, new.kind) == ("Deployment", "Rollout"):
            safe = ("safe path: first add the Rollout with workloadRef to the Deployment (Argo Rollouts' migration), "
                    "let it scale up, then remove the Deployment")
        else:
            safe = f"safe path: first add the {new.kind} under another name, let it become ready, then remove the {old.kind}"
        out.append(Danger("workload-replaced", new.group, f"{new.group}: {old.label} is replaced by a {new.kind}: at sync "
                                                          f"Argo CD deletes the {old.kind} and its pods while the "
                                                          f"{new.kind}'s start from none; {safe}"))
    for op, key, _, _, _, raw in pairs:
        if op != "changed" or key.kind not in _IMMUTABLE:
            continue
        for immutable in _IMMUTABLE[key.kind]:
            parts = tuple(immutable.split("."))
            if any(tuple(str(p) for p in r[1][:len(parts)]) == parts for r in raw):
                out.append(Danger("immutable-field", key.group, f"{key.group}: {key.label}: {immutable} changes, which "
                                                                f"Kubernetes refuses: the sync fails until the object is "
                                                                f"deleted and created again, its pods with it"))
    return out


def _dangers(pairs: list[tuple[str, Key | None, Any, Key | None, Any, list[Raw]]]) -> list[Danger]:
    out: list[Danger] = []
    seen: set[tuple] = set()
    manifest_shrinks: set[tuple] = set()

    def add(danger: Danger) -> None:
        # Once per message: a queue declared in an app's values and in its ConfigMap has the same group and message.
        if (danger.rule, danger.message) not in seen:
            seen.add((danger.rule, danger.message))
            out.append(danger)

    shrinks: list[tuple[Key, str, Any, Any]] = []
    for op, old_key, old, new_key, new, raw in pairs:
        if op == "removed":
            danger = _removal_danger(old_key, old, "removed")
            if danger:
                add(danger)
        if op == "renamed" and old_key.name != new_key.name:
            danger = _removal_danger(old_key, old, f"renamed to {new_key.name}")
            if danger:
                add(danger)
        ref = new_key or old_key
        if op in ("changed", "renamed"):
            if ref.kind == "StatefulSet":
                lost = [n for n in _vct_names(old) if n not in _vct_names(new)]
                for name in lost:
                    add(Danger("volume-template-removed", ref.group, f"{ref.group}: {ref.label}: volumeClaimTemplate "
                                                                     f"{name} removed: its replicas lose that volume"))
            if ref.kind == "AppProject" and _is_argo(ref) and isinstance(old, dict) and isinstance(new, dict):
                for what in _project_narrowing(old, new):
                    add(Danger("project-narrowed", ref.group, f"{ref.group}: {ref.label} narrowed: {what}"))
            for rop, parts, a, b in raw:
                if rop == "changed" and _is_volume_size(parts):
                    qa, qb = _quantity(a), _quantity(b)
                    if qa is not None and qb is not None and qb < qa:
                        shrinks.append((ref, format_path(parts), a, b))
                        if ref.kind != VALUES_KIND:
                            manifest_shrinks.add((ref.env, ref.app, str(a), str(b)))
        old_queues = _queues_of(old_key, old)  # None where there is no old side (its doc is None)
        new_queues = _queues_of(new_key, new)
        if old_queues:
            for queue in sorted(old_queues - (new_queues or set())):
                add(Danger("queue-removed", ref.group, f"{ref.group}: queue {queue} removed from the RabbitMQ "
                                                       f"definitions: the messages in it are lost"))
    for danger in _replacements(pairs):
        add(danger)
    for ref, path, a, b in shrinks:
        # The values file and the hydrated volume template say the same thing: name it once, at the object.
        if ref.kind == VALUES_KIND and (ref.env, ref.app, str(a), str(b)) in manifest_shrinks:
            continue
        add(Danger("volume-shrunk", ref.group, f"{ref.group}: {ref.label} {path} shrinks {a} → {b}: "
                                               f"Kubernetes cannot shrink a volume"))
    # Same order as the objects: environments first, then the argocd/ bootstrap.
    return sorted(out, key=lambda d: ("/" not in d.group, d.group))


# ---------------------------------------------------------------------------------------------------------- summary


def _short_digest(digest: str) -> str:
    algo, _, hexdigits = str(digest).partition(":")
    return f"{algo}:{hexdigits[:12]}" if hexdigits else str(digest)


def _image(img: dict, with_repo: bool) -> str:
    out = str(img.get("repository", "")) if with_repo else ""
    if img.get("tag"):
        out += (":" if with_repo else "") + str(img["tag"])
    if img.get("digest"):
        out += ("@" if out else "") + _short_digest(img["digest"])
    return out or "(none)"


def _fmt(value: Any) -> str:
    return "(none)" if value is None else _show(value)


def _get(doc: Any, *path: Any) -> Any:
    for step in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(step)
    return doc


def _model_lines(old: dict, new: dict, raw: list[Raw]) -> list[str]:
    """One line per model-level change of an app's values; the rest is counted, never dropped silently."""
    lines: list[str] = []
    described: list[tuple] = []

    oi, ni = old.get("image") or {}, new.get("image") or {}
    keys = ("repository", "tag", "digest")
    if isinstance(oi, dict) and isinstance(ni, dict) and any(oi.get(k) != ni.get(k) for k in keys):
        same_repo = oi.get("repository") == ni.get("repository")
        lines.append(f"image {_image(oi, not same_repo)} → {_image(ni, not same_repo)}")
    described += [("image", k) for k in keys]

    if old.get("strategy") != new.get("strategy"):
        lines.append(f"delivery {_fmt(old.get('strategy'))} → {_fmt(new.get('strategy'))}")
    described.append(("strategy",))
    if old.get("replicas") != new.get("replicas"):
        lines.append(f"replicas {_fmt(old.get('replicas'))} → {_fmt(new.get('replicas'))}")
    described.append(("replicas",))

    oh, nh = old.get("hpa") or {}, new.get("hpa") or {}
    if isinstance(oh, dict) and isinstance(nh, dict):
        def span(h: dict) -> str:
            return f"{h.get('minReplicas')}–{h.get('maxReplicas')}"
        if bool(oh.get("enabled")) != bool(nh.get("enabled")):
            lines.append(f"HPA on ({span(nh)})" if nh.get("enabled") else "HPA off")
        elif nh.get("enabled") and span(oh) != span(nh):
            lines.append(f"HPA {span(oh)} → {span(nh)}")
        if nh.get("enabled") and oh.get("enabled") and oh.get("targetCpuUtilization") != nh.get("targetCpuUtilization"):
            lines.append(f"HPA CPU target {oh.get('targetCpuUtilization')}% → {nh.get('targetCpuUtilization')}%")
        described += [("hpa", k) for k in ("enabled", "minReplicas", "maxReplicas", "targetCpuUtilization")]

    lines += _canary_lines(old.get("canary"), new.get("canary"), described)

    for kind in ("requests", "limits"):
        for res in ("cpu", "memory"):
            a, b = _get(old, "resources", kind, res), _get(new, "resources", kind, res)
            if a != b:
                lines.append(f"{res} {kind[:-1]} {_fmt(a)} → {_fmt(b)}")
            described.append(("resources", kind, res))

    oc, nc = old.get("celery") or {}, new.get("celery") or {}
    if isinstance(oc, dict) and isinstance(nc, dict):
        if oc.get("queues") != nc.get("queues"):
            lines.append(f"queues {', '.join(map(str, oc.get('queues') or [])) or '(none)'} → "
                         f"{', '.join(map(str, nc.get('queues') or [])) or '(none)'}")
        for k in ("pool", "concurrency"):
            if oc.get(k) != nc.get(k):
                lines.append(f"{k} {_fmt(oc.get(k))} → {_fmt(nc.get(k))}")
        described += [("celery", k) for k in ("queues", "pool", "concurrency")]

    for op, parts, a, b in raw:
        if op == "changed" and _is_volume_size(parts):
            where = [str(p) for p in parts[:-2] if not isinstance(p, int)]
            lines.append(f"{' '.join(where + ['volume']) if where else 'volume'} {a} → {b}")
            described.append(parts)

    oq, nq = _queue_names(old.get("definitions")), _queue_names(new.get("definitions"))
    lines += [f"queue {q} added" for q in sorted(nq - oq)] + [f"queue {q} removed" for q in sorted(oq - nq)]
    described.append(("definitions", "queues"))

    rest = sum(1 for _, parts, _, _ in raw if not any(parts[:len(d)] == d for d in described))
    if rest:
        lines.append(f"{rest} other value{'s' if rest != 1 else ''} changed")
    return lines


def _canary_lines(old: Any, new: Any, described: list[tuple]) -> list[str]:
    """Canary steps in model terms: step N is the N-th setWeight step (1-based; pauses are not counted)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    lines = []
    described.append(("canary", "steps"))
    steps_o, steps_n = old.get("steps") or [], new.get("steps") or []
    wo = [s["setWeight"] for s in steps_o if isinstance(s, dict) and "setWeight" in s]
    wn = [s["setWeight"] for s in steps_n if isinstance(s, dict) and "setWeight" in s]
    if len(wo) == len(wn):
        lines += [f"canary step {i + 1} weight {a} → {b}" for i, (a, b) in enumerate(zip(wo, wn)) if a != b]
    else:
        lines.append(f"canary weights {'/'.join(map(str, wo))} → {'/'.join(map(str, wn))}")
    po = [str(s["pause"]) for s in steps_o if isinstance(s, dict) and "pause" in s]
    pn = [str(s["pause"]) for s in steps_n if isinstance(s, dict) and "pause" in s]
    if po != pn:
        lines.append(f"canary pauses {'/'.join(po) or '(none)'} → {'/'.join(pn) or '(none)'}")
    ao, an = old.get("analysis") or {}, new.get("analysis") or {}
    if isinstance(ao, dict) and isinstance(an, dict):
        for k in dict.fromkeys([*ao, *an]):
            if not isinstance(ao.get(k), (dict, list)) and not isinstance(an.get(k), (dict, list)):
                if ao.get(k) != an.get(k):
                    lines.append(f"canary analysis {k} {_fmt(ao.get(k))} → {_fmt(an.get(k))}")
                described.append(("canary", "analysis", k))
    return lines


def _application_lines(old: Any, new: Any) -> list[str]:
    lines = []
    for label, path in (("project", ("spec", "project")), ("namespace", ("spec", "destination", "namespace")),
                        ("sync wave", ("metadata", "annotations", labels.SYNC_WAVE))):
        a, b = _get(old, *path), _get(new, *path)
        if a != b:
            lines.append(f"{label} {_fmt(a)} → {_fmt(b)}")
    src_o, src_n = _get(old, "spec", "source") or {}, _get(new, "spec", "source") or {}
    if src_n.get("chart") and (src_o.get("chart"), src_o.get("targetRevision")) != (src_n.get("chart"),
                                                                                    src_n.get("targetRevision")):
        lines.append(f"chart {src_o.get('chart')} {src_o.get('targetRevision')} → "
                     f"{src_n.get('chart')} {src_n.get('targetRevision')}")
    return lines


# ---------------------------------------------------------------------------------------------------------- compare


def _pair_moves(removed: dict[Key, Any], added: dict[Key, Any]) -> list[tuple[Key, Key, float]]:
    """Renames (same env/apiVersion/kind/namespace, ≥ 90 % equal leaves) and apiVersion moves of one object."""
    pairs: list[tuple[Key, Key, float]] = []
    by_identity: dict[tuple, list[Key]] = {}
    for key in added:
        by_identity.setdefault((key.env, key.kind, key.namespace, key.name), []).append(key)
    for old in list(removed):
        same = by_identity.get((old.env, old.kind, old.namespace, old.name), [])
        if len(same) == 1 and same[0].api_version != old.api_version:
            pairs.append((old, same[0], 1.0))
    taken_old = {p[0] for p in pairs}
    taken_new = {p[1] for p in pairs}
    groups: dict[tuple, tuple[list[Key], list[Key]]] = {}
    for key in removed:
        if key not in taken_old:
            groups.setdefault((key.env, key.api_version, key.kind, key.namespace), ([], []))[0].append(key)
    for key in added:
        if key not in taken_new:
            group = (key.env, key.api_version, key.kind, key.namespace)
            if group in groups:
                groups[group][1].append(key)
    leaves: dict[Key, set] = {}

    def leaf_set(key: Key, doc: Any) -> set:
        if key not in leaves:
            leaves[key] = set()
            _leaves(doc, (), leaves[key])
        return leaves[key]

    for olds, news in groups.values():
        if not news or len(olds) * len(news) > RENAME_PAIR_LIMIT:
            continue
        scored = []
        for o in olds:
            lo = leaf_set(o, removed[o])
            for n in news:
                ln = leaf_set(n, added[n])
                if min(len(lo), len(ln)) < RENAME_THRESHOLD * max(len(lo), len(ln)):
                    continue  # cannot reach the threshold: skip the set intersection
                score = _set_similarity(lo, ln)
                if score >= RENAME_THRESHOLD:
                    # Prefer the same app on ties: an object that stays in its app is the likelier rename.
                    scored.append((score, o.app == n.app, o, n))
        scored.sort(key=lambda s: (-s[0], not s[1], s[2], s[3]))
        for score, _, o, n in scored:
            if o not in taken_old and n not in taken_new:
                taken_old.add(o)
                taken_new.add(n)
                pairs.append((o, n, score))
    return pairs


def _schema_fields(node: Any, prefix: str = "") -> set[str]:
    """Every property path an openAPIV3Schema declares: spec.endpoints[].port, ..."""
    out: set[str] = set()
    if not isinstance(node, dict):
        return out
    for name, sub in (node.get("properties") or {}).items():
        path = f"{prefix}.{name}" if prefix else name
        out.add(path)
        out |= _schema_fields(sub, path)
    if isinstance(node.get("items"), dict):
        out |= _schema_fields(node["items"], f"{prefix}[]")
    if isinstance(node.get("additionalProperties"), dict):
        out |= _schema_fields(node["additionalProperties"], f"{prefix}.*")
    return out


def _crd_versions(doc: Any) -> dict[str, tuple[bool, bool, set[str]]]:
    versions = ((doc or {}).get("spec") or {}).get("versions") or []
    return {v.get("name"): (bool(v.get("served")), bool(v.get("storage")),
                            _schema_fields((v.get("schema") or {}).get("openAPIV3Schema"))) for v in versions}


def crd_changes(old: Any, new: Any, raw: list[Raw]) -> list[FieldChange]:
    """A CRD change in reviewable terms: versions served and stored, schema fields added or removed, anything else
    outside the schemas as ordinary field changes (descriptions, which make most of an upstream bump, are left out)."""
    out: list[FieldChange] = []
    a, b = _crd_versions(old), _crd_versions(new)
    for name in sorted(set(a) | set(b), key=str):
        if name not in a:
            out.append(FieldChange("added", f"version {name}", None, "served" if b[name][0] else "not served"))
            continue
        if name not in b:
            out.append(FieldChange("removed", f"version {name}", "served" if a[name][0] else "not served", None))
            continue
        for i, what in ((0, "served"), (1, "storage")):
            if a[name][i] != b[name][i]:
                out.append(FieldChange("changed", f"version {name} {what}", a[name][i], b[name][i]))
        gained, lost = sorted(b[name][2] - a[name][2]), sorted(a[name][2] - b[name][2])
        if gained:
            out.append(FieldChange("added", f"version {name} schema fields", None, ", ".join(gained)))
        if lost:
            out.append(FieldChange("removed", f"version {name} schema fields", ", ".join(lost), None))
    constraints: dict[str, set[str]] = {}
    names = [v.get("name") for v in ((new or {}).get("spec") or {}).get("versions") or []]
    for _, parts, _, _ in raw:
        if len(parts) > 5 and parts[:2] == ("spec", "versions") and parts[3] == "schema" and "description" not in parts:
            version = names[parts[2]] if isinstance(parts[2], int) and parts[2] < len(names) else parts[2]
            tail = parts[5:]
            where = ".".join(str(tail[i + 1]) for i, p in enumerate(tail[:-1]) if p == "properties")
            last = str(tail[-1])
            if last != "properties" and not (len(tail) >= 2 and tail[-2] == "properties"):
                constraints.setdefault(str(version), set()).add(f"{where or '(root)'} {last}")
    for name, what in sorted(constraints.items()):
        shown = sorted(what)
        out.append(FieldChange("changed", f"version {name} schema constraints", None,
                               ", ".join(shown[:8]) + (f" and {len(shown) - 8} more" if len(shown) > 8 else "")))
    rest = [r for r in raw if not (len(r[1]) >= 3 and r[1][:2] == ("spec", "versions")
                                   and any(p in ("schema", "served", "storage", "name") for p in r[1][3:4]))]
    described = [r for r in rest if "description" not in r[1]]
    return out + _field_changes(described, "CustomResourceDefinition")


def _field_changes(raw: list[Raw], kind: str) -> list[FieldChange]:
    return [FieldChange(op, format_path(parts), redact(old, parts, kind), redact(new, parts, kind), is_noise(parts))
            for op, parts, old, new in raw]


def compare(base: Snapshot, head: Snapshot, *, keep_noise: bool = False) -> Report:
    """Everything that differs between two snapshots, as object changes, model-level summary lines and dangers."""
    old_side, new_side = _Side(base), _Side(head)
    paths = sorted(set(base.files) | set(head.files))
    changed = {p for p in paths if base.files.get(p) != head.files.get(p)}
    skips = {p: _equal_documents(base.files.get(p), head.files.get(p)) for p in changed}
    # A changed Application may move its objects to another namespace: re-key all of its manifests.
    for p in list(changed):
        place = _place(p)
        if place.role == "apps":
            mp = _manifest_path(place.env, place.app)
            if mp in base.files or mp in head.files:
                changed.add(mp)
                skips.pop(mp, None)
    ordered = sorted(changed)
    old_objs, new_objs = _collect(old_side, ordered, skips), _collect(new_side, ordered, skips)
    hydrated = {(pl.env, pl.app) for pl in map(_place, paths) if pl.role == "manifests"}

    removed = {k: v for k, v in old_objs.items() if k not in new_objs}
    added = {k: v for k, v in new_objs.items() if k not in old_objs}
    moves = _pair_moves(removed, added)
    for o, n, _ in moves:
        removed.pop(o)
        added.pop(n)

    objects: list[ObjectChange] = []
    danger_input = []
    for key in sorted(old_objs.keys() & new_objs.keys()):
        raw = diff_values(old_objs[key], new_objs[key])
        if raw:
            fields = (crd_changes(old_objs[key], new_objs[key], raw) if key.kind == "CustomResourceDefinition"
                      else _field_changes(raw, key.kind))
            objects.append(ObjectChange("changed", key, None, fields))
            danger_input.append(("changed", key, old_objs[key], key, new_objs[key], raw))
    for o, n, score in moves:
        raw = [r for r in diff_values(old_objs[o], new_objs[n]) if r[1] != ("metadata", "name")]
        objects.append(ObjectChange("renamed", n, o, _field_changes(raw, n.kind), round(score, 3)))
        danger_input.append(("renamed", o, old_objs[o], n, new_objs[n], raw))
    for key, doc in removed.items():
        objects.append(ObjectChange("removed", key, doc=redact(doc, (), key.kind)))
        danger_input.append(("removed", key, doc, None, None, []))
    for key, doc in added.items():
        objects.append(ObjectChange("added", key, doc=redact(doc, (), key.kind)))
        danger_input.append(("added", None, None, key, doc, []))
    for obj in objects:
        obj.shown = not (obj.key.kind == VALUES_KIND and (obj.key.env, obj.key.app) in hydrated)
    objects.sort(key=lambda o: (o.key.env == "", o.key.env, o.key.app, o.key.kind == VALUES_KIND, o.key.kind,
                                o.key.namespace, o.key.name, o.op))

    places = [pl for pl in map(_place, paths) if pl.env]
    envs = {pl.env for pl in places}
    present = {(pl.env, pl.app) for pl in places if pl.role in ("values", "manifests")}
    summary = _hand_applies(base, head) + _summary(old_objs, new_objs, moves, envs, present)
    return Report(base.label, head.label, summary, objects,
                  _environments_removed(base, head) + _dangers(danger_input), keep_noise, _restarts(danger_input, new_side))


HAND_APPLIED = ("root.yaml", "argocd-cm.yaml")  # the bootstrap Argo CD does not sync (argocd/README.md)


def _hand_applies(base: Snapshot, head: Snapshot) -> list[str]:
    """`apply by hand: kubectl apply -n argocd -f argocd/prod/root.yaml` for each object of the bootstrap that no
    Application syncs (the root Applications, and argocd-cm, which the environments of one Argo CD share) and that
    the change adds or alters. By object, not by file: one moved to another path as it was, or written the same by
    several environments, needs nothing."""
    def objects(snap: Snapshot) -> dict[tuple[str, str, str], tuple[str, Any]]:
        out: dict[tuple[str, str, str], tuple[str, Any]] = {}
        for path in sorted(snap.files):
            parts = path.split("/")
            if parts[0] != "argocd" or parts[-1] not in HAND_APPLIED or len(parts) > 3:
                continue
            for doc in yamlio.load_all(snap.files[path].decode("utf-8")):
                meta = (doc or {}).get("metadata") or {}
                key = (str((doc or {}).get("kind", "")), str(meta.get("namespace") or "argocd"), str(meta.get("name", "")))
                out.setdefault(key, (path, doc))
        return out
    old, new = objects(base), objects(head)
    lines = []
    for key, (path, doc) in sorted(new.items(), key=lambda item: item[1][0]):
        if key not in old or old[key][1] != doc:
            lines.append(f"apply by hand: kubectl apply -n {key[1]} -f {path} (Argo CD does not sync it)")
    for key, (path, _) in sorted(old.items(), key=lambda item: item[1][0]):
        if key not in new:
            lines.append(f"apply by hand: {key[0]} {key[1]}/{key[2]} ({path}) is no longer rendered: it stays in the "
                         "cluster until deleted by hand (Argo CD does not sync it)")
    return lines


def _environments_removed(base: Snapshot, head: Snapshot) -> list[Danger]:
    """An environment whose whole tree is gone: the root Application (applied by hand) prunes every Application of
    it, and their resources finalizers delete everything they deployed."""
    def apps(snap: Snapshot) -> dict[str, int]:
        out: dict[str, int] = {}
        for pl in map(_place, snap.files):
            if pl.env:
                out[pl.env] = out.get(pl.env, 0) + (pl.role == "apps")
        return out
    # An environment is a tree under rendered/<env>/ with its bootstrap under argocd/<env>/.
    bootstrapped = {p.split("/")[1] for p in base.files if p.startswith("argocd/") and p.count("/") >= 2}
    old, new = {e: n for e, n in apps(base).items() if e in bootstrapped}, apps(head)
    return [Danger("environment-removed", env, f"{env}: environment removed: its root Application (applied by hand "
                                               f"from argocd/{env}/root.yaml) loses rendered/{env}/apps; deleting it "
                                               f"deletes its {n} Application{'s' if n != 1 else ''} and, through their "
                                               "resources finalizers, everything they deployed")
            for env, n in sorted(old.items()) if env not in new]


def _restarts(pairs: list[tuple[str, Key | None, Any, Key | None, Any, list[Raw]]], side: _Side) -> list[Restart]:
    """Changed workloads whose pod template changed: their pods are replaced at sync, even when the change is one
    the field list hides as noise (a checksum of a ConfigMap, a chart label). How many: spec.replicas, else the
    minReplicas of the HorizontalPodAutoscaler that scales it (the generator leaves replicas out then), else 1."""
    def autoscaled(key: Key) -> int:
        """The minReplicas of an HPA of the same app that targets it (its file read whole: it may be unchanged)."""
        for _, doc in side.docs(_manifest_path(key.env, key.app)):
            spec = (doc.get("spec") or {}) if isinstance(doc, dict) and doc.get("kind") == "HorizontalPodAutoscaler" else {}
            target = spec.get("scaleTargetRef") or {}
            if (target.get("kind"), target.get("name")) == (key.kind, key.name):
                return spec.get("minReplicas", 1)
        return 1

    out = []
    for op, _, _, key, new, raw in pairs:
        if op != "changed" or key.kind not in _ROLLING_KINDS or not isinstance(new, dict):
            continue
        if any(parts[:2] == ("spec", "template") for _, parts, _, _ in raw):
            spec = new.get("spec") or {}
            replicas = spec["replicas"] if "replicas" in spec else autoscaled(key)
            out.append(Restart(key, None if key.kind == "DaemonSet" else (replicas if isinstance(replicas, int) else 1)))
    return sorted(out, key=lambda r: r.key)


def _reach(item: str, places: list[tuple[str, str]], envs: set[str], present: set[tuple[str, str]]) -> str:
    """`waste (every environment): item` when the change reaches the app in every environment; else the env/app
    pairs it reaches, and the environments that have those apps but do not get it (`(not in dev)`)."""
    if len(envs) <= 1:
        return f"{', '.join(app for _, app in places)}: {item}"
    by_app: dict[str, set[str]] = {}
    for env, app in places:
        by_app.setdefault(app, set()).add(env)
    if all(got == envs for got in by_app.values()):
        return f"{', '.join(by_app)} (every environment): {item}"
    missing = sorted({e for app, got in by_app.items() for e in envs - got if (e, app) in present})
    shown = ", ".join(f"{env}/{app}" if env else app for env, app in places)
    return f"{shown}: {item}" + (f" (not in {', '.join(missing)})" if missing else "")


def _summary(old_objs: dict[Key, Any], new_objs: dict[Key, Any], moves: list[tuple[Key, Key, float]],
             envs: set[str], present: set[tuple[str, str]] = frozenset()) -> list[str]:
    """Model-level lines, per app (prefixed env/app when the tree has several environments, or `(every
    environment)`), then Applications. `present`: the (env, app) pairs either side renders."""
    per_app: dict[tuple[str, str], list[str]] = {}
    for key in sorted(old_objs.keys() & new_objs.keys()):
        old, new = old_objs[key], new_objs[key]
        if key.kind == VALUES_KIND and isinstance(old, dict) and isinstance(new, dict):
            per_app.setdefault((key.env, key.app), []).extend(_model_lines(old, new, diff_values(old, new)))
        elif key.kind == "Application" and _is_argo(key) and isinstance(old, dict) and isinstance(new, dict):
            per_app.setdefault((key.env, key.app), []).extend(_application_lines(old, new))
    # One model change often reaches several apps (a default canary step, a shared setting): say it once.
    where: dict[str, list[tuple[str, str]]] = {}
    for (env, app), items in sorted(per_app.items()):
        for item in items:
            where.setdefault(item, []).append((env, app))
    lines = [_reach(item, places, envs, present) for item, places in where.items()]

    def apps(keys: Iterable[Key]) -> list[str]:
        return sorted(k.name if len(envs) <= 1 else k.group for k in keys
                      if k.kind == "Application" and _is_argo(k))
    moved_old = {o for o, _, _ in moves}
    moved_new = {n for _, n, _ in moves}
    gone = apps(k for k in old_objs if k not in new_objs and k not in moved_old)
    came = apps(k for k in new_objs if k not in old_objs and k not in moved_new)
    renamed = [f"{o.name} → {n.name}" for o, n, _ in moves if o.kind == "Application" and o.name != n.name]
    if gone or came or renamed:
        line = (f"{len(came)} Application{'s' if len(came) != 1 else ''} added"
                f"{' (' + ', '.join(came) + ')' if came else ''}, {len(gone)} removed"
                f"{' (' + ', '.join(gone) + ')' if gone else ''}")
        if renamed:
            line += f", {len(renamed)} renamed ({', '.join(renamed)})"
        lines.append(line)
    return lines


# -------------------------------------------------------------------------------------------------------- rendering


def _show(value: Any, limit: int = 240) -> str:
    """A value on one line: plain when unambiguous (v0.6.1, 30), quoted when it could be misread ('30')."""
    if value == REDACTED:
        return REDACTED
    if isinstance(value, str):
        text = value if _PLAIN_VALUE.match(value) and not _LOOKS_TYPED.match(value) else json.dumps(value, ensure_ascii=False)
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    elif value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return text if len(text) <= limit else text[:limit] + f"… (+{len(text) - limit} chars)"


def _field_lines(change: FieldChange) -> list[str]:
    if change.op == "added":
        return [f"+ {change.path}: {_show(change.new)}"]
    if change.op == "removed":
        return [f"- {change.path}: {_show(change.old)}"]
    old, new = change.old, change.new
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        body = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1))[2:]
        return [f"~ {change.path}: (text)"] + [f"    {line}" for line in body]
    return [f"~ {change.path}: {_show(old)} → {_show(new)}"]


def _object_lines(obj: ObjectChange, fields: list[FieldChange]) -> list[str]:
    if obj.op == "added":
        head = f"+ {obj.key.label} added"
    elif obj.op == "removed":
        head = f"- {obj.key.label} removed"
    elif obj.op == "renamed":
        old = obj.old_key
        if old.name != obj.key.name:
            head = f"→ {old.label} renamed to {obj.key.name} ({obj.similarity:.0%} the same)"
        else:
            head = f"→ {obj.key.label} moved {old.api_version} → {obj.key.api_version}"
    else:
        head = f"~ {obj.key.label}"
    out = [head]
    for change in fields:
        out += ["    " + line for line in _field_lines(change)]
    if obj.op in ("added", "removed") and isinstance(obj.doc, dict):
        out += _whole_object(obj.doc, "+" if obj.op == "added" else "-")
    return out


WHOLE_OBJECT_LINES = 40  # of an added or removed object's YAML; a CRD's schema would bury the rest


def _whole_object(doc: dict[str, Any], sign: str) -> list[str]:
    """What an added object will be or a removed one was, as YAML lines under it, cut after WHOLE_OBJECT_LINES."""
    lines = yamlio.dump(doc).splitlines()
    shown = [f"    {sign} {line}" for line in lines[:WHOLE_OBJECT_LINES]]
    if len(lines) > WHOLE_OBJECT_LINES:
        shown.append(f"    {sign} … ({len(lines) - WHOLE_OBJECT_LINES} more lines)")
    return shown


def _count(report: Report, obj: ObjectChange) -> int:
    return len(report.fields_of(obj)) + (1 if obj.op != "changed" else 0)


def _groups(report: Report) -> list[tuple[str, list[ObjectChange]]]:
    groups: dict[str, list[ObjectChange]] = {}
    for obj in report.shown_objects():
        groups.setdefault(obj.key.group, []).append(obj)
    return list(groups.items())


def _totals(report: Report) -> str:
    ops = [o.op for o in report.shown_objects()]
    text = (f"{report.base} → {report.head}: {ops.count('changed')} changed, {ops.count('added')} added, "
            f"{ops.count('removed')} removed, {ops.count('renamed')} renamed, {len(report.restarts)} "
            f"restart{'s' if len(report.restarts) != 1 else ''}")
    if report.hidden_noise:
        text += f"; {report.hidden_noise} noise change{'s' if report.hidden_noise != 1 else ''} hidden (--all shows them)"
    return text


def _plan(objs: Iterable[ObjectChange], restarts: Iterable[Restart]) -> str:
    """Like a plan: what the sync does to objects in the cluster (a rename deletes one and creates another; Helm
    values are no cluster object), and how many workloads restart."""
    add = change = destroy = 0
    for o in objs:
        if o.key.kind == VALUES_KIND:
            continue
        add += o.op in ("added", "renamed")
        destroy += o.op in ("removed", "renamed")
        change += o.op == "changed"
    n = len(list(restarts))
    return f"{add} to add, {change} to change, {destroy} to destroy, {n} restart{'s' if n != 1 else ''}"


def _plans(report: Report) -> list[str]:
    """One plan line per environment, then the argocd/ bootstrap, first in the output."""
    envs = sorted({o.key.env for o in report.objects}, key=lambda e: (e == "", e))
    return [f"plan: {env or 'bootstrap (argocd/)'}: "
            + _plan([o for o in report.objects if o.key.env == env], [r for r in report.restarts if r.key.env == env])
            for env in envs]


def _group_plan(report: Report, group: str) -> str:
    return _plan([o for o in report.objects if o.key.group == group], [r for r in report.restarts if r.group == group])


def _danger_intro(report: Report, acknowledged: bool) -> str:
    n = len(report.dangers)
    what = f"{n} dangerous change{'s' if n != 1 else ''}"
    return f"{what} (acknowledged with --ack-danger)" if acknowledged else f"{what}: exit 3 unless acknowledged with --ack-danger"


def render_text(report: Report, *, acknowledged: bool = False, color: bool = False) -> str:
    """Terminal output: summary, danger, then every changed object with its field-level changes, per app."""
    def style(text: str, **kw: Any) -> str:
        return click.style(text, **kw) if color else text

    lines: list[str] = []
    if not report.objects:
        return f"no changes between {report.base} and {report.head}\n"
    lines += [style(line, bold=True) for line in _plans(report)] + [""]
    lines += report.summary or ["no change in model terms (see the objects below)"]
    if report.dangers:
        lines += ["", style(f"DANGER: {_danger_intro(report, acknowledged)}", fg="red", bold=True)]
        lines += [style(f"  !! {d.message}", fg="red") for d in report.dangers]
    if report.restarts:
        lines += ["", style("RESTARTS at sync (pod template changed):", fg="yellow", bold=True)]
        lines += [style(f"  {'!' if r.only_pod else '~'} {r.message}", fg="yellow" if r.only_pod else None)
                  for r in report.restarts]
    for group, objs in _groups(report):
        lines += ["", style(group, bold=True) + f"  ({_group_plan(report, group)})"]
        for obj in objs:
            lines += ["  " + line for line in _object_lines(obj, report.fields_of(obj))]
    lines += ["", _totals(report)]
    return "\n".join(lines) + "\n"


def _fence(body: list[str]) -> str:
    longest = max((len(m) for line in body for m in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


def _md_escape(text: str) -> str:
    return re.sub(r"([\\`*_<>\[\]|])", r"\\\1", text)


def _markdown_pieces(report: Report, acknowledged: bool, title: str) -> tuple[list[str], list[tuple], list[str]]:
    """The comment's head (title, plans, summary, dangers, restarts), its sections per app as (opening, body lines
    with the changes each stands for, closing, changes), and its foot."""
    head = [title, ""] + [f"**{_md_escape(line)}**  " for line in _plans(report)] + ["", "**Summary**", ""]
    summary = report.summary or ["no change in model terms (see the objects below)"]
    head += [f"- {_md_escape(s)}" for s in summary[:200]]
    if len(summary) > 200:
        head.append(f"- … and {len(summary) - 200} more")
    if report.dangers:
        intro = _danger_intro(report, acknowledged).replace("--ack-danger", "`--ack-danger`")
        head += ["", "> [!CAUTION]", f"> **Danger: {intro}**", ">"]
        head += [f"> - {_md_escape(d.message)}" for d in report.dangers[:200]]
        if len(report.dangers) > 200:
            head.append(f"> - … and {len(report.dangers) - 200} more")
    if report.restarts:
        only = [r for r in report.restarts if r.only_pod]
        head += ["", "> [!WARNING]" if only else "> [!NOTE]", "> **Restarts at sync** (pod template changed):", ">"]
        head += [f"> - {_md_escape(r.message)}" for r in report.restarts[:200]]
        if len(report.restarts) > 200:
            head.append(f"> - … and {len(report.restarts) - 200} more")
    head.append("")
    foot = [_md_escape(_totals(report)).replace("--all", "`--all`")]

    sections = []
    for group, objs in _groups(report):
        # (line, changes it stands for): a cut is then counted exactly.
        body = []
        for obj in objs:
            fields = report.fields_of(obj)
            lines = _object_lines(obj, fields)
            body.append((lines[0], 1 if obj.op != "changed" else 0))
            per_field = iter(fields)
            for line in lines[1:]:
                starts_field = line.startswith("    ") and not line.startswith("        ")
                body.append((line, 1 if starts_field and next(per_field, None) is not None else 0))
        n = sum(c for _, c in body)
        fence = _fence([line for line, _ in body])
        opening = f"<details><summary>{_md_escape(group)} ({n} change{'s' if n != 1 else ''})</summary>\n\n{fence}diff"
        sections.append((opening, body, f"{fence}\n</details>", n))
    return head, sections, foot


def _title(report: Report) -> str:
    return f"### Rendered diff: `{report.base}` → `{report.head}`"


def render_markdown(report: Report, *, acknowledged: bool = False, limit: int = GITHUB_COMMENT_LIMIT,
                    command: str | None = None) -> str:
    """A PR comment: summary, a danger block, one collapsible section per app; cut to stay under `limit` characters."""
    command = command or f"make diff BASE={report.base}"
    if not report.objects:
        return f"{_title(report)}\n\nNo changes.\n"
    head, sections, foot = _markdown_pieces(report, acknowledged, _title(report))
    text = "\n".join(head)
    full = [f"{o}\n" + "\n".join(line for line, _ in b) + f"\n{c}\n" for o, b, c, _ in sections]
    footer = "\n".join(foot) + "\n"
    if len(text) + sum(len(s) + 1 for s in full) + len(footer) + 1 <= limit:
        return text + "\n" + "\n".join(full) + "\n" + footer

    # Too long for one comment: whole sections while they fit, then as many lines of the next as fit, then a note.
    reserve = len(footer) + 700
    out = [text]
    used = len(text) + 1
    left_changes = left_chars = left_apps = 0
    cut = False
    for (opening, body, closing, n), rendered in zip(sections, full):
        if not cut and used + len(rendered) + 1 + reserve <= limit:
            out.append(rendered)
            used += len(rendered) + 1
            continue
        if not cut:
            cut = True
            room = limit - reserve - used - len(opening) - len(closing) - 12
            kept = 0
            while kept < len(body) and room - len(body[kept][0]) - 1 >= 0:
                room -= len(body[kept][0]) + 1
                kept += 1
            if kept:
                partial = f"{opening}\n" + "\n".join([line for line, _ in body[:kept]] + ["… (cut)"]) + f"\n{closing}\n"
                out.append(partial)
                used += len(partial) + 1
                left_chars += len(rendered) - len(partial)
                left_changes += sum(c for _, c in body[kept:])
                continue
        left_apps += 1
        left_changes += n
        left_chars += len(rendered)
    note = (f"\n> [!NOTE]\n> ✂️ Cut to stay under GitHub's {limit:,}-character comment limit: about {left_chars:,} "
            f"characters ({left_changes:,} changes in {left_apps} more app{'s' if left_apps != 1 else ''} and the cut "
            f"section) are not shown. Run `{command}` to see everything.\n")
    return "\n".join(out) + note + footer


PART_SEPARATOR = "<!-- eco2-gitops-diff: next part -->"  # between the comments of a diff too long for one
PART_LIMIT = 60_000  # per comment: GitHub's 65,536 less room for the workflow's marker and heading


def render_markdown_parts(report: Report, *, acknowledged: bool = False, limit: int = PART_LIMIT,
                          command: str | None = None) -> list[str]:
    """The PR comment as parts, each under `limit` characters, nothing cut: the head and whole app sections while
    they fit, then `(part k/n)` comments with the next sections; an app too large for one comment continues in the
    next (`… continued`). The totals close the last part."""
    one = render_markdown(report, acknowledged=acknowledged, limit=limit, command=command)
    if not report.objects or "✂️ Cut to stay under" not in one:
        return [one]
    head, sections, foot = _markdown_pieces(report, acknowledged, "")
    footer = "\n".join(foot) + "\n"
    title_room = len(_title(report)) + 24  # " (part 10/12)" and the blank line
    room = limit - title_room - len(footer) - 2
    chunks: list[list[str]] = [["\n".join(head[2:])]]  # without the title and its blank line: each part has its own
    used = len(chunks[0][0]) + 1

    def add(text: str) -> None:
        nonlocal used
        if used + len(text) + 1 > room and chunks[-1]:
            chunks.append([])
            used = 0
        chunks[-1].append(text)
        used += len(text) + 1

    for opening, body, closing, _ in sections:
        whole = f"{opening}\n" + "\n".join(line for line, _ in body) + f"\n{closing}\n"
        if len(whole) + 1 <= room:
            add(whole)
            continue
        piece: list[str] = []  # an app larger than a comment: its lines over several sections, each closed
        size = len(opening) + len(closing) + 40
        for line, _ in body:
            if piece and size + len(line) + 1 > room - 100:
                add(f"{opening}\n" + "\n".join(piece + ["… continued in the next part"]) + f"\n{closing}\n")
                piece, size = [], len(opening) + len(closing) + 40
                opening = opening.replace("</summary>", " (continued)</summary>", 1) if "(continued)" not in opening else opening
            piece.append(line[: room - 200])
            size += len(piece[-1]) + 1
        add(f"{opening}\n" + "\n".join(piece) + f"\n{closing}\n")
    total = len(chunks)
    out = []
    for k, chunk in enumerate(chunks, 1):
        text = f"{_title(report)} (part {k}/{total})\n\n" + "\n".join(chunk)
        out.append(text + ("\n" + footer if k == total else ""))
    return out
