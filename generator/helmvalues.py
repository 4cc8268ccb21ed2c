"""Model -> the complete, flat Helm values of every Application (local and upstream charts)."""

from __future__ import annotations

import math
from typing import Any

from . import labels, resolve, wiring
from .chartvalues import (
    AnalysisValues, ApiAlerts, ApiValues, BeatValues, CanaryStepValues, CanaryValues, CeleryValues,
    Exporter, ExecAction, HpaValues, HttpGet, ImageValues, InfraAlerts, IngressValues,
    NamespaceValues, NetworkPolicyValues, Placement, PlatformValues, PolicyPort, PolicyRule, PostgreSQLValues,
    ProbesValues, ProbeValues, QueueAlert, RabbitAlerts, RabbitBinding, RabbitDefinitions,
    RabbitExchange, RabbitMQValues, RabbitQueue, RedisValues, RollingValues, SecretEnvVar,
    ServiceMonitorValues, ServiceValues, Storage, TcpSocket, TolerationValues, WalValues,
    WorkerAlerts, WorkerValues,
)
from .model import (
    ApiService, ArgoRollouts, AwsEbsCsiDriver, AwsLoadBalancerController, CanaryPolicy, MetricsServer, Image, Model, Monitoring, PostgreSQL, Probe, RabbitMQ,
    Redis, Worker, duration_seconds,
)
from .model import Storage as ModelStorage
from .quantity import memory_bytes
from .plan import Plan
from .resolve import Component


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


def _monitoring(model: Model) -> Monitoring | None:
    for infra in model.infra.values():
        if isinstance(infra, Monitoring):
            return infra
    return None


def prometheus_url(plan: Plan) -> str:
    """kube-prometheus-stack names its Prometheus Service <fullname>-prometheus; fullname is pinned to the release."""
    stack = plan.monitoring
    return f"http://{wiring.host(f'{stack.name}-prometheus', stack.namespace)}:9090"


def _for(model: Model) -> str:
    mon = _monitoring(model)
    return mon.thresholds.for_ if mon else "5m"


# ---------------------------------------------------------------- api


def api_values(plan: Plan, comp: Component) -> ApiValues:
    model = plan.model
    svc: ApiService = comp.spec  # type: ignore[assignment]
    d = model.service_defaults
    port = svc.port or d.port
    probes = svc.probes or d.probes
    policy = plan.delivery[comp.name]
    mon = _monitoring(model)
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
            for_=_for(model),
        ),
    )


# ---------------------------------------------------------------- worker


def worker_values(plan: Plan, comp: Component) -> WorkerValues:
    model = plan.model
    w: Worker = comp.spec  # type: ignore[assignment]
    mon = _monitoring(model)
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
        alerts=WorkerAlerts(failure_ratio=mon.thresholds.worker_failure_ratio if mon else 0.1, for_=_for(model)),
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


def _infra_common(plan: Plan, comp: Component, component_label: str) -> dict[str, Any]:
    model = plan.model
    infra = comp.spec
    return dict(
        **_common(model, component_label, infra, NetworkPolicyValues(
            ingress=wiring.client_ingress(plan, comp.name), egress=wiring.dns_only_egress())),
        storage=storage(infra.storage),
        credentials_secret=infra.credentials_secret,
    )


def rabbitmq_definitions(model: Model) -> RabbitDefinitions:
    msg = model.messaging
    exchanges, queues, bindings = [], [], []
    if msg is not None:
        for name, ex in msg.exchanges.items():
            exchanges.append(RabbitExchange(name=name, vhost="/", type=ex.type, durable=ex.durable,
                                            auto_delete=False, internal=False, arguments={}))
        for name, q in msg.queues.items():
            args: dict[str, int | str] = {}
            if q.ttl:
                args["x-message-ttl"] = duration_seconds(q.ttl) * 1000
            if q.max_length:
                args["x-max-length"] = q.max_length
            if q.overflow:
                args["x-overflow"] = q.overflow
            if q.max_priority:
                args["x-max-priority"] = q.max_priority
            if q.dead_letter:
                args["x-dead-letter-exchange"] = q.dead_letter.exchange
                args["x-dead-letter-routing-key"] = q.dead_letter.routing_key
            queues.append(RabbitQueue(name=name, vhost="/", durable=True, auto_delete=False, arguments=dict(sorted(args.items()))))
            bindings.append(RabbitBinding(source=q.binding.exchange, vhost="/", destination=name, destination_type="queue",
                                          routing_key=q.binding.routing_key, arguments={}))
    return RabbitDefinitions(vhosts=[{"name": "/"}], exchanges=exchanges, queues=queues, bindings=bindings)


def rabbitmq_values(plan: Plan, comp: Component) -> RabbitMQValues:
    model = plan.model
    r: RabbitMQ = comp.spec  # type: ignore[assignment]
    mon = _monitoring(model)
    default_threshold = mon.thresholds.queue_ready if mon else 1000
    queue_alerts = []
    if model.messaging is not None:
        for name, q in model.messaging.queues.items():
            queue_alerts.append(QueueAlert(queue=name, ready_above=q.alert_above or default_threshold))
    return RabbitMQValues(
        **_infra_common(plan, comp, "message-queue"),
        amqp_port=r.amqp_port,
        management_port=r.management_port,
        metrics_port=r.metrics_port,
        plugins=list(r.plugins),
        definitions=rabbitmq_definitions(model),
        alerts=RabbitAlerts(for_=_for(model), queues=queue_alerts),
    )


def _exporter(e) -> Exporter:
    return Exporter(image=image(e.image), resources=e.resources, port=e.port)


def postgresql_values(plan: Plan, comp: Component) -> PostgreSQLValues:
    model = plan.model
    p: PostgreSQL = comp.spec  # type: ignore[assignment]
    clients = [model.services.get(c) or model.workers[c] for c in plan.clients.get(comp.name, ())]
    databases = sorted({wl.database for wl in clients if wl.database})
    return PostgreSQLValues(
        **_infra_common(plan, comp, "database"),
        port=p.port,
        databases=databases,
        exporter=_exporter(p.exporter),
        alerts=InfraAlerts(for_=_for(model)),
    )


def redis_values(plan: Plan, comp: Component) -> RedisValues:
    model = plan.model
    r: Redis = comp.spec  # type: ignore[assignment]
    return RedisValues(
        **_infra_common(plan, comp, "cache"),
        port=r.port,
        maxmemory_bytes=memory_bytes(r.maxmemory),
        maxmemory_policy=r.maxmemory_policy,
        databases=dict(sorted(r.databases.items(), key=lambda kv: kv[1])),
        exporter=_exporter(r.exporter),
        alerts=InfraAlerts(for_=_for(model)),
    )


def platform_values(plan: Plan, comp: Component) -> PlatformValues:
    model = plan.model
    return PlatformValues(
        part_of=model.cluster.name,
        namespaces=[NamespaceValues(name=n, pod_security=ns.pod_security, default_deny=ns.default_deny)
                    for n, ns in sorted(model.platform.namespaces.items())],
    )


# ---------------------------------------------------------------- upstream charts


def _k8s_placement(model: Model, where) -> dict[str, Any]:
    return placement(model, where).model_dump(by_alias=True, exclude_none=True)


def _resources(r) -> dict[str, Any]:
    return r.model_dump(by_alias=True)


def _pvc(s: ModelStorage) -> dict[str, Any]:
    return {"spec": {"storageClassName": s.storage_class, "accessModes": [s.access_mode],
                     "resources": {"requests": {"storage": s.size}}}}


def monitoring_values(plan: Plan, comp: Component) -> dict[str, Any]:
    """kube-prometheus-stack 88.5.3 values (paths as documented in ../shared/upstream-facts.md)."""
    model = plan.model
    m: Monitoring = comp.spec  # type: ignore[assignment]
    at = _k8s_placement(model, m.placement)
    t = m.thresholds
    selectors = {f"{kind}SelectorNilUsesHelmValues": False
                 for kind in ("serviceMonitor", "podMonitor", "rule", "probe", "scrapeConfig")}
    node_rules = [
        {"alert": "NodeCpuHigh",
         "expr": f'1 - avg by (instance) (rate(node_cpu_seconds_total{{mode="idle"}}[5m])) > {t.node_cpu_ratio}',
         "for": t.for_, "labels": {"severity": "warning"},
         "annotations": {"summary": f"Node {{{{ $labels.instance }}}} CPU above {math.floor(t.node_cpu_ratio * 100)}%"}},
        {"alert": "NodeMemoryHigh",
         "expr": f"1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes > {t.node_memory_ratio}",
         "for": t.for_, "labels": {"severity": "warning"},
         "annotations": {"summary": f"Node {{{{ $labels.instance }}}} memory above {math.floor(t.node_memory_ratio * 100)}%"}},
        {"alert": "NodeDiskHigh",
         "expr": ('1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs"} / '
                  f'node_filesystem_size_bytes{{fstype!~"tmpfs|overlay|squashfs"}} > {t.node_disk_ratio}'),
         "for": t.for_, "labels": {"severity": "warning"},
         "annotations": {"summary": f"Node {{{{ $labels.instance }}}} disk {{{{ $labels.mountpoint }}}} above {math.floor(t.node_disk_ratio * 100)}%"}},
    ]
    return {
        # Pinned so Service names are stable: the canary analysis queries <release>-prometheus.
        "fullnameOverride": comp.name,
        "crds": {"upgradeJob": {"enabled": False}},
        "prometheusOperator": {
            **at, "resources": _resources(m.operator.resources),
            "prometheusConfigReloader": {"resources": _resources(m.config_reloader.resources)},
            "admissionWebhooks": {"deployment": dict(at),
                                  "patch": {**at, "resources": _resources(m.admission_jobs.resources)}},
        },
        "prometheus": {"prometheusSpec": {
            **at,
            "resources": _resources(m.prometheus.resources),
            "retention": m.prometheus.retention,
            "retentionSize": m.prometheus.retention_size,
            "storageSpec": {"volumeClaimTemplate": _pvc(m.prometheus.storage)},
            **selectors,
        }},
        # Alertmanager never calls the Kubernetes API.
        "alertmanager": {"serviceAccount": {"automountServiceAccountToken": False}, "alertmanagerSpec": {
            **at,
            "resources": _resources(m.alertmanager.resources),
            "storage": {"volumeClaimTemplate": _pvc(m.alertmanager.storage)},
        }},
        "grafana": {
            **at,
            "resources": _resources(m.grafana.resources),
            # The volume belongs to Grafana's fsGroup already; the chart's root chown init container is not needed.
            "initChownData": {"enabled": False},
            # A ReadWriteOnce volume cannot be attached to two pods during a rolling update.
            "deploymentStrategy": {"type": "Recreate"},
            "persistence": {"enabled": True, "type": "pvc", "storageClassName": m.grafana.storage.storage_class,
                            "accessModes": [m.grafana.storage.access_mode], "size": m.grafana.storage.size},
            "admin": {"existingSecret": m.grafana.admin_secret, "userKey": m.grafana.admin_user_key,
                      "passwordKey": m.grafana.admin_password_key},
            "sidecar": {"resources": _resources(m.grafana.sidecar_resources),
                        "dashboards": {"enabled": True, "label": "grafana_dashboard", "labelValue": "1", "searchNamespace": "ALL"}},
        },
        "kube-state-metrics": {**at, "resources": _resources(m.kube_state_metrics.resources)},
        "prometheus-node-exporter": {
            # hostNetwork, hostPID and hostPath need a privileged namespace; the rest of the stack stays restricted.
            "namespaceOverride": m.node_exporter.namespace,
            "resources": _resources(m.node_exporter.resources),
            # Every node, whatever its taints: node alerts must cover all of them.
            "tolerations": [{"operator": "Exists"}],
        },
        # kubeadm binds etcd, the scheduler and the controller-manager to 127.0.0.1 and kube-proxy's
        # metrics to localhost: scraping them from Prometheus would only raise TargetDown alerts.
        "kubeEtcd": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeControllerManager": {"enabled": False},
        "kubeProxy": {"enabled": False},
        "additionalPrometheusRulesMap": {"eco2-nodes": {"groups": [{"name": "eco2-nodes", "rules": node_rules}]}},
    }


def _controller(model: Model, ctl) -> dict[str, Any]:
    """nodeSelector, tolerations and resources of a controller's main pod, as every upstream chart spells them."""
    return {**_k8s_placement(model, ctl.placement), "resources": _resources(ctl.resources)}


def aws_load_balancer_controller_values(plan: Plan, comp: Component) -> dict[str, Any]:
    """aws-load-balancer-controller chart 3.5.0 values: the IngressClass and IngressClassParams of platform.ingress."""
    model = plan.model
    ctl: AwsLoadBalancerController = comp.spec  # type: ignore[assignment]
    ing = model.platform.ingress
    return {
        "clusterName": model.cluster.name,
        "region": model.cluster.region,
        "replicaCount": ctl.replicas,
        **_controller(model, ctl),
        "ingressClass": ing.class_name,
        "createIngressClassResource": True,
        "ingressClassParams": {"create": True, "name": ing.class_name,
                               "spec": {"group": {"name": ing.group}, "scheme": ing.scheme}},
        "defaultTargetType": ing.target_type,
        "securityContext": {"readOnlyRootFilesystem": True, "runAsNonRoot": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        # Nothing here is a Service of type LoadBalancer; its mutating webhook would only make every Service
        # creation fail while the controller is down.
        "enableServiceMutatorWebhook": False,
    }


def aws_ebs_csi_driver_values(plan: Plan, comp: Component) -> dict[str, Any]:
    """aws-ebs-csi-driver chart 2.64.0 values: the controller on its node, the node plugin everywhere, the classes."""
    model = plan.model
    ctl: AwsEbsCsiDriver = comp.spec  # type: ignore[assignment]
    res = _resources(ctl.resources)
    classes = []
    for name, sc in ctl.storage_classes.items():
        entry: dict[str, Any] = {
            "name": name,
            "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": sc.reclaim_policy,
            "allowVolumeExpansion": sc.allow_volume_expansion,
            "parameters": {"type": sc.volume_type, "encrypted": "true" if sc.encrypted else "false"},
        }
        if sc.default:
            entry["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
        classes.append(entry)
    return {
        "controller": {"replicaCount": ctl.replicas, "region": model.cluster.region,
                       "k8sTagClusterId": model.cluster.name, **_controller(model, ctl)},
        "node": {"resources": res, "tolerateAllTaints": True, "enableWindows": False},
        "sidecars": {s: {"resources": res} for s in (
            "provisioner", "attacher", "snapshotter", "livenessProbe", "resizer", "nodeDriverRegistrar", "volumemodifier")},
        "storageClasses": classes,
    }


def metrics_server_values(plan: Plan, comp: Component) -> dict[str, Any]:
    """metrics-server chart 3.13.1 values; the server makes its own serving certificate (tls.type metrics-server)."""
    model = plan.model
    ctl: MetricsServer = comp.spec  # type: ignore[assignment]
    return {
        "replicas": ctl.replicas,
        **_controller(model, ctl),
        "args": ["--kubelet-insecure-tls"] if ctl.kubelet_insecure_tls else [],
        "tls": {"type": "metrics-server"},
    }


def argo_rollouts_values(plan: Plan, comp: Component) -> dict[str, Any]:
    """argo-rollouts chart 2.41.0 values."""
    model = plan.model
    ctl: ArgoRollouts = comp.spec  # type: ignore[assignment]
    return {
        "installCRDs": True,
        "controller": {
            "replicas": ctl.replicas,
            **_k8s_placement(model, ctl.placement),
            "resources": _resources(ctl.resources),
        },
        "dashboard": {"enabled": False},
    }


# ---------------------------------------------------------------- dispatch

_LOCAL = {
    resolve.API: ("api", api_values),
    resolve.WORKER: ("worker", worker_values),
    resolve.RABBITMQ: ("rabbitmq", rabbitmq_values),
    resolve.POSTGRESQL: ("postgresql", postgresql_values),
    resolve.REDIS: ("redis", redis_values),
    resolve.PLATFORM: ("platform", platform_values),
}
_UPSTREAM = {
    resolve.KUBE_PROMETHEUS_STACK: monitoring_values,
    resolve.ARGO_ROLLOUTS: argo_rollouts_values,
    resolve.AWS_LOAD_BALANCER_CONTROLLER: aws_load_balancer_controller_values,
    resolve.AWS_EBS_CSI_DRIVER: aws_ebs_csi_driver_values,
    resolve.METRICS_SERVER: metrics_server_values,
}


def local_chart(comp: Component) -> str | None:
    """The chart under charts/ that renders this component, or None for upstream charts."""
    entry = _LOCAL.get(comp.kind)
    return entry[0] if entry else None


def values(plan: Plan, comp: Component) -> dict[str, Any]:
    """The Helm values of one component: a pure function of the plan and the component."""
    if comp.kind in _LOCAL:
        return _LOCAL[comp.kind][1](plan, comp).model_dump(by_alias=True, exclude_none=True)
    return _UPSTREAM[comp.kind](plan, comp)



