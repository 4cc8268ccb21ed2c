"""kube-prometheus-stack: Prometheus, Alertmanager, Grafana, the operator and the exporters (upstream chart), the
monitoring stack every local chart's ServiceMonitor and PrometheusRule is for."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field

from ..model.model import Duration, Infra, Name, PositiveInt, Release, Resources, Strict, Storage, UpstreamChart
from ..render import helmvalues as hv
from .base import CA_BUNDLES, INFRA, Kind, SecretRef, api_kinds

class PodSpecPart(Strict):
    resources: Resources


class StoredPart(PodSpecPart):
    storage: Storage


class Prometheus(StoredPart):
    retention: Duration | Annotated[str, Field(pattern=r"^[0-9]+d$")]
    retention_size: Annotated[str, Field(pattern=r"^[0-9]+(MB|GB|TB)$")]


class Grafana(StoredPart):
    sidecar_resources: Resources
    """Each of the dashboard and datasource sidecars."""
    admin_secret: Name
    admin_user_key: str = "admin-user"
    admin_password_key: str = "admin-password"


class NodeExporter(PodSpecPart):
    namespace: Name
    """Its own namespace: hostNetwork, hostPID and hostPath need Pod Security `privileged`."""


class Thresholds(Strict):
    """Alert thresholds; every rule fires after `for` of sustained breach."""

    for_: Duration = Field("5m", alias="for")
    api_error_ratio: Annotated[float, Field(gt=0, lt=1)]
    api_latency_p95_seconds: Annotated[float, Field(gt=0)]
    worker_failure_ratio: Annotated[float, Field(gt=0, lt=1)]
    queue_ready: PositiveInt
    node_cpu_ratio: Annotated[float, Field(gt=0, lt=1)]
    node_memory_ratio: Annotated[float, Field(gt=0, lt=1)]
    node_disk_ratio: Annotated[float, Field(gt=0, lt=1)]


class Monitoring(Infra):
    type: Literal["kube-prometheus-stack"]
    chart: Annotated[UpstreamChart, Release]
    prometheus: Prometheus
    alertmanager: StoredPart
    grafana: Grafana
    operator: PodSpecPart
    admission_jobs: PodSpecPart
    config_reloader: PodSpecPart
    """The sidecar (and init container) the operator adds to the Prometheus and Alertmanager pods."""
    """The hook Jobs that make and patch the operator's webhook certificate at every sync."""
    kube_state_metrics: PodSpecPart
    node_exporter: NodeExporter
    """Runs on every node."""
    thresholds: Thresholds
    project: Name = "platform"


def values(plan: Any, comp: Any) -> dict[str, Any]:
    """kube-prometheus-stack 88.5.3 values (paths as documented in ../shared/upstream-facts.md)."""
    model = plan.model
    m: Monitoring = comp.spec
    at = hv.k8s_placement(model, m.placement)
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
            **at, "resources": hv.resources(m.operator.resources),
            "prometheusConfigReloader": {"resources": hv.resources(m.config_reloader.resources)},
            "admissionWebhooks": {"deployment": dict(at),
                                  "patch": {**at, "resources": hv.resources(m.admission_jobs.resources)}},
        },
        "prometheus": {"prometheusSpec": {
            **at,
            "resources": hv.resources(m.prometheus.resources),
            "retention": m.prometheus.retention,
            "retentionSize": m.prometheus.retention_size,
            "storageSpec": {"volumeClaimTemplate": hv.pvc(m.prometheus.storage)},
            **selectors,
        }},
        # Alertmanager never calls the Kubernetes API.
        "alertmanager": {"serviceAccount": {"automountServiceAccountToken": False}, "alertmanagerSpec": {
            **at,
            "resources": hv.resources(m.alertmanager.resources),
            "storage": {"volumeClaimTemplate": hv.pvc(m.alertmanager.storage)},
        }},
        "grafana": {
            **at,
            "resources": hv.resources(m.grafana.resources),
            # The volume belongs to Grafana's fsGroup already; the chart's root chown init container is not needed.
            "initChownData": {"enabled": False},
            # A ReadWriteOnce volume cannot be attached to two pods during a rolling update.
            "deploymentStrategy": {"type": "Recreate"},
            "persistence": {"enabled": True, "type": "pvc", "storageClassName": m.grafana.storage.storage_class,
                            "accessModes": [m.grafana.storage.access_mode], "size": m.grafana.storage.size},
            "admin": {"existingSecret": m.grafana.admin_secret, "userKey": m.grafana.admin_user_key,
                      "passwordKey": m.grafana.admin_password_key},
            "sidecar": {"resources": hv.resources(m.grafana.sidecar_resources),
                        "dashboards": {"enabled": True, "label": "grafana_dashboard", "labelValue": "1", "searchNamespace": "ALL"}},
        },
        "kube-state-metrics": {**at, "resources": hv.resources(m.kube_state_metrics.resources)},
        "prometheus-node-exporter": {
            # hostNetwork, hostPID and hostPath need a privileged namespace; the rest of the stack stays restricted.
            "namespaceOverride": m.node_exporter.namespace,
            "resources": hv.resources(m.node_exporter.resources),
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


def _storages(m: Monitoring, loc: tuple) -> list[tuple[tuple, Storage]]:
    return [(loc + (part, "storage"), getattr(m, part).storage) for part in ("prometheus", "alertmanager", "grafana")]


def _secrets(name: str, m: Monitoring) -> list[SecretRef]:
    g = m.grafana
    return [(("infra", name, "grafana", "adminSecret"), g.admin_secret, key, ("infra", name, "grafana", field))
            for field, key in (("adminUserKey", g.admin_user_key), ("adminPasswordKey", g.admin_password_key))]


# Webhook CA bundles that are not in git: the certgen hook Job patches them into the webhook configurations.
def _generated(name: str, m: Monitoring) -> list[dict[str, Any]]:
    return [{"group": "admissionregistration.k8s.io", "kind": kind, "name": f"{name}-admission",
             "jqPathExpressions": [CA_BUNDLES]}
            for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")]


KIND = Kind(
    name="kube-prometheus-stack", section=INFRA, model=Monitoring, values=values, single=True,
    api_kinds=api_kinds("monitoring.coreos.com/v1", "Alertmanager", "PodMonitor", "Probe", "Prometheus",
                        "PrometheusRule", "ServiceMonitor", "ThanosRuler")
    + api_kinds("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig", "PrometheusAgent", "ScrapeConfig"),
    # node-exporter in its own namespace; kube-system: the Services that let Prometheus scrape CoreDNS and the kubelets
    namespaces=lambda m: {m.node_exporter.namespace, "kube-system"},
    namespace_fields=lambda m, loc: [(loc + ("nodeExporter", "namespace"), m.node_exporter.namespace)],
    storages=_storages, secrets=_secrets, generated=_generated,
)
