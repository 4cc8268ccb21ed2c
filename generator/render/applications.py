"""Model -> Argo CD objects: one Application per component, the root app-of-apps, AppProjects, argocd-cm."""

from __future__ import annotations

from typing import Any

from .. import kinds, labels
from ..model.model import IN_CLUSTER, ApiService, Model
from ..plan import resolve
from ..plan.plan import Plan
from ..plan.resolve import Component
from .helmvalues import local_chart
ARGO_API = "argoproj.io/v1alpha1"

# The Lua health check Argo CD removed from Application in 1.8: without it the root app does not wait
# for a wave's child Applications to become healthy before syncing the next wave.
APPLICATION_HEALTH_LUA = """\
hs = {}
hs.status = "Progressing"
hs.message = ""
if obj.status ~= nil and obj.status.health ~= nil then
  hs.status = obj.status.health.status
  if obj.status.health.message ~= nil then
    hs.message = obj.status.health.message
  end
end
return hs
"""


def argo_name(model: Model, name: str) -> str:
    """The name of an environment's Application or AppProject for a component, project or the root app."""
    return model.argocd.name_prefix + name


def _metadata(model: Model, name: str, component: str, annotations: dict[str, str] | None = None,
              finalizers: list[str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": model.argocd.namespace,
        "labels": {labels.PART_OF: model.cluster.name, labels.COMPONENT: component, labels.MANAGED_BY: labels.MANAGER},
    }
    if annotations:
        meta["annotations"] = annotations
    if finalizers:
        meta["finalizers"] = finalizers
    return meta


def _sync_policy(model: Model, *options: str) -> dict[str, Any]:
    a = model.argocd
    return {
        "automated": {"prune": True, "selfHeal": True},
        "syncOptions": ["CreateNamespace=false", *options],
        "retry": {"limit": a.retry_limit,
                  "backoff": {"duration": a.retry_backoff, "factor": a.retry_backoff_factor, "maxDuration": a.retry_backoff_max}},
    }


def _generated(comp: Component) -> list[dict[str, Any]]:
    """Fields an upstream chart makes at render or run time; rendered/ shows a placeholder, Argo CD keeps the live value."""
    kind = kinds.of(comp.kind)
    return kind.generated(comp.name, comp.spec) if kind else []


def ignore_differences(plan: Plan, comp: Component) -> list[dict[str, Any]]:
    """Fields other controllers own at run time; without these Argo CD would flap OutOfSync or fight them."""
    if comp.kind != resolve.API:
        return _generated(comp)
    svc: ApiService = comp.spec  # type: ignore[assignment]
    canary = plan.canary(comp)
    out = []
    if svc.hpa is not None:  # the HPA owns replicas
        kind = ("argoproj.io", "Rollout") if canary else ("apps", "Deployment")
        out.append({"group": kind[0], "kind": kind[1], "name": comp.name, "jsonPointers": ["/spec/replicas"]})
    if canary:
        # Argo Rollouts pins the stable/canary Services to a pod-template hash and writes the ALB
        # weights into the Ingress while a rollout runs.
        for suffix in ("stable", "canary"):
            out.append({"group": "", "kind": "Service", "name": f"{comp.name}-{suffix}",
                        "jsonPointers": [f"/spec/selector/{labels.ROLLOUTS_POD_TEMPLATE_HASH}"]})
        if svc.path is not None:
            pointer = labels.alb_action(comp.name).replace("~", "~0").replace("/", "~1")
            out.append({"group": "networking.k8s.io", "kind": "Ingress", "name": comp.name,
                        "jsonPointers": [f"/metadata/annotations/{pointer}"]})
    return out


def application(plan: Plan, comp: Component) -> dict[str, Any]:
    model, layout = plan.model, plan.layout
    c = model.cluster
    chart = local_chart(comp)
    annotations = {labels.SYNC_WAVE: str(plan.waves[comp.name])}
    options: list[str] = []
    # Pinned, so Argo CD renders exactly what rendered/ shows whatever the cluster reports about itself.
    pinned = {"kubeVersion": c.kubernetes_version, "apiVersions": list(plan.api_versions)}
    if chart is not None:
        source: dict[str, Any] = {
            "repoURL": c.repo_url,
            "targetRevision": c.target_revision,
            "path": layout.chart_dir(chart),
            "helm": {"releaseName": comp.name, "valueFiles": [f"../../{layout.values_file(comp.name)}"], **pinned},
        }
        sources = {"source": source}
        # Only these paths can change this app's manifests: other commits skip re-rendering it.
        annotations[labels.MANIFEST_GENERATE_PATHS] = ";".join(
            f"/{p}" for p in (layout.chart_dir(chart), layout.chart_dir("lib"), layout.values_file(comp.name)))
    else:
        up = comp.spec.chart  # type: ignore[attr-defined]
        sources = {"sources": [
            {"repoURL": up.repo_url, "chart": up.name, "targetRevision": up.version,
             "helm": {"releaseName": comp.name, "valueFiles": [f"$values/{layout.values_file(comp.name)}"], **pinned}},
            {"repoURL": c.repo_url, "targetRevision": c.target_revision, "ref": "values"},
        ]}
        options.append("ServerSideApply=true")  # the upstream CRDs exceed the client-side apply annotation limit
    ignored = ignore_differences(plan, comp)
    if ignored:
        options.append("RespectIgnoreDifferences=true")
    spec: dict[str, Any] = {
        "project": argo_name(model, comp.project),
        **sources,
        "destination": {"server": c.server, "namespace": comp.namespace or model.platform.destination_namespace},
        "syncPolicy": _sync_policy(model, *options),
        "revisionHistoryLimit": model.argocd.revision_history_limit,
    }
    if ignored:
        spec["ignoreDifferences"] = ignored
    # Deleting the Application deletes its resources, except where that would destroy data or
    # cluster-wide state (volumes, namespaces, CRDs and every object of their kinds).
    finalizers = None if comp.stateful else [labels.RESOURCES_FINALIZER]
    return {
        "apiVersion": ARGO_API,
        "kind": "Application",
        "metadata": _metadata(model, argo_name(model, comp.name), comp.kind, annotations, finalizers),
        "spec": spec,
    }


def applications(plan: Plan) -> dict[str, dict[str, Any]]:
    return {c.name: application(plan, c) for c in plan.components}


# ---------------------------------------------------------------- bootstrap (argocd/)


def root_application(plan: Plan) -> dict[str, Any]:
    model = plan.model
    c = model.cluster
    return {
        "apiVersion": ARGO_API,
        "kind": "Application",
        # No finalizer: deleting the root must never cascade into every component.
        "metadata": _metadata(model, argo_name(model, model.argocd.root_app), "bootstrap"),
        "spec": {
            "project": argo_name(model, model.argocd.root_project),
            # The environment's AppProjects (synced first: wave -1) and its component Applications. Only this root
            # Application, and argocd-cm.yaml (shared by every environment of one Argo CD), are applied by hand.
            "sources": [{"repoURL": c.repo_url, "targetRevision": c.target_revision, "path": path,
                         "directory": {"recurse": False}}
                        for path in (plan.layout.projects_dir, plan.layout.apps_dir)],
            "destination": {"server": IN_CLUSTER, "namespace": model.argocd.namespace},
            "syncPolicy": _sync_policy(model),
            "revisionHistoryLimit": model.argocd.revision_history_limit,
        },
    }


def _repos(model: Model, comps: list[Component]) -> list[str]:
    repos = {model.cluster.repo_url}
    for comp in comps:
        if comp.upstream:
            repos.add(comp.spec.chart.repo_url)  # type: ignore[attr-defined]
    return sorted(repos)


def _group_kind(entry: str) -> dict[str, str]:
    group, _, kind = entry.rpartition("/")
    return {"group": group, "kind": kind}


PROJECT_WAVE = "-1"  # AppProjects sync before every component Application (waves 0 and up)


def projects(plan: Plan) -> dict[str, dict[str, Any]]:
    model = plan.model
    out: dict[str, dict[str, Any]] = {}
    comps = plan.components
    for name, project in model.argocd.projects.items():
        if name == model.argocd.root_project:
            spec = {
                "description": project.description,
                "sourceRepos": [model.cluster.repo_url],
                "destinations": [{"server": IN_CLUSTER, "namespace": model.argocd.namespace}],
                "clusterResourceWhitelist": [],
                "namespaceResourceWhitelist": [{"group": "argoproj.io", "kind": "AppProject"},
                                               {"group": "argoproj.io", "kind": "Application"}],
            }
        else:
            members = [c for c in comps if c.project == name]
            namespaces: set[str] = set()
            for comp in members:
                namespaces |= plan.namespaces[comp.name]
            spec = {
                "description": project.description,
                "sourceRepos": _repos(model, members) if members else [model.cluster.repo_url],
                "destinations": [{"server": model.cluster.server, "namespace": ns} for ns in sorted(namespaces)],
                # Least privilege: no cluster-scoped kind unless the model lists it for this project.
                "clusterResourceWhitelist": [_group_kind(k) for k in project.cluster_resources],
                "orphanedResources": {"warn": True},
            }
        out[name] = {
            "apiVersion": ARGO_API,
            "kind": "AppProject",
            # Argo CD's project finalizer refuses to delete a project that Applications still use.
            # Synced by the root Application before the Applications that use it (wave -1).
            "metadata": {**_metadata(model, argo_name(model, name), "bootstrap", {labels.SYNC_WAVE: PROJECT_WAVE}),
                         "finalizers": [labels.RESOURCES_FINALIZER]},
            "spec": spec,
        }
    return out


def argocd_cm(model: Model) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "argocd-cm",
            "namespace": model.argocd.namespace,
            "labels": {labels.NAME: "argocd-cm", labels.PART_OF: "argocd"},
        },
        "data": {labels.ARGOCD_CM_HEALTH_APPLICATION: APPLICATION_HEALTH_LUA},
    }
