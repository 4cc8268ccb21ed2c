"""Effective values derived from the model: components, placement, delivery policy, pod counts.

Shared by the checks and the renderers so both reason about the same numbers. Defensive about
dangling references (checks run on models that may still have them) and free of I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Union

from .. import kinds
from ..capability import CRD, INGRESS_CLASS, METRICS_API, RESOURCE_METRICS, STORAGE_CLASS, Capability  # noqa: F401
from ..model.model import ApiService, CanaryPolicy, Model, Node, RollingPolicy, Storage, Toleration, Worker

# Kinds of component with a section of their own (services, workers, platform); the kinds of infra and controller
# component are in generator/kinds/, one module each (kinds.of(comp.kind)).
API, WORKER, PLATFORM = "api", "worker", "platform"
MONITORING_KINDS = ("monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule")
ROLLOUT_KINDS = ("argoproj.io/v1alpha1/Rollout", "argoproj.io/v1alpha1/AnalysisTemplate")


@dataclass(frozen=True)
class Component:
    """Anything that becomes one Argo CD Application."""

    name: str
    kind: str
    loc: tuple  # where it is defined in the model
    namespace: str | None
    project: str
    spec: object  # the model object (None for the platform app)

    @property
    def stateful(self) -> bool:
        """Holds data or cluster-wide state: deleting its Application must not delete its resources."""
        kind = kinds.of(self.kind)
        return kind.stateful if kind else self.kind == PLATFORM

    @property
    def upstream(self) -> bool:
        kind = kinds.of(self.kind)
        return kind is not None and kind.upstream


# Facts derived from the whole model are computed once per model object: the model is frozen, so they cannot
# go stale. Keyed by id() with the model held, so an id is never reused while its entry lives.
_DERIVED: dict[int, tuple[Model, dict[str, object]]] = {}


def _once(fn):
    name = fn.__name__

    def wrapper(model: Model):
        entry = _DERIVED.get(id(model))
        if entry is None or entry[0] is not model:
            if len(_DERIVED) >= 16:
                _DERIVED.pop(next(iter(_DERIVED)))
            entry = _DERIVED[id(model)] = (model, {})
        cache = entry[1]
        if name not in cache:
            cache[name] = fn(model)
        return cache[name]
    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


def components(model: Model) -> list[Component]:
    """Every component, in model order: platform, controllers, infra, workers, services."""
    return list(_components(model))


@_once
def _components(model: Model) -> tuple[Component, ...]:
    out = [Component(model.platform.app, PLATFORM, ("platform", "app"), None, model.platform.project, None)]
    for name, ctl in model.platform.controllers.items():
        out.append(Component(name, ctl.type, ("platform", "controllers", name), ctl.namespace, ctl.project, ctl))
    for name, infra in model.infra.items():
        out.append(Component(name, infra.type, ("infra", name), infra.namespace, infra.project, infra))
    for name, worker in model.workers.items():
        out.append(Component(name, WORKER, ("workers", name), worker.namespace, worker.project, worker))
    for name, svc in model.services.items():
        out.append(Component(name, API, ("services", name), svc.namespace, svc.project, svc))
    return tuple(out)


def by_name(model: Model) -> dict[str, Component]:
    return dict(_by_name(model))


@_once
def _by_name(model: Model) -> dict[str, Component]:
    out: dict[str, Component] = {}
    for comp in _components(model):
        out.setdefault(comp.name, comp)
    return out


def of_kind(model: Model, kind: str) -> list[Component]:
    return [c for c in components(model) if c.kind == kind]


def namespaces(model: Model, comp: Component) -> set[str]:
    """Every namespace the component's Application writes objects into."""
    out = {comp.namespace or model.platform.destination_namespace}
    if comp.kind == PLATFORM:
        out |= set(model.platform.namespaces)  # it writes a NetworkPolicy into each
    kind = kinds.of(comp.kind)
    if kind is not None:
        out |= kind.namespaces(comp.spec)
    return out


# ---------------------------------------------------------------- capabilities


def storages(comp: Component) -> list[tuple[tuple, Storage]]:
    """(loc, storage) of every volume the component's model asks for."""
    spec, loc = comp.spec, comp.loc
    if isinstance(spec, Worker):
        return [(loc + ("wal", "storage"), spec.wal.storage)]
    kind = kinds.of(comp.kind)
    return kind.storages(spec, loc) if kind else []


def provides(model: Model, comp: Component) -> list[Capability]:
    """What a component makes available to the rest of the cluster."""
    kind = kinds.of(comp.kind)
    if kind is None:
        return []
    return [(CRD, k) for k in kind.api_kinds] + kind.provides(model, comp.spec)


def external(model: Model) -> dict[Capability, str]:
    """Capabilities the model says the cluster has from elsewhere, with who provides each."""
    ext = model.platform.external
    out: dict[Capability, str] = {(CRD, k): who for k, who in ext.api_versions.items()}
    out |= {(STORAGE_CLASS, k): who for k, who in ext.storage_classes.items()}
    out |= {(INGRESS_CLASS, k): who for k, who in ext.ingress_classes.items()}
    if ext.metrics_api:
        out[(METRICS_API, RESOURCE_METRICS)] = ext.metrics_api
    return out


def providers(model: Model) -> dict[Capability, list[str]]:
    """Capability -> the components that provide it (a well-formed model has exactly one, or an external one)."""
    return {cap: list(names) for cap, names in _providers(model).items()}


@_once
def _providers(model: Model) -> dict[Capability, list[str]]:
    out: dict[Capability, list[str]] = {}
    for comp in components(model):
        for cap in provides(model, comp):
            out.setdefault(cap, []).append(comp.name)
    return out


def needs(model: Model, comp: Component) -> list[tuple[Capability, tuple]]:
    """(capability, model loc that asks for it) for everything the component's objects use from elsewhere."""
    out: list[tuple[Capability, tuple]] = []
    kind = kinds.of(comp.kind)
    if comp.kind in (API, WORKER) or kind is not None and kind.monitored:  # a local chart's ServiceMonitor and rules
        out += [((CRD, k), comp.loc) for k in MONITORING_KINDS]
    out += [((STORAGE_CLASS, s.storage_class), loc + ("storageClass",)) for loc, s in storages(comp)]
    if isinstance(comp.spec, ApiService):
        svc = comp.spec
        if svc.path is not None:
            out.append(((INGRESS_CLASS, model.platform.ingress.class_name), comp.loc + ("path",)))
        if svc.hpa is not None:
            out.append(((METRICS_API, RESOURCE_METRICS), comp.loc + ("hpa",)))
        if isinstance(delivery(model, svc), CanaryPolicy):
            out += [((CRD, k), comp.loc + ("delivery",)) for k in ROLLOUT_KINDS]
    return out


def api_versions(model: Model) -> list[str]:
    return list(_api_versions(model))


@_once
def _api_versions(model: Model) -> list[str]:
    """What `helm template --api-versions` gets beyond helm's built-in kinds: every custom kind the cluster serves
    (from its components and from outside), as group/version and group/version/Kind, the way Argo CD passes them."""
    kinds = {name for what, name in [*(c for comp in components(model) for c in provides(model, comp)), *external(model)]
             if what == CRD}
    return sorted(kinds | {k.rsplit("/", 1)[0] for k in kinds})


def dependencies(model: Model, comp: Component) -> list[tuple[str, str]]:
    """(dependency, why) pairs: declared dependsOn plus implied ones (namespaces, capability providers)."""
    deps: dict[str, str] = {}
    if comp.kind != PLATFORM:
        deps[model.platform.app] = "creates its namespace"
    found = _providers(model)
    wanted: dict[str, set[str]] = {}
    for (what, name), _ in needs(model, comp):
        for provider in found.get((what, name), []):
            if provider != comp.name:
                wanted.setdefault(provider, set()).add(f"{what} {name}" if what != CRD else name.rsplit("/", 1)[-1])
    for provider, what in wanted.items():
        deps[provider] = f"provides {', '.join(sorted(what))}"
    for dep in getattr(comp.spec, "depends_on", []):
        deps.setdefault(dep, "declared in dependsOn")
    return sorted(deps.items())


# ---------------------------------------------------------------- placement


def node_of(model: Model, placement) -> Node | None:
    return model.nodes.get(placement.node)


def node_selector(model: Model, placement) -> dict[str, str]:
    if placement.node_selector is not None:
        return dict(placement.node_selector)
    node = node_of(model, placement)
    return dict(node.labels) if node else {}


def tolerations(model: Model, placement) -> list[Toleration]:
    """Given ones, or exactly the node's NoSchedule/NoExecute taints."""
    if placement.tolerations is not None:
        return list(placement.tolerations)
    node = node_of(model, placement)
    out = []
    for taint in node.taints if node else []:
        if taint.effect == "PreferNoSchedule":
            continue
        if taint.value is None:
            out.append(Toleration(key=taint.key, operator="Exists", effect=taint.effect))
        else:
            out.append(Toleration(key=taint.key, operator="Equal", value=taint.value, effect=taint.effect))
    return out


def node_labels(name: str, node: Node) -> dict[str, str]:
    """The node's labels as the scheduler sees them: the model's plus those every kubelet sets (all nodes are linux/amd64 EC2)."""
    return {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", **node.labels}


def selects(selector: dict[str, str], node: Node) -> bool:
    return all(node.labels.get(k) == v for k, v in selector.items())


# ---------------------------------------------------------------- delivery


def delivery(model: Model, svc: ApiService) -> Union[RollingPolicy, CanaryPolicy]:
    """The service's policy: the model's default for its strategy with the service's overrides on top."""
    choice = svc.delivery
    base = model.delivery.canary if choice.strategy == "canary" else model.delivery.rolling
    overrides = {k: v for k, v in choice if k != "strategy" and v is not None}
    return base.model_copy(update=overrides)


def surge_pods(value: int | str, replicas: int) -> int:
    """maxSurge as a pod count: percentages round up, as the Deployment controller does."""
    if isinstance(value, int):
        return value
    return math.ceil(int(value.rstrip("%")) * replicas / 100)


def placements(model: Model) -> Iterator[tuple[tuple, object]]:
    """(loc, placement) of every workload placed on a node."""
    for name, svc in model.services.items():
        yield ("services", name, "placement"), svc.placement
    for name, worker in model.workers.items():
        yield ("workers", name, "placement"), worker.placement
    for name, infra in model.infra.items():
        yield ("infra", name, "placement"), infra.placement
    for name, ctl in model.platform.controllers.items():
        yield ("platform", "controllers", name, "placement"), ctl.placement


def workloads(model: Model) -> Iterator[tuple[str, tuple, Union[ApiService, Worker]]]:
    for name, svc in model.services.items():
        yield name, ("services", name), svc
    for name, worker in model.workers.items():
        yield name, ("workers", name), worker
