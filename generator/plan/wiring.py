"""How components reach each other: service endpoints, connection env and NetworkPolicy rules.

Derived from declared dependencies only, so a workload can reach exactly what the model says it uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

from .. import kinds, labels
from ..model.model import Model
from ..render.chartvalues import EnvVar, IpBlock, MatchLabels, Peer, PolicyPort, PolicyRule

if TYPE_CHECKING:  # plan imports resolve, which may be importing the model (and so the kinds, and this module)
    from .plan import Plan

DNS_PORTS = [PolicyPort(port=53, protocol="UDP"), PolicyPort(port=53, protocol="TCP")]


@dataclass(frozen=True)
class Endpoint:
    component: str
    namespace: str
    host: str
    ports: tuple[int, ...]  # client ports (what dependents connect to)
    metrics_ports: tuple[int, ...]


def host(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.cluster.local"


def endpoint(model: Model, name: str) -> Endpoint | None:
    """The Service a dependent connects to, for components that serve clients (infra only)."""
    infra = model.infra.get(name)
    kind = kinds.of(infra.type) if infra is not None else None
    if kind is None or kind.endpoint is None:
        return None
    ports, metrics_ports = kind.endpoint(infra)
    return Endpoint(name, infra.namespace, host(name, infra.namespace), ports, metrics_ports)


def connection_env(plan: Plan, workload) -> dict[str, str]:
    """Host/port/database settings for each declared infra dependency."""
    model = plan.model
    env: dict[str, str] = {}
    for dep in workload.depends_on:
        infra = model.infra.get(dep)
        ep = endpoint(model, dep)
        kind = kinds.of(infra.type) if infra is not None else None
        if ep is None or kind is None or kind.connection_env is None:
            continue
        env.update(kind.connection_env(ep.host, infra, workload))
    return env


def env_list(*parts: dict[str, str]) -> list[EnvVar]:
    merged: dict[str, str] = {}
    for part in parts:
        merged.update(part)
    return [EnvVar(name=k, value=v) for k, v in sorted(merged.items())]


# ---------------------------------------------------------------- NetworkPolicy rules


def _pods(namespace: str, instance: str | None = None, pod_labels: dict[str, str] | None = None) -> Peer:
    selector = dict(pod_labels or {})
    if instance:
        selector[labels.INSTANCE] = instance
    return Peer(
        namespace_selector=MatchLabels(match_labels={labels.NAMESPACE_NAME: namespace}),
        pod_selector=MatchLabels(match_labels=selector) if selector else None,
    )


def _ports(*ports: int) -> list[PolicyPort]:
    return [PolicyPort(port=p) for p in sorted(set(ports))]


def scrape_rule(plan: Plan, *ports: int) -> list[PolicyRule]:
    ns = plan.monitoring.namespace if plan.monitoring else None
    if ns is None:
        return []
    return [PolicyRule(why="Prometheus scrapes metrics", peers=[_pods(ns, pod_labels=labels.PROMETHEUS_POD)], ports=_ports(*ports))]


def egress_rules(plan: Plan, workload) -> list[PolicyRule]:
    model = plan.model
    rules = [PolicyRule(why="cluster DNS", peers=[_pods("kube-system", pod_labels=labels.KUBE_DNS)], ports=DNS_PORTS)]
    for dep in sorted(workload.depends_on):
        ep = endpoint(model, dep)
        if ep is not None:
            rules.append(PolicyRule(why=f"uses {dep}", peers=[_pods(ep.namespace, dep)], ports=_ports(*ep.ports)))
    if workload.internet_egress:
        rules.append(PolicyRule(
            why="HTTPS to services outside the cluster",
            peers=[Peer(ip_block=IpBlock(cidr="0.0.0.0/0", except_=[model.cluster.pod_cidr]))],
            ports=_ports(443),
        ))
    return rules


def dns_only_egress() -> list[PolicyRule]:
    return [PolicyRule(why="cluster DNS", peers=[_pods("kube-system", pod_labels=labels.KUBE_DNS)], ports=DNS_PORTS)]


def client_ingress(plan: Plan, name: str) -> list[PolicyRule]:
    """Who may connect to an infra component: exactly the workloads that declare a dependency on it."""
    ep = endpoint(plan.model, name)
    if ep is None:
        return []
    rules = []
    for client in plan.clients.get(name, ()):
        wl = plan.model.services.get(client) or plan.model.workers[client]
        rules.append(PolicyRule(why=f"{client} uses {name}", peers=[_pods(wl.namespace, client)], ports=_ports(*ep.ports)))
    return rules + scrape_rule(plan, *ep.metrics_ports)
