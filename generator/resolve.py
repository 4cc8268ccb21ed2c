"""Effective values derived from the model: components, placement, delivery policy, pod counts.

Shared by the checks and the renderers so both reason about the same numbers. Defensive about
dangling references (checks run on models that may still have them) and free of I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Union

from .quantity import cpu_millis, memory_bytes
from .model import (
    ApiService, ArgoRollouts, CanaryPolicy, Model, Monitoring, Node, PostgreSQL, RabbitMQ,
    Redis, Resources, RollingPolicy, Toleration, Worker,
)

# Kinds of component, i.e. which chart renders them.
API, WORKER, PLATFORM = "api", "worker", "platform"
RABBITMQ, POSTGRESQL, REDIS = "rabbitmq", "postgresql", "redis"
KUBE_PROMETHEUS_STACK, ARGO_ROLLOUTS = "kube-prometheus-stack", "argo-rollouts"

# API groups whose CRDs a component installs, and the groups a component's objects need.
PROVIDES = {KUBE_PROMETHEUS_STACK: {"monitoring.coreos.com"}, ARGO_ROLLOUTS: {"argoproj.io/rollouts"}}
_MONITORED = {"monitoring.coreos.com"}
# The API versions those CRDs add, as `helm template --api-versions` wants them (what Argo CD passes).
API_VERSIONS = {
    KUBE_PROMETHEUS_STACK: ["monitoring.coreos.com/v1"] + [f"monitoring.coreos.com/v1/{k}" for k in (
        "Alertmanager", "PodMonitor", "Probe", "Prometheus", "PrometheusRule", "ServiceMonitor", "ThanosRuler")],
    ARGO_ROLLOUTS: ["argoproj.io/v1alpha1"] + [f"argoproj.io/v1alpha1/{k}" for k in (
        "AnalysisRun", "AnalysisTemplate", "ClusterAnalysisTemplate", "Experiment", "Rollout")],
}


def api_versions(model: Model) -> list[str]:
    """API versions beyond the built-in ones that the platform's components install."""
    return sorted({v for comp in components(model) for v in API_VERSIONS.get(comp.kind, [])})  # ServiceMonitor + PrometheusRule in every local workload chart


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
        return self.kind in (RABBITMQ, POSTGRESQL, REDIS, KUBE_PROMETHEUS_STACK, ARGO_ROLLOUTS, PLATFORM)

    @property
    def upstream(self) -> bool:
        return self.kind in (KUBE_PROMETHEUS_STACK, ARGO_ROLLOUTS)


def components(model: Model) -> list[Component]:
    """Every component, in model order: platform, controllers, infra, workers, services."""
    out = [Component(model.platform.app, PLATFORM, ("platform", "app"), None, model.platform.project, None)]
    for name, ctl in model.platform.controllers.items():
        out.append(Component(name, ARGO_ROLLOUTS, ("platform", "controllers", name), ctl.namespace, ctl.project, ctl))
    for name, infra in model.infra.items():
        out.append(Component(name, infra.type, ("infra", name), infra.namespace, infra.project, infra))
    for name, worker in model.workers.items():
        out.append(Component(name, WORKER, ("workers", name), worker.namespace, worker.project, worker))
    for name, svc in model.services.items():
        out.append(Component(name, API, ("services", name), svc.namespace, svc.project, svc))
    return out


def by_name(model: Model) -> dict[str, Component]:
    out: dict[str, Component] = {}
    for comp in components(model):
        out.setdefault(comp.name, comp)
    return out


def of_kind(model: Model, kind: str) -> list[Component]:
    return [c for c in components(model) if c.kind == kind]


def needs(model: Model, comp: Component) -> set[str]:
    """API groups (CRDs) the component's objects need from another component."""
    if comp.kind in (API, WORKER, RABBITMQ, POSTGRESQL, REDIS):
        groups = set(_MONITORED)
        if comp.kind == API and isinstance(delivery(model, comp.spec), CanaryPolicy):
            groups.add("argoproj.io/rollouts")
        return groups
    return set()


def dependencies(model: Model, comp: Component) -> list[tuple[str, str]]:
    """(dependency, why) pairs: declared dependsOn plus implied ones (namespaces, CRD providers)."""
    deps: dict[str, str] = {}
    if comp.kind != PLATFORM:
        deps[model.platform.app] = "creates its namespace"
    wanted = needs(model, comp)
    for other in components(model):
        provided = PROVIDES.get(other.kind, set()) & wanted
        if provided and other.name != comp.name:
            deps[other.name] = f"installs the CRDs of {', '.join(sorted(provided))}"
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


# ---------------------------------------------------------------- load on nodes


@dataclass(frozen=True)
class Load:
    """Pods one component may place on a node at its peak, with what each pod requests."""

    component: str
    what: str
    pods: int
    cpu: int  # millicores requested per pod
    memory: int  # bytes requested per pod
    why: str  # how the pod count was reached
    loc: tuple


def _plus(resources: Resources, *extra: Resources) -> tuple[int, int]:
    cpu = cpu_millis(resources.requests.cpu) + sum(cpu_millis(r.requests.cpu) for r in extra)
    mem = memory_bytes(resources.requests.memory) + sum(memory_bytes(r.requests.memory) for r in extra)
    return cpu, mem


def _load(component, what, pods, resources, why, loc, *sidecars) -> Load:
    cpu, mem = _plus(resources, *sidecars)
    return Load(component, what, pods, cpu, mem, why, loc)


def loads(model: Model) -> Iterator[tuple[str, Load]]:
    """(node name, load) for every workload, counting HPA maximums and rollout surge."""
    for name, svc in model.services.items():
        peak = svc.hpa.max_replicas if svc.hpa else svc.replicas
        why = f"HPA max {peak}" if svc.hpa else f"{peak} replicas"
        policy = delivery(model, svc)
        if isinstance(policy, CanaryPolicy):
            extra, how = peak, f"canary at full promotion +{peak} while stable stays up"
        else:
            extra = surge_pods(policy.max_surge, peak)
            how = f"maxSurge +{extra}"
        yield svc.placement.node, _load(name, name, peak + extra, svc.resources, f"{why}, {how}", ("services", name))
    for name, worker in model.workers.items():
        yield worker.placement.node, _load(
            name, name, worker.replicas, worker.resources,
            f"{worker.replicas} replicas (StatefulSet: no surge)", ("workers", name))
        if worker.beat:
            yield worker.placement.node, _load(
                name, f"{name}-beat", 1, worker.beat.resources, "1 replica, Recreate", ("workers", name, "beat"))
    for name, infra in model.infra.items():
        loc = ("infra", name)
        if isinstance(infra, (PostgreSQL, Redis)):
            yield infra.placement.node, _load(
                name, name, 1, infra.resources, "1 replica + exporter sidecar", loc, infra.exporter.resources)
        elif isinstance(infra, RabbitMQ):
            yield infra.placement.node, _load(name, name, 1, infra.resources, "1 replica", loc)
        elif isinstance(infra, Monitoring):
            node = infra.placement.node
            yield node, _load(name, f"{name}/prometheus", 1, infra.prometheus.resources, "1 replica", loc + ("prometheus",))
            yield node, _load(name, f"{name}/alertmanager", 1, infra.alertmanager.resources, "1 replica", loc + ("alertmanager",))
            yield node, _load(name, f"{name}/grafana", 1, infra.grafana.resources, "1 replica, Recreate", loc + ("grafana",))
            yield node, _load(name, f"{name}/operator", 2, infra.operator.resources, "1 replica + surge 1", loc + ("operator",))
            yield node, _load(name, f"{name}/kube-state-metrics", 2, infra.kube_state_metrics.resources,
                              "1 replica + surge 1", loc + ("kubeStateMetrics",))
    for name, ctl in model.platform.controllers.items():
        if isinstance(ctl, ArgoRollouts):
            surge = surge_pods("25%", ctl.replicas)
            yield ctl.placement.node, _load(
                name, name, ctl.replicas + surge, ctl.resources, f"{ctl.replicas} replicas + surge {surge}",
                ("platform", "controllers", name))


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
