"""aws-load-balancer-controller: the ALBs of the Ingresses and the canaries' traffic split (upstream chart)."""

from __future__ import annotations

from typing import Any, Literal

from ..capability import INGRESS_CLASS
from ..model.model import Controller
from ..render import helmvalues as hv
from .base import CA_BUNDLES, CONTROLLERS, Kind, api_kinds


class AwsLoadBalancerController(Controller):
    """Reconciles the ALB Ingresses (and the canaries' traffic split); provides the ingress class of platform.ingress."""

    type: Literal["aws-load-balancer-controller"]
    webhook_certificate: Literal["generated-at-sync"] = "generated-at-sync"
    """How the admission webhooks get their TLS certificate. `generated-at-sync`: the chart's genCA, run by Argo CD
    at every render; the Application ignores the generated fields and rendered/ shows a placeholder."""


def values(plan: Any, comp: Any) -> dict[str, Any]:
    """aws-load-balancer-controller chart 3.5.0 values: the IngressClass and IngressClassParams of platform.ingress."""
    model = plan.model
    ctl: AwsLoadBalancerController = comp.spec
    ing = model.platform.ingress
    return {
        "clusterName": model.cluster.name,
        "region": model.cluster.region,
        "replicaCount": ctl.replicas,
        **hv.controller(model, ctl),
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


def _generated(name: str, ctl: AwsLoadBalancerController) -> list[dict[str, Any]]:
    """genCA: helm makes the webhook certificate anew at every render; Argo CD keeps the live one."""
    if ctl.webhook_certificate != "generated-at-sync":
        return []
    return [{"group": "", "kind": "Secret", "name": "aws-load-balancer-tls", "jsonPointers": ["/data"]}] + [
        {"group": "admissionregistration.k8s.io", "kind": kind, "name": "aws-load-balancer-webhook",
         "jqPathExpressions": [CA_BUNDLES]}
        for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")]


KIND = Kind(
    name="aws-load-balancer-controller", section=CONTROLLERS, model=AwsLoadBalancerController, values=values, single=True,
    api_kinds=api_kinds("elbv2.k8s.aws/v1beta1", "ALBTargetControlConfig", "IngressClassParams", "TargetGroupBinding")
    + api_kinds("elbv2.k8s.aws/v1alpha1", "TargetGroupBinding") + api_kinds("aga.k8s.aws/v1beta1", "GlobalAccelerator")
    + tuple(k for v in ("v1", "v1beta1") for k in api_kinds(f"gateway.k8s.aws/{v}", "ListenerRuleConfiguration",
                                                              "LoadBalancerConfiguration", "TargetGroupConfiguration")),
    provides=lambda model, ctl: [(INGRESS_CLASS, model.platform.ingress.class_name)], generated=_generated,
)
