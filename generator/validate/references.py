"""Cross-object reference checks over everything rendered for an environment.

Each check yields (obj, check id, field path, message, model field suffix). What no single schema
can see: a Service that selects no pod, an Ingress pointing at a port nobody exposes, a Rollout
argument its AnalysisTemplate does not declare, a pod that could land on the wrong node.
"""

from __future__ import annotations

import os

from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

from .. import kinds, labels, layout
from ..kinds.metrics_server import KIND as METRICS_SERVER
from ..model.model import Model
from ..plan import resolve
from .capacity import fits
from .objects import OPERATOR_PODS, Index, Obj, containers

Finding = tuple  # (obj, check, path, message, model_suffix)


class Context(NamedTuple):
    index: Index
    model: Model | None
    repo: Path  # the repository checkout Argo CD would read (staging or working tree)
    builtin: frozenset = frozenset()  # (apiVersion, kind) the API server serves without any CRD
    generated: frozenset = frozenset()  # paths of the generated tree under validation (not all of it is on disk)

    def has_file(self, rel: str) -> bool:
        rel = os.path.normpath(rel)
        return rel in self.generated or (self.repo / rel).is_file()

    def has_dir(self, rel: str) -> bool:
        rel = os.path.normpath(rel)
        return (self.repo / rel).is_dir() or any(p.startswith(rel + "/") for p in self.generated)


def run(ctx: Context) -> Iterator[Finding]:
    for fn in CHECKS:
        yield from fn(ctx)


def _ports_of(podspec: dict[str, Any]) -> tuple[set[str], set[int]]:
    names, numbers = set(), set()
    for _, _, c in containers(podspec, init=False):
        for p in c.get("ports") or []:
            numbers.add(p.get("containerPort"))
            if p.get("name"):
                names.add(p["name"])
    return names, numbers


# ---------------------------------------------------------------- Services, Ingresses


def service_selectors(ctx: Context) -> Iterator[Finding]:
    for svc in ctx.index.kind("Service"):
        spec = svc.doc.get("spec") or {}
        selector = spec.get("selector")
        if not selector:
            continue  # headless-without-selector / external: nothing to resolve
        pods = ctx.index.pods_matching(svc.namespace, selector)
        if not pods:
            yield svc, "ref.service-selector", "spec.selector", f"selects no pod in namespace {svc.namespace!r} ({selector})", ()
            continue
        for i, port in enumerate(spec.get("ports") or []):
            target = port.get("targetPort", port.get("port"))
            by_name = isinstance(target, str)
            if not any(target in _ports_of(p.pod()[1])[0 if by_name else 1] for p in pods):
                yield (svc, "ref.target-port", f"spec.ports[{i}].targetPort",
                       f"targetPort {target!r} is not a container port of the selected pods ({', '.join(p.ref for p in pods)})", ())


def _service_port(svc: Obj, port: dict[str, Any]) -> bool:
    ports = (svc.doc.get("spec") or {}).get("ports") or []
    if "number" in port:
        return any(p.get("port") == port["number"] for p in ports)
    return any(p.get("name") == port.get("name") for p in ports)


def _rollouts_routing(ctx: Context) -> dict[tuple[str, str], set[str]]:
    """(namespace, Ingress) -> the root services Argo Rollouts will write an ALB action for on it (read once: a
    quarter of 1000 services are canaries, each with such an Ingress)."""
    out: dict[tuple[str, str], set[str]] = {}
    for ro in ctx.index.kind("Rollout"):
        alb = (((ro.doc.get("spec") or {}).get("strategy") or {}).get("canary") or {}).get("trafficRouting", {}).get("alb")
        if alb:
            root = alb.get("rootService") or ro.doc["spec"]["strategy"]["canary"].get("stableService")
            for ingress in [alb.get("ingress")] + list(alb.get("ingresses") or []):
                out.setdefault((ro.namespace, ingress), set()).add(root)
    return out


def ingress_backends(ctx: Context) -> Iterator[Finding]:
    routing = _rollouts_routing(ctx)
    for ing in ctx.index.kind("Ingress"):
        spec = ing.doc.get("spec") or {}
        backends = []
        if spec.get("defaultBackend"):
            backends.append(("spec.defaultBackend", spec["defaultBackend"]))
        for r, rule in enumerate(spec.get("rules") or []):
            for p, path in enumerate((rule.get("http") or {}).get("paths") or []):
                backends.append((f"spec.rules[{r}].http.paths[{p}].backend", path.get("backend") or {}))
        for where, backend in backends:
            service = backend.get("service")
            if not service:
                continue
            svc = ctx.index.get("Service", ing.namespace, service["name"])
            if svc is None:
                yield ing, "ref.ingress-backend", where + ".service.name", f"Service {service['name']!r} does not exist in {ing.namespace!r}", ()
                continue
            port = service.get("port") or {}
            annotations = (ing.doc.get("metadata") or {}).get("annotations") or {}
            if port.get("name") == "use-annotation":
                action = labels.alb_action(service["name"])
                if action not in annotations and service["name"] not in routing.get((ing.namespace, ing.name), ()):
                    yield (ing, "ref.ingress-backend", where + ".service.port",
                           f"port 'use-annotation' needs the annotation {action} or a Rollout routing through this Ingress", ())
            elif not _service_port(svc, port):
                yield ing, "ref.ingress-backend", where + ".service.port", f"Service {svc.name!r} has no port {port}", ()


# ---------------------------------------------------------------- Rollouts


def rollout_references(ctx: Context) -> Iterator[Finding]:
    for ro in ctx.index.kind("Rollout"):
        canary = ((ro.doc.get("spec") or {}).get("strategy") or {}).get("canary") or {}
        for field in ("stableService", "canaryService"):
            name = canary.get(field)
            if name and ctx.index.get("Service", ro.namespace, name) is None:
                yield ro, "ref.rollout", f"spec.strategy.canary.{field}", f"Service {name!r} does not exist", ("delivery",)
        alb = (canary.get("trafficRouting") or {}).get("alb")
        if alb:
            root = alb.get("rootService") or canary.get("stableService")
            root_svc = ctx.index.get("Service", ro.namespace, root) if root else None
            if root and root_svc is None:
                yield ro, "ref.rollout", "spec.strategy.canary.trafficRouting.alb.rootService", f"Service {root!r} does not exist", ("delivery",)
            elif root_svc is not None and not _service_port(root_svc, {"number": alb.get("servicePort")}):
                yield (ro, "ref.rollout", "spec.strategy.canary.trafficRouting.alb.servicePort",
                       f"Service {root!r} has no port {alb.get('servicePort')}", ("delivery",))
            for ingress in [alb.get("ingress")] + list(alb.get("ingresses") or []):
                if not ingress:
                    continue
                ing = ctx.index.get("Ingress", ro.namespace, ingress)
                if ing is None:
                    yield ro, "ref.rollout", "spec.strategy.canary.trafficRouting.alb.ingress", f"Ingress {ingress!r} does not exist", ("delivery",)
                elif root and not any(
                    ((p.get("backend") or {}).get("service") or {}).get("name") == root
                    for rule in (ing.doc.get("spec") or {}).get("rules") or []
                    for p in (rule.get("http") or {}).get("paths") or []
                ):
                    yield (ro, "ref.rollout", "spec.strategy.canary.trafficRouting.alb.ingress",
                           f"Ingress {ingress!r} has no rule whose backend is the root Service {root!r}", ("delivery",))
        yield from _analysis_refs(ctx, ro, canary)


def _analysis_refs(ctx: Context, ro: Obj, canary: dict[str, Any]) -> Iterator[Finding]:
    uses = []
    if canary.get("analysis"):
        uses.append(("spec.strategy.canary.analysis", canary["analysis"]))
    for i, step in enumerate(canary.get("steps") or []):
        if step.get("analysis"):
            uses.append((f"spec.strategy.canary.steps[{i}].analysis", step["analysis"]))
    for where, analysis in uses:
        passed = {a["name"] for a in analysis.get("args") or []}
        declared: set[str] = set()
        required: set[str] = set()
        for t, ref in enumerate(analysis.get("templates") or []):
            kind = "ClusterAnalysisTemplate" if ref.get("clusterScope") else "AnalysisTemplate"
            tmpl = ctx.index.get(kind, "" if ref.get("clusterScope") else ro.namespace, ref.get("templateName"))
            if tmpl is None:
                yield ro, "ref.analysis", f"{where}.templates[{t}].templateName", f"{kind} {ref.get('templateName')!r} does not exist", ("delivery", "analysis")
                continue
            for arg in (tmpl.doc.get("spec") or {}).get("args") or []:
                declared.add(arg["name"])
                if "value" not in arg and "valueFrom" not in arg:
                    required.add(arg["name"])
        for name in sorted(passed - declared):
            yield ro, "ref.analysis-args", f"{where}.args", f"passes argument {name!r} that no referenced template declares", ("delivery", "analysis")
        for name in sorted(required - passed):
            yield ro, "ref.analysis-args", f"{where}.args", f"does not pass argument {name!r}, which its template requires", ("delivery", "analysis")


# ---------------------------------------------------------------- HPA, PDB, ServiceMonitor, NetworkPolicy


def scale_targets(ctx: Context) -> Iterator[Finding]:
    for hpa in ctx.index.kind("HorizontalPodAutoscaler"):
        ref = (hpa.doc.get("spec") or {}).get("scaleTargetRef") or {}
        target = ctx.index.get(ref.get("kind", ""), hpa.namespace, ref.get("name", ""))
        if target is None:
            yield hpa, "ref.scale-target", "spec.scaleTargetRef", f"{ref.get('kind')} {ref.get('name')!r} does not exist", ("hpa",)
        elif (target.doc.get("apiVersion") or "").split("/")[0] != (ref.get("apiVersion") or "").split("/")[0]:
            yield (hpa, "ref.scale-target", "spec.scaleTargetRef.apiVersion",
                   f"{ref.get('apiVersion')} does not match the target's {target.doc.get('apiVersion')}", ("hpa",))


def disruption_budgets(ctx: Context) -> Iterator[Finding]:
    for pdb in ctx.index.kind("PodDisruptionBudget"):
        selector = (pdb.doc.get("spec") or {}).get("selector") or {}
        if not ctx.index.pods_selected(pdb.namespace, selector):
            yield pdb, "ref.pdb", "spec.selector", "selects no pod of any workload", ()


def service_monitors(ctx: Context) -> Iterator[Finding]:
    for sm in ctx.index.kind("ServiceMonitor"):
        spec = sm.doc.get("spec") or {}
        ns_sel = spec.get("namespaceSelector") or {}
        namespaces = None if ns_sel.get("any") else set(ns_sel.get("matchNames") or [sm.namespace])
        services = ctx.index.services_selected(namespaces, spec.get("selector"))
        if not services:
            yield sm, "ref.service-monitor", "spec.selector", "selects no Service", ()
            continue
        for i, ep in enumerate(spec.get("endpoints") or []):
            port = ep.get("port")
            if port and not any(p.get("name") == port for s in services for p in (s.doc.get("spec") or {}).get("ports") or []):
                yield sm, "ref.service-monitor", f"spec.endpoints[{i}].port", f"no selected Service has a port named {port!r}", ()


def _namespaces(ctx: Context) -> set[str]:
    known = set(ctx.index.namespaces) | {"kube-system", "default"}
    if ctx.model is not None:
        known |= set(ctx.model.platform.namespaces) | {ctx.model.argocd.namespace}
    return known


def network_policies(ctx: Context) -> Iterator[Finding]:
    hydrated = {w.namespace for w in ctx.index.workloads}
    for np in ctx.index.kind("NetworkPolicy"):
        spec = np.doc.get("spec") or {}
        sel = spec.get("podSelector") or {}
        if sel and not ctx.index.pods_selected(np.namespace, sel):
            yield np, "ref.network-policy", "spec.podSelector", "selects no pod in its namespace", ()
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            for r, rule in enumerate(spec.get(direction) or []):
                for p, peer in enumerate(rule.get(peers_key) or []):
                    if "ipBlock" in peer:
                        continue
                    where = f"spec.{direction}[{r}].{peers_key}[{p}]"
                    ns_labels = ((peer.get("namespaceSelector") or {}).get("matchLabels") or {})
                    ns = ns_labels.get(labels.NAMESPACE_NAME, np.namespace if "namespaceSelector" not in peer else None)
                    if ns is None:
                        continue  # selects namespaces by other labels: nothing to resolve statically
                    if ns not in _namespaces(ctx):
                        yield np, "ref.network-policy", where + ".namespaceSelector", f"namespace {ns!r} does not exist", ()
                    elif ns in hydrated and peer.get("podSelector") and not ctx.index.pods_selected(ns, peer["podSelector"]):
                        yield np, "ref.network-policy", where + ".podSelector", f"selects no pod in namespace {ns!r}", ()


# ---------------------------------------------------------------- Secrets, ConfigMaps


def _pod_refs(podspec: dict[str, Any]) -> Iterator[tuple[str, str, str, str | None, bool]]:
    """(field path, kind, name, key, optional) of every Secret/ConfigMap a pod spec references."""
    for field, i, c in containers(podspec):
        for e, env in enumerate(c.get("env") or []):
            ref = (env.get("valueFrom") or {})
            for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                if key in ref:
                    r = ref[key]
                    yield f"spec.template.spec.{field}[{i}].env[{e}]", kind, r["name"], r.get("key"), bool(r.get("optional"))
        for e, src in enumerate(c.get("envFrom") or []):
            for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                if key in src:
                    yield f"spec.template.spec.{field}[{i}].envFrom[{e}]", kind, src[key]["name"], None, bool(src[key].get("optional"))
    for v, vol in enumerate(podspec.get("volumes") or []):
        if "secret" in vol:
            yield f"spec.template.spec.volumes[{v}]", "Secret", vol["secret"]["secretName"], None, bool(vol["secret"].get("optional"))
        if "configMap" in vol:
            yield f"spec.template.spec.volumes[{v}]", "ConfigMap", vol["configMap"]["name"], None, bool(vol["configMap"].get("optional"))
        for s, source in enumerate((vol.get("projected") or {}).get("sources") or []):
            for kind, key in (("Secret", "secret"), ("ConfigMap", "configMap")):
                if key in source:
                    yield f"spec.template.spec.volumes[{v}].projected.sources[{s}]", kind, source[key]["name"], None, bool(source[key].get("optional"))


def config_references(ctx: Context) -> Iterator[Finding]:
    external = ctx.model.secrets if ctx.model is not None else {}
    for w in ctx.index.workloads:
        for where, kind, name, key, optional in _pod_refs(w.pod()[1]):
            if optional or ctx.index.get(kind, w.namespace, name) is not None:
                continue
            declared = external.get(name) if kind == "Secret" else None
            if declared is None:
                yield w, f"ref.{kind.lower()}", where, f"{kind} {name!r} is neither rendered nor declared external in the model", ("secretEnv",)
            elif w.namespace not in declared.namespaces:
                yield w, "ref.secret", where, f"Secret {name!r} is declared only in {', '.join(declared.namespaces)}, not {w.namespace!r}", ("secretEnv",)
            elif key is not None and key not in declared.keys:
                yield w, "ref.secret", where, f"Secret {name!r} has no key {key!r} in the model", ("secretEnv",)


def volume_mounts(ctx: Context) -> Iterator[Finding]:
    """Every mount names a volume of its pod (or one of the StatefulSet's claim templates)."""
    for w in ctx.index.workloads:
        podspec = w.pod()[1]
        volumes = {v.get("name") for v in podspec.get("volumes") or []}
        if w.kind == "StatefulSet":
            volumes |= {(t.get("metadata") or {}).get("name") for t in (w.doc.get("spec") or {}).get("volumeClaimTemplates") or []}
        for field, i, c in containers(podspec):
            for m, mount in enumerate(c.get("volumeMounts") or []):
                if mount.get("name") not in volumes:
                    yield (w, "ref.volume-mount", f"spec.template.spec.{field}[{i}].volumeMounts[{m}].name",
                           f"mounts volume {mount.get('name')!r}, which the pod does not have", ())


# ---------------------------------------------------------------- placement


def _scheduling(obj: Obj) -> tuple[str, dict[str, Any]] | None:
    """(field prefix, the fields that decide where pods land) of a workload or of an operator-managed pod set."""
    pod = obj.pod()
    if pod is None:
        return None
    return ("spec" if obj.kind in ("Pod", *OPERATOR_PODS) else "spec.template.spec"), pod[1]


def placement(ctx: Context) -> Iterator[Finding]:
    """Each pod can land on exactly the node the model placed its component on; DaemonSet pods on every node."""
    if ctx.model is None:
        return
    model = ctx.model
    intended = {}
    for loc, where in resolve.placements(model):
        intended[loc[-2]] = where.node
    seen: dict[str, list[str]] = {}
    for w in ctx.index.workloads:
        found = _scheduling(w)
        if found is None:
            continue
        prefix, podspec = found
        can = fits(model, podspec, seen)
        if w.kind == "DaemonSet":
            missing = sorted(set(model.nodes) - set(can))
            if missing:
                yield (w, "ref.placement", f"{prefix}.tolerations", f"runs on {len(can)} of {len(model.nodes)} nodes; "
                       f"not on {', '.join(missing)} (a node agent must run on every node)", ())
            continue
        node = intended.get(w.app or "")
        if node is None:
            continue
        if can != [node]:
            # Kept off its node only by a taint (tolerating every taint, it would land there): the tolerations are the
            # field to fix. Otherwise the node selector (or affinity) picks another node, or more than that one.
            untainted = fits(model, {**podspec, "tolerations": [{"operator": "Exists"}]}, seen)
            where = f"{prefix}.tolerations" if node not in can and node in untainted else f"{prefix}.nodeSelector"
            shown = ", ".join(can) or "no node"
            yield w, "ref.placement", where, f"can be scheduled on {shown}; the model places it on {node!r} only", ("placement",)


# ---------------------------------------------------------------- Applications and projects


def applications(ctx: Context) -> Iterator[Finding]:
    projects = {o.name: o for o in ctx.index.kind("AppProject")}
    for app in ctx.index.kind("Application"):
        spec = app.doc.get("spec") or {}
        sources = spec.get("sources") or ([spec["source"]] if spec.get("source") else [])
        refs = {s["ref"]: s for s in sources if s.get("ref")}
        for i, src in enumerate(sources):
            where = f"spec.sources[{i}]" if spec.get("sources") else "spec.source"
            if "path" in src and not ctx.has_dir(src["path"]):
                yield app, "ref.app-source", where + ".path", f"chart path {src['path']!r} does not exist in the repository", ()
            for f, vf in enumerate((src.get("helm") or {}).get("valueFiles") or []):
                if vf.startswith("$"):
                    ref, _, rest = vf[1:].partition("/")
                    ok = ref in refs and ctx.has_file(rest)
                elif "path" in src:
                    ok = ctx.has_file(f"{src['path']}/{vf}")
                else:
                    ok = False
                if not ok:
                    yield app, "ref.app-source", f"{where}.helm.valueFiles[{f}]", f"value file {vf!r} does not exist", ()
        project = projects.get(spec.get("project"))
        if project is None:
            yield app, "ref.app-project", "spec.project", f"AppProject {spec.get('project')!r} is not rendered in {layout.BOOTSTRAP}/<env>/projects", ()
            continue
        pspec = project.doc.get("spec") or {}
        dest = spec.get("destination") or {}
        if not any(d.get("namespace") in (dest.get("namespace"), "*") and d.get("server") in (dest.get("server"), "*")
                   for d in pspec.get("destinations") or []):
            yield app, "ref.app-project", "spec.destination", f"namespace {dest.get('namespace')!r} is not a destination of project {project.name!r}", ("namespace",)
        allowed = {d.get("namespace") for d in pspec.get("destinations") or []}
        if "*" not in allowed:
            for obj in ctx.index.by_app.get(app.app, []):
                if layout.place(obj.source).dir in ("manifests", "crds") \
                        and obj.namespace and obj.namespace not in allowed:
                    yield (obj, "ref.app-project", "metadata.namespace", f"namespace {obj.namespace!r} is not a "
                           f"destination of project {project.name!r}: Argo CD refuses to sync it", ("namespace",))
        repos = set(pspec.get("sourceRepos") or [])
        for i, src in enumerate(sources):
            if src.get("repoURL") not in repos and "*" not in repos:
                yield app, "ref.app-project", f"spec.sources[{i}].repoURL" if spec.get("sources") else "spec.source.repoURL", \
                    f"{src.get('repoURL')} is not a source repository of project {project.name!r}", ()


def sync_waves(ctx: Context) -> Iterator[Finding]:
    """The committed waves put every component after everything it depends on."""
    if ctx.model is None:
        return
    apps = {a.app: a for a in ctx.index.kind("Application") if a.app}  # by component (the file), not by prefixed name

    def wave(app: Obj) -> int:
        return int(((app.doc.get("metadata") or {}).get("annotations") or {}).get(labels.SYNC_WAVE, "0"))

    for comp in resolve.components(ctx.model):
        app = apps.get(comp.name)
        if app is None:
            continue
        for dep, why in resolve.dependencies(ctx.model, comp):
            if dep in apps and wave(apps[dep]) >= wave(app):
                yield (app, "ref.sync-wave", f'metadata.annotations["{labels.SYNC_WAVE}"]',
                       f"wave {wave(app)} does not come after {dep}'s wave {wave(apps[dep])} ({dep} {why})", ("dependsOn",))



# ---------------------------------------------------------------- capabilities


def _wave(app: Obj | None) -> int:
    return int(((app.doc.get("metadata") or {}).get("annotations") or {}).get(labels.SYNC_WAVE, "0")) if app else 0


def _claims(obj: Obj) -> Iterator[tuple[str, dict[str, Any], tuple]]:
    """(field path, PersistentVolumeClaim spec, model suffix) of every volume claim an object makes."""
    spec = obj.doc.get("spec") or {}
    if obj.kind == "PersistentVolumeClaim":
        yield "spec", spec, ("storage", "grafana")
    for i, t in enumerate(spec.get("volumeClaimTemplates") or [] if obj.kind == "StatefulSet" else []):
        yield f"spec.volumeClaimTemplates[{i}].spec", t.get("spec") or {}, ("storage", "wal")
    if obj.kind in OPERATOR_PODS:
        vct = ((spec.get("storage") or {}).get("volumeClaimTemplate") or {}).get("spec")
        if vct is not None:
            yield "spec.storage.volumeClaimTemplate.spec", vct, (obj.kind.lower(),)


def capabilities(ctx: Context) -> Iterator[Finding]:
    """Every storage class, ingress class, resource-metrics HPA and custom resource kind that a rendered object uses
    resolves to exactly one provider, rendered by an Application that syncs in an earlier wave (or its own)."""
    if ctx.model is None:
        return
    apps = {a.app: a for a in ctx.index.kind("Application") if a.app}  # by component (the file), not by prefixed name
    provided: dict[tuple[str, str], list[Obj]] = {}
    for sc in ctx.index.kind("StorageClass"):
        provided.setdefault((resolve.STORAGE_CLASS, sc.name), []).append(sc)
    for ic in ctx.index.kind("IngressClass"):
        provided.setdefault((resolve.INGRESS_CLASS, ic.name), []).append(ic)
    for svc in ctx.index.kind("APIService"):
        if (svc.doc.get("spec") or {}).get("group") == resolve.RESOURCE_METRICS:
            provided.setdefault((resolve.METRICS_API, resolve.RESOURCE_METRICS), []).append(svc)
    for crd in ctx.index.kind("CustomResourceDefinition"):
        spec = crd.doc.get("spec") or {}
        for v in spec.get("versions") or []:
            if v.get("served"):
                provided.setdefault((resolve.CRD, f"{spec.get('group')}/{v['name']}/{(spec.get('names') or {}).get('kind')}"), []).append(crd)
    outside = resolve.external(ctx.model)
    defaults = [sc for sc in ctx.index.kind("StorageClass")
                if ((sc.doc.get("metadata") or {}).get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true"]

    def resolve_use(user: Obj, cap: tuple[str, str], where: str, suffix: tuple) -> Iterator[Finding]:
        if cap in outside:
            return
        found = provided.get(cap, [])
        if not found:
            yield (user, "ref.capability", where, f"uses {cap[0]} {cap[1]!r}, which nothing in the cluster provides: "
                   f"add the component that provides it, or declare it in platform.external", suffix)
        elif len({p.app for p in found}) > 1:
            yield (user, "ref.capability", where, f"{cap[0]} {cap[1]!r} is provided by several apps "
                   f"({', '.join(sorted({str(p.app) for p in found}))})", suffix)
        elif found[0].app != user.app and _wave(apps.get(found[0].app or "")) >= _wave(apps.get(user.app or "")):
            yield (user, "ref.capability", where, f"{cap[0]} {cap[1]!r} comes from {found[0].app}, which does not sync "
                   f"in an earlier wave", suffix)

    for obj in ctx.index.objs:
        if obj.app is None and not obj.source.startswith(f"{layout.RENDERED}/"):
            continue  # the bootstrap in argocd/ is applied by hand
        for where, claim, suffix in _claims(obj):
            name = claim.get("storageClassName")
            if name is None:
                if len(defaults) != 1:
                    yield (obj, "ref.capability", where + ".storageClassName", "no storageClassName and "
                           f"{len(defaults)} default StorageClasses: name one", suffix)
                continue
            yield from resolve_use(obj, (resolve.STORAGE_CLASS, name), where + ".storageClassName", suffix)
        if obj.kind == "Ingress":
            name = (obj.doc.get("spec") or {}).get("ingressClassName")
            if name is None:
                yield obj, "ref.capability", "spec.ingressClassName", "no ingressClassName: no controller would reconcile it", ("path",)
            else:
                yield from resolve_use(obj, (resolve.INGRESS_CLASS, name), "spec.ingressClassName", ("path",))
        if obj.kind == "HorizontalPodAutoscaler":
            for i, m in enumerate((obj.doc.get("spec") or {}).get("metrics") or []):
                if m.get("type") in ("Resource", "ContainerResource"):
                    yield from resolve_use(obj, (resolve.METRICS_API, resolve.RESOURCE_METRICS), f"spec.metrics[{i}]", ("hpa",))
        gvk = (str(obj.doc.get("apiVersion", "")), obj.kind)
        if ctx.builtin and gvk not in ctx.builtin and obj.kind != "List":
            yield from resolve_use(obj, (resolve.CRD, f"{gvk[0]}/{gvk[1]}"), "kind", ())


def declared_custom_kinds(ctx: Context) -> Iterator[Finding]:
    """The custom kinds the model says an upstream chart installs (and passes to helm as apiVersions) are the ones its
    CRDs really serve: a chart bump that adds or drops one is caught here."""
    if ctx.model is None:
        return
    served: dict[str, set[str]] = {}
    first: dict[str, Obj] = {}
    for crd in ctx.index.kind("CustomResourceDefinition"):
        spec = crd.doc.get("spec") or {}
        first.setdefault(crd.app or "", crd)
        for v in spec.get("versions") or []:
            if v.get("served"):
                served.setdefault(crd.app or "", set()).add(f"{spec.get('group')}/{v['name']}/{(spec.get('names') or {}).get('kind')}")
    for comp in resolve.components(ctx.model):
        kind = kinds.of(comp.kind)
        if kind is None or not kind.api_kinds or kind is METRICS_SERVER or comp.name not in served:
            continue  # metrics-server's is an aggregated API (an APIService), not custom resources
        declared = set(kind.api_kinds)
        where = f"the api_kinds of generator/kinds/{comp.kind.replace('-', '_')}.py"
        for extra in sorted(served[comp.name] - declared):
            yield (first[comp.name], "ref.custom-kinds", "spec", f"{comp.name} installs {extra}, which {where} do "
                   "not list: Applications would not pass it to helm as an apiVersion", ())
        for gone in sorted(declared - served[comp.name]):
            yield (first[comp.name], "ref.custom-kinds", "spec", f"{comp.name} no longer installs {gone}, which "
                   f"{where} still list", ())


# Every check, in the order it runs. A list rather than a registering decorator: mutmut (make mutation) does not
# mutate decorated functions. tests/test_references.py fails when a check is left out.
CHECKS: list[Callable[[Context], Iterator[Finding]]] = [
    service_selectors,
    ingress_backends,
    rollout_references,
    scale_targets,
    disruption_budgets,
    service_monitors,
    network_policies,
    config_references,
    volume_mounts,
    placement,
    applications,
    sync_waves,
    capabilities,
    declared_custom_kinds,
]
