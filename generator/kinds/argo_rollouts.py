"""argo-rollouts: canary Rollouts and their AnalysisTemplates (upstream chart)."""

from __future__ import annotations

from typing import Any, Literal

from ..model.model import Controller
from ..render import helmvalues as hv
from .base import CONTROLLERS, Kind, api_kinds


class ArgoRollouts(Controller):
    type: Literal["argo-rollouts"]


def values(plan: Any, comp: Any) -> dict[str, Any]:
    """argo-rollouts chart 2.41.0 values."""
    model = plan.model
    ctl: ArgoRollouts = comp.spec
    return {
        "installCRDs": True,
        "controller": {
            "replicas": ctl.replicas,
            **hv.k8s_placement(model, ctl.placement),
            "resources": hv.resources(ctl.resources),
        },
        "dashboard": {"enabled": False},
    }


KIND = Kind(
    name="argo-rollouts", section=CONTROLLERS, model=ArgoRollouts, values=values, single=True,
    api_kinds=api_kinds("argoproj.io/v1alpha1", "AnalysisRun", "AnalysisTemplate", "ClusterAnalysisTemplate",
                        "Experiment", "Rollout"),
)
