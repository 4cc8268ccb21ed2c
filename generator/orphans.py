"""What the model still declares but nothing rendered uses: warnings on `render`, never errors (a node or a Secret
may be kept on purpose, but it should be said).

Read from the hydrated objects, not from the model: a Secret such as the monitoring webhook's is referenced only
by the upstream chart's objects, and a node can be the target of a nodeSelector the model never names.
"""

from __future__ import annotations

from typing import Any, Iterator

from . import capacity
from .errors import Finding
from .model import Model
from .objects import Obj

# Where a pod, a workload or a custom resource names a Secret it reads.
_REF_PARENTS = ("secretKeyRef", "secretRef")  # {name: <secret>, ...}


def _secret_refs(node: Any, parent: str = "") -> Iterator[str]:
    """Names of the Secrets an object reads: volume `secretName`, env `secretKeyRef`/`secretRef` and `envFrom`,
    projected `secret` sources, `imagePullSecrets`, and custom resources' `...Secret: {name}` fields."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "secretName" and isinstance(value, str):
                yield value
            elif key in _REF_PARENTS + ("secret",) and isinstance(value, dict) and isinstance(value.get("name"), str):
                yield value["name"]
            elif key == "imagePullSecrets" and isinstance(value, list):
                yield from (v["name"] for v in value if isinstance(v, dict) and isinstance(v.get("name"), str))
            elif key.endswith("Secret") and isinstance(value, dict) and isinstance(value.get("name"), str):
                yield value["name"]
            yield from _secret_refs(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from _secret_refs(item, parent)


def find(objs: list[Obj], model: Model) -> list[Finding]:
    """Nodes on which only DaemonSets run, and declared Secrets no rendered object reads in a namespace the model
    declares them for."""
    out: list[Finding] = []
    by_node: dict[str, list[capacity.PodLoad]] = {name: [] for name in model.nodes}
    for load in capacity.loads(objs, model):
        by_node.setdefault(load.node, []).append(load)
    for name, loads in by_node.items():
        if name in model.nodes and not [l for l in loads if not l.what.startswith("DaemonSet ")]:
            daemons = ", ".join(sorted(l.what for l in loads)) or "nothing"
            out.append(Finding(("nodes", name), f"no workload runs on this node (only {daemons}): remove it, or "
                                                 "place a workload on it"))
    used: dict[str, set[str]] = {}
    for obj in objs:
        if obj.kind in ("Secret", "ExternalSecret", "SealedSecret"):
            continue
        for secret in _secret_refs(obj.doc.get("spec")):  # a pod's, a workload's template, a custom resource's
            used.setdefault(secret, set()).add(obj.namespace)
    for name, secret in model.secrets.items():
        where = used.get(name, set())
        if not where:
            out.append(Finding(("secrets", name), "declared, but no rendered object reads this Secret: remove it, or "
                                                  "say why it is kept in its description"))
            continue
        for i, ns in enumerate(secret.namespaces):
            if ns not in where:
                out.append(Finding(("secrets", name, "namespaces", i), f"declared for namespace {ns}, where no rendered "
                                                                      "object reads it"))
    return out
