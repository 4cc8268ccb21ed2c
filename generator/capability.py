"""What a component's objects use from elsewhere in the cluster, and what components and the outside provide:
(what, name) pairs, e.g. (CRD, "argoproj.io/v1alpha1/Rollout") or (STORAGE_CLASS, "gp3")."""

CRD, STORAGE_CLASS, INGRESS_CLASS, METRICS_API = "custom resource", "storage class", "ingress class", "metrics API"
RESOURCE_METRICS = "metrics.k8s.io"
Capability = tuple[str, str]
