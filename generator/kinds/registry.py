"""The registry of kinds, in order."""

from __future__ import annotations

from . import (
    argo_rollouts, aws_ebs_csi_driver, aws_load_balancer_controller, kube_prometheus_stack, metrics_server,
    postgresql, rabbitmq, redis,
)
from .base import Kind

# In this order: the model's unions (and so its JSON schema), the checks, and the charts' list.
_MODULES = (rabbitmq, postgresql, redis, kube_prometheus_stack,
            argo_rollouts, aws_load_balancer_controller, aws_ebs_csi_driver, metrics_server)
KINDS: tuple[Kind, ...] = tuple(m.KIND for m in _MODULES)
_BY_NAME = {k.name: k for k in KINDS}
assert len(_BY_NAME) == len(KINDS), "two kinds share a name"


def of(name: str) -> Kind | None:
    """The kind of that name (a component's kind), or None for api, worker and platform."""
    return _BY_NAME.get(name)


def in_section(section: str) -> tuple[Kind, ...]:
    return tuple(k for k in KINDS if k.section == section)


def local_charts() -> dict[str, type]:
    """chart under charts/ -> its values class, for every kind with a local chart."""
    return {k.chart: k.values_model for k in KINDS if k.chart is not None and k.values_model is not None}


