"""Every label and annotation key the generator writes, in one place."""

# Kubernetes recommended labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/)
NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
VERSION = "app.kubernetes.io/version"
HELM_CHART = "helm.sh/chart"
COMPONENT = "app.kubernetes.io/component"
PART_OF = "app.kubernetes.io/part-of"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "eco2-gitops"

# Set by Kubernetes on every namespace; what NetworkPolicies select namespaces by.
NAMESPACE_NAME = "kubernetes.io/metadata.name"

# Argo CD
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
MANIFEST_GENERATE_PATHS = "argocd.argoproj.io/manifest-generate-paths"
RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
ARGOCD_CM_HEALTH_APPLICATION = "resource.customizations.health.argoproj.io_Application"

# Argo Rollouts
ROLLOUTS_POD_TEMPLATE_HASH = "rollouts-pod-template-hash"

# AWS Load Balancer Controller (Ingress annotations)
ALB = "alb.ingress.kubernetes.io"
ALB_GROUP = f"{ALB}/group.name"
ALB_SCHEME = f"{ALB}/scheme"
ALB_TARGET_TYPE = f"{ALB}/target-type"
ALB_LISTEN_PORTS = f"{ALB}/listen-ports"
ALB_SSL_REDIRECT = f"{ALB}/ssl-redirect"
ALB_HEALTHCHECK_PATH = f"{ALB}/healthcheck-path"


def alb_action(service: str) -> str:
    """The annotation Argo Rollouts writes into the Ingress to split traffic for `service`."""
    return f"{ALB}/actions.{service}"


# Pod Security admission
POD_SECURITY_ENFORCE = "pod-security.kubernetes.io/enforce"
POD_SECURITY_AUDIT = "pod-security.kubernetes.io/audit"
POD_SECURITY_WARN = "pod-security.kubernetes.io/warn"

# Selecting cluster DNS in NetworkPolicies
KUBE_DNS = {"k8s-app": "kube-dns"}

# Prometheus pods created by the operator
PROMETHEUS_POD = {NAME: "prometheus"}
