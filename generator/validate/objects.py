"""The rendered objects of a tree, indexed for cross-object checks: kinds, namespaces, pods, ports."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterator

from .. import layout, memo, yamlio

# Built-in kinds without a namespace (CRDs say their own scope).
CLUSTER_SCOPED = {
    "APIService", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding", "CSIDriver", "CSINode",
    "CustomResourceDefinition", "FlowSchema", "IngressClass", "MutatingWebhookConfiguration", "Namespace", "Node",
    "PersistentVolume", "PriorityClass", "PriorityLevelConfiguration", "RuntimeClass", "StorageClass",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration",
    "VolumeAttachment",
}
# Custom resources an operator turns into pods (prometheus-operator: StatefulSets of Prometheus and Alertmanager).
OPERATOR_PODS = ("Prometheus", "Alertmanager")
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Rollout", "Job", "CronJob", "Pod"}


@dataclass(frozen=True)
class Obj:
    """One document of a generated file, with the app it belongs to and the namespace it lands in."""

    source: str
    index: int
    doc: dict[str, Any]
    app: str | None
    namespace: str  # metadata.namespace, else the Application's destination namespace, else ""

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind", "?"))

    @property
    def name(self) -> str:
        return str((self.doc.get("metadata") or {}).get("name", "?"))

    @property
    def labels(self) -> dict[str, str]:
        return (self.doc.get("metadata") or {}).get("labels") or {}

    @property
    def ref(self) -> str:
        """Kind/namespace/name, the form waivers use."""
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    @property
    def shown(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    def pod(self) -> tuple[dict[str, str], dict[str, Any]] | None:
        """(pod labels, pod spec) of a workload's pod template (for operator resources, of the pods it makes)."""
        spec = self.doc.get("spec") or {}
        if self.kind in OPERATOR_PODS:
            return operator_pod(self.kind, self.name, spec)
        if self.kind == "Pod":
            return self.labels, spec
        if self.kind == "CronJob":
            spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
        if self.kind in POD_KINDS:
            template = spec.get("template") or {}
            return (template.get("metadata") or {}).get("labels") or {}, template.get("spec") or {}
        return None


# prometheus-operator v0.93: the labels it gives the pods of a Prometheus or Alertmanager, and their ports.
_OPERATOR = {
    "Prometheus": ("prometheus", [("web", 9090)]),
    "Alertmanager": ("alertmanager", [("web", 9093), ("tcp-mesh", 9094)]),
}


def operator_pod(kind: str, name: str, spec: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """The pod prometheus-operator creates for a Prometheus or Alertmanager resource (main container and config-reloader)."""
    app, ports = _OPERATOR[kind]
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": name,
              "app.kubernetes.io/managed-by": "prometheus-operator", "operator.prometheus.io/name": name, app: name,
              **(((spec.get("podMetadata") or {}).get("labels")) or {})}
    main = {"name": app, "resources": spec.get("resources") or {}, "ports": [{"name": n, "containerPort": p} for n, p in ports]}
    reloader = {"name": "config-reloader", "ports": [{"name": "reloader-web", "containerPort": 8080}]}
    podspec = {k: spec[k] for k in ("nodeSelector", "tolerations", "affinity", "securityContext") if k in spec}
    podspec["containers"] = [main, reloader]
    return labels, podspec


def matches(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def label_selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels + matchExpressions); an empty selector matches everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def containers(podspec: dict[str, Any], init: bool = True) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(field, index, container) for containers and, optionally, init containers."""
    fields = ("containers", "initContainers") if init else ("containers",)
    for field in fields:
        for i, c in enumerate(podspec.get(field) or []):
            yield field, i, c


class _LabelIndex:
    """Objects by namespace and by (namespace, label key, value), in their original order."""

    def __init__(self, items: list[tuple[Obj, dict[str, str]]]):
        self.order = {id(o): i for i, (o, _) in enumerate(items)}
        self.by_ns: dict[str, list[Obj]] = {}
        self.by_label: dict[tuple[str, str, str], list[Obj]] = {}
        self.all = [o for o, _ in items]
        for o, lbls in items:
            self.by_ns.setdefault(o.namespace, []).append(o)
            for k, v in (lbls or {}).items():
                self.by_label.setdefault((o.namespace, k, str(v)), []).append(o)

    def candidates(self, namespaces: set[str] | None, labels: dict[str, Any]) -> list[Obj]:
        """A superset of what labels select in namespaces: the smallest posting list, or the namespace's objects."""
        if namespaces is None:
            if not labels:
                return self.all
            namespaces = set(self.by_ns)
        found: list[Obj] = []
        for ns in namespaces:
            lists = [self.by_label.get((ns, k, str(v)), []) for k, v in labels.items()]
            found += min(lists, key=len) if lists else self.by_ns.get(ns, [])
        return sorted(found, key=lambda o: self.order[id(o)])


@dataclass
class Index:
    objs: list[Obj]

    @cached_property
    def by_kind(self) -> dict[str, list[Obj]]:
        out: dict[str, list[Obj]] = {}
        for o in self.objs:
            out.setdefault(o.kind, []).append(o)
        return out

    def kind(self, *kinds: str) -> list[Obj]:
        return [o for k in kinds for o in self.by_kind.get(k, [])]

    @cached_property
    def _by_name(self) -> dict[tuple[str, str, str], Obj]:
        out: dict[tuple[str, str, str], Obj] = {}
        for o in self.objs:
            out.setdefault((o.kind, o.namespace, o.name), o)  # the first, as a scan would find it
        return out

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self._by_name.get((kind, namespace, name))

    @cached_property
    def workloads(self) -> list[Obj]:
        return [o for o in self.objs if o.pod() is not None]

    @cached_property
    def by_app(self) -> dict[str | None, list[Obj]]:
        out: dict[str | None, list[Obj]] = {}
        for o in self.objs:
            out.setdefault(o.app, []).append(o)
        return out

    # Selectors are resolved through label indexes: (namespace, key, value) -> objects, so every
    # cross-object check costs the objects a selector could match, not all of them (O(N) in all, not O(N²)).
    @cached_property
    def _pod_labels(self) -> _LabelIndex:
        return _LabelIndex([(w, w.pod()[0]) for w in self.workloads])

    @cached_property
    def _service_labels(self) -> _LabelIndex:
        return _LabelIndex([(s, s.labels) for s in self.kind("Service")])

    def pods_matching(self, namespace: str, selector: dict[str, str]) -> list[Obj]:
        """Workloads in namespace whose pod labels a Service-style map selects (an empty map selects none)."""
        if not selector:
            return []
        return [w for w in self._pod_labels.candidates({namespace}, selector) if matches(selector, w.pod()[0])]

    def pods_selected(self, namespace: str, selector: dict[str, Any] | None) -> list[Obj]:
        """Workloads in namespace whose pod labels a metav1.LabelSelector selects (an empty one selects all)."""
        plain = (selector or {}).get("matchLabels") or {}
        return [w for w in self._pod_labels.candidates({namespace}, plain) if label_selector_matches(selector, w.pod()[0])]

    def services_selected(self, namespaces: set[str] | None, selector: dict[str, Any] | None) -> list[Obj]:
        """Services (in namespaces, or any when None) whose labels a metav1.LabelSelector selects."""
        plain = (selector or {}).get("matchLabels") or {}
        return [s for s in self._service_labels.candidates(namespaces, plain) if label_selector_matches(selector, s.labels)]

    @cached_property
    def namespaces(self) -> set[str]:
        return {o.name for o in self.kind("Namespace")}


def app_of(path: str) -> tuple[str | None, str | None, str | None]:
    """(environment, directory, app) for rendered/<env>/<dir>/<app>.yaml, else Nones."""
    return layout.place(path)


Parsed = dict  # file bytes -> its documents: collects given the same one parse each file once (read-only documents)


def collect(files: dict[str, bytes], shared: Parsed | None = None) -> tuple[list[Obj], list[tuple[str, str]]]:
    """Every Kubernetes object under rendered/ (apps, manifests, nodes) and argocd/; values files are not objects.

    Returns the objects and (file, error) pairs for files that do not parse. `shared` is shared by the collects of
    one environment's run (its review, then its validation): their checks only read the documents.
    """
    destination: dict[tuple[str, str], str] = {}
    parsed: dict[str, list[Any]] = {}
    errors = []
    seen = [(path, data) for path, data in sorted(files.items()) if layout.seen_by_cluster(path)]
    new = yamlio.load_new([data for _, data in seen if shared is None or data not in shared])
    m = memo.active()
    for path, data in seen:
        env, directory, app = app_of(path)
        if directory == "values" and data not in new and m is not None and m.has("load", data):
            continue  # not objects, and it parses (the memo holds its documents): nothing to read here
        docs = shared.get(data) if shared is not None else None
        if docs is None:
            docs = new[data] if data in new else yamlio.documents(data)
            if isinstance(docs, str):  # reported as a finding, not a crash
                errors.append((path, f"does not parse as YAML: {docs}"))
                continue
            if shared is not None:
                shared[data] = docs
        if directory == "values":
            continue  # read for the credential scan, not Kubernetes objects
        parsed[path] = docs
        if directory == "apps":
            for doc in parsed[path]:
                if isinstance(doc, dict) and doc.get("kind") == "Application":
                    ns = ((doc.get("spec") or {}).get("destination") or {}).get("namespace", "")
                    destination[(env, app)] = ns
    cluster_scoped = set(CLUSTER_SCOPED) | {
        ((d.get("spec") or {}).get("names") or {}).get("kind")
        for docs in parsed.values() for d in docs
        if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition" and (d.get("spec") or {}).get("scope") == "Cluster"}
    objs = []
    for path, docs in parsed.items():
        env, directory, app = app_of(path)
        for i, doc in enumerate(docs):
            if not isinstance(doc, dict):
                continue
            ns = (doc.get("metadata") or {}).get("namespace")
            if ns is None and directory in ("manifests", "crds") and doc.get("kind") not in cluster_scoped:
                ns = destination.get((env, app), "")
            objs.append(Obj(path, i, doc, app if directory in ("apps", "manifests", "crds") else None, ns or ""))
    return objs, errors
