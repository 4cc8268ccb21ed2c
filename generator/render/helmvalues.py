"""Model -> the complete, flat Helm values of every Application (local and upstream charts)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import kinds, labels
from ..model.model import ApiService, CanaryPolicy, Image, Model, Probe, Worker, duration_seconds
from ..model.model import Storage as ModelStorage
from ..plan import resolve, wiring
from .chartvalues import (
    AnalysisValues, ApiAlerts, ApiValues, BeatValues, CanaryStepValues, CanaryValues, CeleryValues, Exporter,
    ExecAction, HpaValues, HttpGet, ImageValues, IngressValues, NamespaceValues, NetworkPolicyValues, Placement,
    PlatformValues, PolicyPort, PolicyRule, ProbesValues, ProbeValues, RollingValues, SecretEnvVar,
    ServiceMonitorValues, ServiceValues, Storage, TcpSocket, TolerationValues, WalValues, WorkerAlerts, WorkerValues,
)

if TYPE_CHECKING:  # resolve and plan import the model, which imports the kinds, which import this module
    from ..plan.plan import Plan
    from ..plan.resolve import Component


def image(img: Image) -> ImageValues:
    return ImageValues(repository=img.repository, tag=img.tag, digest=img.digest)


def placement(model: Model, where) -> Placement:
    return Placement(
        node_selector=dict(sorted(resolve.node_selector(model, where).items())),
        tolerations=[TolerationValues(**t.model_dump(exclude_none=True)) for t in resolve.tolerations(model, where)],
    )


def storage(s: ModelStorage) -> Storage:
    return Storage(size=s.size, storage_class=s.storage_class, access_mode=s.access_mode)


def probe(p: Probe, default_port: int) -> ProbeValues:
    port = p.port or default_port
    return ProbeValues(
        http_get=HttpGet(path=p.path, port=port) if p.path else None,
        exec=ExecAction(command=list(p.command)) if p.command else None,
        tcp_socket=TcpSocket(port=port) if p.tcp else None,
        initial_delay_seconds=p.initial_delay_seconds,
        period_seconds=p.period_seconds,
        timeout_seconds=p.timeout_seconds,
        failure_threshold=p.failure_threshold,
    )


def secret_env(workload) -> list[SecretEnvVar]:
    return [SecretEnvVar(name=k, secret=v.secret, key=v.key) for k, v in sorted(workload.secret_env.items())]


def monitoring_stack(plan: Plan) -> Any:
    """The monitoring stack's model entry (kube-prometheus-stack), whose thresholds the alerts use, or None."""
    return plan.monitoring.spec if plan.monitoring else None


def prometheus_url(plan: Plan) -> str:
    """kube-prometheus-stack names its Prometheus Service <fullname>-prometheus; fullname is pinned to the release."""
    stack = plan.monitoring
    return f"http://{wiring.host(f'{stack.name}-prometheus', stack.namespace)}:9090"


def alert_for(plan: Plan) -> str:
    """How long every alert waits for a breach to last: the monitoring stack's `thresholds.for`."""
    mon = monitoring_stack(plan)
    return mon.thresholds.for_ if mon else "5m"


# ---------------------------------------------------------------- api


def api_values(plan: Plan, comp: Component) -> ApiValues:
    model = plan.model
    svc: ApiService = comp.spec  # type: ignore[assignment]
    d = model.service_defaults
    port = svc.port or d.port
    probes = svc.probes or d.probes
    policy = plan.delivery[comp.name]
    mon = monitoring_stack(plan)
    ing = model.platform.ingress
    canary = isinstance(policy, CanaryPolicy)
    annotations = {
        labels.ALB_GROUP: ing.group,
        labels.ALB_SCHEME: ing.scheme,
        labels.ALB_TARGET_TYPE: ing.target_type,
        labels.ALB_LISTEN_PORTS: "[" + ", ".join(
            f'{{"{"HTTPS" if p == 443 else "HTTP"}": {p}}}' for p in ing.listen_ports) + "]",
        labels.ALB_HEALTHCHECK_PATH: ing.healthcheck_path,
    }
    if ing.ssl_redirect:
        annotations[labels.ALB_SSL_REDIRECT] = str(ing.ssl_redirect)
    ingress_rules = [PolicyRule(why="clients through the ALB (NodePort, source NAT by kube-proxy)", peers=[], ports=[PolicyPort(port=port)])]
    return ApiValues(
        **_common(model, "api", svc, NetworkPolicyValues(
            ingress=ingress_rules if svc.path else wiring.scrape_rule(plan, port),
            egress=wiring.egress_rules(plan, svc),
        )),
        replicas=svc.replicas,
        port=port,
        metrics_path=d.metrics_path,
        probes=ProbesValues(liveness=probe(probes.liveness, port), readiness=probe(probes.readiness, port)),
        env=wiring.env_list(wiring.connection_env(plan, svc), dict(svc.env)),
        secret_env=secret_env(svc),
        service=ServiceValues(
            type="NodePort" if svc.path and ing.target_type == "instance" else "ClusterIP",
            port=80,
            node_port=svc.node_port,
        ),
        ingress=IngressValues(
            enabled=svc.path is not None,
            class_name=ing.class_name,
            host=model.cluster.domain,
            path=svc.path or "/",
            annotations=dict(sorted(annotations.items())),
        ),
        hpa=HpaValues(
            enabled=svc.hpa is not None,
            min_replicas=svc.hpa.min_replicas if svc.hpa else svc.replicas or 1,
            max_replicas=svc.hpa.max_replicas if svc.hpa else svc.replicas or 1,
            target_cpu_utilization=svc.hpa.target_cpu_utilization if svc.hpa else 80,
        ),
        # One pod may always be down for node maintenance; never block a drain on a 1-replica service.
        pdb_min_available=max(0, (svc.hpa.min_replicas if svc.hpa else svc.replicas) - 1),
        strategy="canary" if canary else "rolling",
        min_ready_seconds=model.delivery.rolling.min_ready_seconds if canary else policy.min_ready_seconds,
        rolling=None if canary else RollingValues(max_surge=policy.max_surge, max_unavailable=policy.max_unavailable),
        canary=CanaryValues(
            steps=[CanaryStepValues(set_weight=s.set_weight, pause=s.pause) for s in policy.steps],
            scale_down_delay_seconds=policy.scale_down_delay_seconds,
            analysis=AnalysisValues(
                # One template per service: two canaries in one namespace must not share (and fight over) one.
                template_name=f"{comp.name}-{policy.analysis.template}",
                interval=policy.analysis.interval,
                success_threshold=policy.analysis.success_threshold,
                failure_limit=policy.analysis.failure_limit,
                window=policy.analysis.window,
                prometheus_address=prometheus_url(plan),
            ) if policy.analysis else None,
        ) if canary else None,
        alerts=ApiAlerts(
            error_ratio=mon.thresholds.api_error_ratio if mon else 0.05,
            latency_p95_seconds=mon.thresholds.api_latency_p95_seconds if mon else 1.0,
            for_=alert_for(plan),
        ),
    )


# ---------------------------------------------------------------- worker


def worker_values(plan: Plan, comp: Component) -> WorkerValues:
    model = plan.model
    w: Worker = comp.spec  # type: ignore[assignment]
    mon = monitoring_stack(plan)
    wal_dir = w.wal.path.rsplit("/", 1)[0]
    own_env = {"WAL_PATH": w.wal.path, "WAL_SYNC_INTERVAL_SECONDS": str(duration_seconds(w.wal.sync_interval))}
    return WorkerValues(
        **_common(model, "worker", w, NetworkPolicyValues(
            ingress=wiring.scrape_rule(plan, w.metrics_port), egress=wiring.egress_rules(plan, w))),
        replicas=w.replicas,
        celery=CeleryValues(app=w.app, queues=list(w.queues), pool=w.pool, concurrency=w.concurrency),
        wal=WalValues(path=w.wal.path, mount_path=wal_dir, storage=storage(w.wal.storage),
                      sync_interval_seconds=duration_seconds(w.wal.sync_interval)),
        beat=BeatValues(enabled=w.beat is not None, resources=w.beat.resources if w.beat else None),
        metrics_port=w.metrics_port,
        probes=ProbesValues(liveness=probe(w.probes.liveness, w.metrics_port), readiness=probe(w.probes.readiness, w.metrics_port)),
        env=wiring.env_list(wiring.connection_env(plan, w), own_env, dict(w.env)),
        secret_env=secret_env(w),
        termination_grace_period_seconds=w.termination_grace_period_seconds,
        pdb_max_unavailable=1,
        alerts=WorkerAlerts(failure_ratio=mon.thresholds.worker_failure_ratio if mon else 0.1, for_=alert_for(plan)),
    )


# ---------------------------------------------------------------- infra


def _common(model: Model, component_label: str, spec, network_policy: NetworkPolicyValues) -> dict[str, Any]:
    """The fields every local workload chart shares (chartvalues.Common)."""
    return dict(
        part_of=model.cluster.name,
        component=component_label,
        image=image(spec.image),
        resources=spec.resources,
        placement=placement(model, spec.placement),
        network_policy=network_policy,
        service_monitor=ServiceMonitorValues(),
    )


def infra_common(plan: Plan, comp: Component, component_label: str) -> dict[str, Any]:
    model = plan.model
    infra = comp.spec
    return dict(
        **_common(model, component_label, infra, NetworkPolicyValues(
            ingress=wiring.client_ingress(plan, comp.name), egress=wiring.dns_only_egress())),
        storage=storage(infra.storage),
        credentials_secret=infra.credentials_secret,
    )


def exporter(e) -> Exporter:
    return Exporter(image=image(e.image), resources=e.resources, port=e.port)


def platform_values(plan: Plan, comp: Component) -> PlatformValues:
    model = plan.model
    return PlatformValues(
        part_of=model.cluster.name,
        namespaces=[NamespaceValues(name=n, pod_security=ns.pod_security, default_deny=ns.default_deny)
                    for n, ns in sorted(model.platform.namespaces.items())],
    )


# ---------------------------------------------------------------- upstream charts


def k8s_placement(model: Model, where) -> dict[str, Any]:
    return placement(model, where).model_dump(by_alias=True, exclude_none=True)


def resources(r) -> dict[str, Any]:
    return r.model_dump(by_alias=True)


def pvc(s: ModelStorage) -> dict[str, Any]:
    return {"spec": {"storageClassName": s.storage_class, "accessModes": [s.access_mode],
                     "resources": {"requests": {"storage": s.size}}}}


def controller(model: Model, ctl) -> dict[str, Any]:
    """nodeSelector, tolerations and resources of a controller's main pod, as every upstream chart spells them."""
    return {**k8s_placement(model, ctl.placement), "resources": resources(ctl.resources)}


# ---------------------------------------------------------------- dispatch

def _local() -> dict[str, tuple[str, Any]]:
    """The kinds of component with a section of their own -> (chart, values); the others are in generator/kinds/.
    (A function: resolve may still be importing when this module is.)"""
    return {resolve.API: ("api", api_values), resolve.WORKER: ("worker", worker_values),
            resolve.PLATFORM: ("platform", platform_values)}


def chart_values() -> dict[str, type]:
    """Every local chart under charts/ -> its values class (the source of its values.schema.json)."""
    return {"api": ApiValues, "worker": WorkerValues, **kinds.local_charts(), "platform": PlatformValues}


def local_chart(comp: Component) -> str | None:
    """The chart under charts/ that renders this component, or None for upstream charts."""
    entry = _local().get(comp.kind)
    return entry[0] if entry else kinds.of(comp.kind).chart  # type: ignore[union-attr]


def values(plan: Plan, comp: Component) -> dict[str, Any]:
    """The Helm values of one component: a pure function of the plan and the component."""
    local = _local().get(comp.kind)
    if local is not None:
        return local[1](plan, comp).model_dump(by_alias=True, exclude_none=True)
    kind = kinds.of(comp.kind)
    made = kind.values(plan, comp)  # type: ignore[union-attr]
    return made if kind.upstream else made.model_dump(by_alias=True, exclude_none=True)  # type: ignore[union-attr]



