"""The rules that make a change dangerous (data lost, objects Argo CD deletes, syncs that fail, projects narrowed),
the workloads a change replaces, the environments removed whole, and the workloads whose pods restart at sync."""

from __future__ import annotations

import fnmatch
from decimal import Decimal
from typing import Any

from ..layout import BOOTSTRAP
from ..quantity import kubernetes_quantity
from .fields import Raw, _json_container, _name_of, format_path
from .objects import VALUES_KIND, Key, _manifest_path, _place, _Side
from .report import Danger, Restart
from .snapshot import Snapshot


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
    bootstrapped = {p.split("/")[1] for p in base.files if p.startswith(f"{BOOTSTRAP}/") and p.count("/") >= 2}
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
