"""Effective values derived from the model: components, placement, delivery policy, pod counts.

Shared by the checks and the renderers so both reason about the same numbers. Defensive about
dangling references (checks run on models that may still have them) and free of I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Union

from .model import (
    ApiService, AwsEbsCsiDriver, AwsLoadBalancerController, CanaryPolicy, MetricsServer, Model,
    Monitoring, Node, RollingPolicy, StatefulInfra, Storage, Toleration, Worker,
)

# Kinds of component, i.e. which chart renders them.
API, WORKER, PLATFORM = "api", "worker", "platform"
RABBITMQ, POSTGRESQL, REDIS = "rabbitmq", "postgresql", "redis"
KUBE_PROMETHEUS_STACK, ARGO_ROLLOUTS = "kube-prometheus-stack", "argo-rollouts"
AWS_LOAD_BALANCER_CONTROLLER, AWS_EBS_CSI_DRIVER, METRICS_SERVER = (
    "aws-load-balancer-controller", "aws-ebs-csi-driver", "metrics-server")
UPSTREAM_KINDS = (KUBE_PROMETHEUS_STACK, ARGO_ROLLOUTS, AWS_LOAD_BALANCER_CONTROLLER, AWS_EBS_CSI_DRIVER, METRICS_SERVER)
LOCAL_WORKLOADS = (API, WORKER, RABBITMQ, POSTGRESQL, REDIS)


def _kinds(group_version: str, *kinds: str) -> list[str]:
    return [f"{group_version}/{k}" for k in kinds]


# The custom resource kinds (group/version/Kind) each upstream chart installs at its pinned version. Validation
# cross-checks this against the CRDs the chart really hydrates, so a chart bump that adds one cannot go unnoticed.
API_KINDS = {
    KUBE_PROMETHEUS_STACK: _kinds("monitoring.coreos.com/v1", "Alertmanager", "PodMonitor", "Probe", "Prometheus",
                                  "PrometheusRule", "ServiceMonitor", "ThanosRuler")
    + _kinds("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig", "PrometheusAgent", "ScrapeConfig"),
    ARGO_ROLLOUTS: _kinds("argoproj.io/v1alpha1", "AnalysisRun", "AnalysisTemplate", "ClusterAnalysisTemplate",
                          "Experiment", "Rollout"),
    AWS_LOAD_BALANCER_CONTROLLER: _kinds("elbv2.k8s.aws/v1beta1", "ALBTargetControlConfig", "IngressClassParams",
                                         "TargetGroupBinding")
    + _kinds("elbv2.k8s.aws/v1alpha1", "TargetGroupBinding") + _kinds("aga.k8s.aws/v1beta1", "GlobalAccelerator")
    + [k for v in ("v1", "v1beta1") for k in _kinds(f"gateway.k8s.aws/{v}", "ListenerRuleConfiguration",
                                                     "LoadBalancerConfiguration", "TargetGroupConfiguration")],
    # An aggregated API (APIService), not CRDs: what HPAs and `kubectl top` read.
    METRICS_SERVER: _kinds("metrics.k8s.io/v1beta1", "NodeMetrics", "PodMetrics"),
}

# Capabilities: (what, name). What a component's objects use, and what providers offer.
CRD, STORAGE_CLASS, INGRESS_CLASS, METRICS_API = "custom resource", "storage class", "ingress class", "metrics API"
RESOURCE_METRICS = "metrics.k8s.io"
MONITORING_KINDS = ("monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule")
ROLLOUT_KINDS = ("argoproj.io/v1alpha1/Rollout", "argoproj.io/v1alpha1/AnalysisTemplate")
Capability = tuple[str, str]


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
        return self.kind in (RABBITMQ, POSTGRESQL, REDIS, PLATFORM, *UPSTREAM_KINDS)

    @property
    def upstream(self) -> bool:
        return self.kind in UPSTREAM_KINDS


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
    if isinstance(comp.spec, Monitoring):
        out.add(comp.spec.node_exporter.namespace)
        out.add("kube-system")  # the Services that let Prometheus scrape CoreDNS and the kubelets
    return out


# ---------------------------------------------------------------- capabilities


def storages(comp: Component) -> list[tuple[tuple, Storage]]:
    """(loc, storage) of every volume the component's model asks for."""
    spec, loc = comp.spec, comp.loc
    if isinstance(spec, Worker):
        return [(loc + ("wal", "storage"), spec.wal.storage)]
    if isinstance(spec, StatefulInfra):
        return [(loc + ("storage",), spec.storage)]
    if isinstance(spec, Monitoring):
        return [(loc + (part, "storage"), getattr(spec, part).storage) for part in ("prometheus", "alertmanager", "grafana")]
    return []


def provides(model: Model, comp: Component) -> list[Capability]:
    """What a component makes available to the rest of the cluster."""
    out = [(CRD, k) for k in API_KINDS.get(comp.kind, [])]
    if isinstance(comp.spec, AwsEbsCsiDriver):
        out += [(STORAGE_CLASS, name) for name in comp.spec.storage_classes]
    if isinstance(comp.spec, AwsLoadBalancerController):
        out.append((INGRESS_CLASS, model.platform.ingress.class_name))
    if isinstance(comp.spec, MetricsServer):
        out.append((METRICS_API, RESOURCE_METRICS))
    return out


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
    if comp.kind in LOCAL_WORKLOADS:
        out += [((CRD, k), comp.loc) for k in MONITORING_KINDS]
    if comp.kind == KUBE_PROMETHEUS_STACK:
        pass  # installs the CRDs its own objects use
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
