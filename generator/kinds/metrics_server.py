"""metrics-server: the resource metrics API that HorizontalPodAutoscalers and `kubectl top` read (upstream chart)."""

from __future__ import annotations

from typing import Any, Literal

from ..capability import METRICS_API, RESOURCE_METRICS
from ..model.model import Controller
from ..render import helmvalues as hv
from .base import CONTROLLERS, Kind, api_kinds


class MetricsServer(Controller):
    """Serves the resource metrics API (metrics.k8s.io) that HorizontalPodAutoscalers read."""

    type: Literal["metrics-server"]
    kubelet_insecure_tls: bool
    """kubeadm's kubelets serve self-signed certificates: true skips their verification (else sign them)."""


def values(plan: Any, comp: Any) -> dict[str, Any]:
    """metrics-server chart 3.13.1 values; the server makes its own serving certificate (tls.type metrics-server)."""
    model = plan.model
    ctl: MetricsServer = comp.spec
    return {
        "replicas": ctl.replicas,
        **hv.controller(model, ctl),
        "args": ["--kubelet-insecure-tls"] if ctl.kubelet_insecure_tls else [],
        "tls": {"type": "metrics-server"},
    }


KIND = Kind(
    name="metrics-server", section=CONTROLLERS, model=MetricsServer, values=values, single=True,
    # An aggregated API (APIService), not CRDs: what HPAs and `kubectl top` read.
    api_kinds=api_kinds("metrics.k8s.io/v1beta1", "NodeMetrics", "PodMetrics"),
    provides=lambda model, ctl: [(METRICS_API, RESOURCE_METRICS)],
)
