"""What the model still declares but nothing rendered uses: warnings on `render`, never errors (a node or a Secret
may be kept on purpose, but it should be said).

Read from the hydrated objects, not from the model: a Secret such as the monitoring webhook's is referenced only
by the upstream chart's objects, and a node can be the target of a nodeSelector the model never names.
"""

from __future__ import annotations

from typing import Any

from ..errors import Finding
from ..model.model import Model
from . import capacity
from .objects import Obj

# Where a pod, a workload or a custom resource names a Secret it reads.
_REF_KEYS = ("secretKeyRef", "secretRef", "secret")  # {name: <secret>, ...} (`secret`: a projected source)


def _secret_refs(node: Any) -> list[str]:
    """Names of the Secrets an object reads: volume `secretName`, env `secretKeyRef`/`secretRef` and `envFrom`,
    projected `secret` sources, `imagePullSecrets`, and custom resources' `...Secret: {name}` fields.
    (A loop over a stack, not recursive generators: 400,000 nested frames for 1000 services cost a third of the
    review.)"""
    out: list[str] = []
    stack = [node]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "secretName" and isinstance(value, str):
                    out.append(value)
                elif key in _REF_KEYS and isinstance(value, dict) and isinstance(value.get("name"), str):
                    out.append(value["name"])
                elif key == "imagePullSecrets" and isinstance(value, list):
                    out += [v["name"] for v in value if isinstance(v, dict) and isinstance(v.get("name"), str)]
                elif isinstance(key, str) and key.endswith("Secret") and isinstance(value, dict) \
                        and isinstance(value.get("name"), str):
                    out.append(value["name"])
                if isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return out


def find(objs: list[Obj], model: Model, loads: list[capacity.PodLoad] | None = None) -> list[Finding]:
    """Nodes on which only DaemonSets run, and declared Secrets no rendered object reads in a namespace the model
    declares them for (`loads`: capacity.loads of objs, when the caller has them)."""
    out: list[Finding] = []
    by_node: dict[str, list[capacity.PodLoad]] = {name: [] for name in model.nodes}
    for load in capacity.loads(objs, model) if loads is None else loads:
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
        spec = obj.doc.get("spec")
        if "ecret" not in repr(spec):  # every key _secret_refs looks for says so (repr is C, the walk is not)
            continue
        for secret in _secret_refs(spec):  # a pod's, a workload's template, a custom resource's
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
