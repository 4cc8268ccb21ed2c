"""Cross-object reference checks (generator/validate/references.py), each branch on a few hand-built objects.

Fast (no helm, no rendered tree): the objects are written here, and what each case expects follows from how
Kubernetes, Argo CD and Argo Rollouts resolve the reference (a Service's targetPort defaults to its port and a
string targetPort is a port *name*; a LabelSelector is a subset match and an empty one selects everything; a
Rollout's root Service defaults to its stable Service; ...). test_validation.py and test_platform.py trigger the
same checks through real chart changes on the whole hydrated tree.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from conftest import VALUES
from test_checks import registered_functions
from generator.model.loader import load
from generator.validate import references
from generator.validate.objects import Index, Obj

_index = itertools.count()
ROLLOUTS = "argoproj.io/v1alpha1"


@pytest.fixture(scope="module")
def eco2():
    return load(VALUES).model


def obj(kind: str, name: str, namespace: str = "api", api: str = "v1", app: str | None = None,
        source: str | None = None, labels: dict | None = None, annotations: dict | None = None, **fields) -> Obj:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    doc = {"apiVersion": api, "kind": kind, "metadata": meta, **fields}
    return Obj(source or f"rendered/prod/manifests/{app or 'x'}.yaml", next(_index), doc, app, namespace)


def container(name: str = "main", ports: list | None = None, **extra) -> dict:
    return {"name": name, "image": "example/app:1.0.0", "ports": ports or [], **extra}


HTTP = [{"name": "http", "containerPort": 8080}]


def workload(name: str = "web", namespace: str = "api", labels: dict | None = None, containers: list | None = None,
             kind: str = "Deployment", app: str | None = None, spec: dict | None = None, **podspec) -> Obj:
    labels = labels or {"app": name}
    pod = {"containers": containers if containers is not None else [container(ports=HTTP)], **podspec}
    api = {"Rollout": ROLLOUTS, "DaemonSet": "apps/v1"}.get(kind, "apps/v1")
    body = {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": pod}, **(spec or {})}
    return obj(kind, name, namespace, api=api, app=app, spec=body)


def service(name: str = "web", namespace: str = "api", selector: dict | None = None, ports: list | None = None,
            labels: dict | None = None) -> Obj:
    spec = {"ports": ports if ports is not None else [{"name": "http", "port": 80, "targetPort": "http"}]}
    if selector is not None:
        spec["selector"] = selector
    return obj("Service", name, namespace, labels=labels, spec=spec)


def run(check, *objs: Obj, model=None, repo: Path = Path("."), builtin: frozenset = frozenset()) -> list[tuple]:
    ctx = references.Context(Index(list(objs)), model, repo, builtin)
    return [(o.shown, c, path, message, suffix) for o, c, path, message, suffix in check(ctx)]


def paths(findings: list[tuple]) -> list[str]:
    return [f[2] for f in findings]


def test_every_check_of_the_module_runs(tmp_path):
    assert registered_functions(references, "Context") == {c.__name__ for c in references.CHECKS}, "list it in CHECKS"
    assert len(references.CHECKS) == len(set(references.CHECKS))
    # run() chains every check: one finding from each of two of them.
    objs = [service(selector={"app": "nobody"}), pdb({"matchLabels": {"app": "nobody"}})]
    assert [f[1] for _, f in zip(range(9), references.run(references.Context(Index(objs), None, tmp_path)))] == [
        "ref.service-selector", "ref.pdb"]


# ---------------------------------------------------------------- Service selectors and target ports


def test_a_service_without_selector_resolves_nothing():
    assert run(references.service_selectors, service(selector=None)) == []


def test_a_selector_selects_pods_of_its_own_namespace_only():
    svc = service(selector={"app": "web"})
    elsewhere = workload(namespace="workers")
    assert run(references.service_selectors, svc, elsewhere) == [
        ("Service api/web", "ref.service-selector", "spec.selector", "selects no pod in namespace 'api' ({'app': 'web'})", ())]
    assert run(references.service_selectors, svc, elsewhere, workload()) == []


def test_a_selector_is_a_subset_of_the_pod_labels():
    pod = workload(labels={"app": "web", "tier": "front"})
    assert run(references.service_selectors, service(selector={"app": "web"}), pod) == []
    assert paths(run(references.service_selectors, service(selector={"app": "web", "tier": "back"}), pod)) == ["spec.selector"]


@pytest.mark.parametrize("port,ok", [
    ({"port": 80, "targetPort": 8080}, True),  # a number: a containerPort
    ({"port": 80, "targetPort": 9090}, False),
    ({"port": 80, "targetPort": "http"}, True),  # a string: a port name
    ({"port": 80, "targetPort": "metrics"}, False),
    ({"port": 80, "targetPort": "8080"}, False),  # a string is a name, even when it reads as the number
    ({"port": 8080}, True),  # no targetPort: the port itself
    ({"port": 80}, False),
])
def test_target_ports_are_container_ports_by_number_or_name(port, ok):
    svc = service(selector={"app": "web"}, ports=[{"name": "first", "port": 81, "targetPort": 8080}, port])
    found = run(references.service_selectors, svc, workload())
    target = port.get("targetPort", port["port"])
    assert found == ([] if ok else [("Service api/web", "ref.target-port", "spec.ports[1].targetPort",
                                     f"targetPort {target!r} is not a container port of the selected pods (Deployment/api/web)", ())])


def test_any_selected_pod_may_expose_the_target_port():
    plain = workload(name="a", labels={"app": "web"}, containers=[container(ports=[{"containerPort": 9000}])])
    serving = workload(name="b", labels={"app": "web"})
    svc = service(selector={"app": "web"}, ports=[{"port": 80, "targetPort": "http"}])
    assert run(references.service_selectors, svc, plain, serving) == []
    assert run(references.service_selectors, svc, plain) == [
        ("Service api/web", "ref.target-port", "spec.ports[0].targetPort",
         "targetPort 'http' is not a container port of the selected pods (Deployment/api/a)", ())]


def test_an_init_container_port_serves_no_service():
    pod = workload(containers=[container()], initContainers=[container(name="init", ports=HTTP)])
    assert paths(run(references.service_selectors, service(selector={"app": "web"}), pod)) == ["spec.ports[0].targetPort"]


# ---------------------------------------------------------------- Ingress backends


def ingress(name: str = "web", namespace: str = "api", paths_: list | None = None, default: dict | None = None,
            annotations: dict | None = None, rules: list | None = None) -> Obj:
    spec: dict = {"ingressClassName": "alb"}
    if default is not None:
        spec["defaultBackend"] = default
    spec["rules"] = rules if rules is not None else [{"http": {"paths": paths_ or []}}]
    return obj("Ingress", name, namespace, api="networking.k8s.io/v1", annotations=annotations, spec=spec)


def backend(service_name: str = "web", **port) -> dict:
    return {"service": {"name": service_name, "port": port or {"number": 80}}}


def route(b: dict, path: str = "/") -> dict:
    return {"path": path, "pathType": "Prefix", "backend": b}


@pytest.mark.parametrize("port,ok", [
    ({"number": 80}, True), ({"number": 81}, False), ({"name": "http"}, True), ({"name": "web"}, False)])
def test_an_ingress_backend_names_a_port_of_its_service(port, ok):
    ing = ingress(paths_=[route(backend()), route(backend(**port), "/b")])
    found = run(references.ingress_backends, ing, service())
    assert found == ([] if ok else [("Ingress api/web", "ref.ingress-backend", "spec.rules[0].http.paths[1].backend.service.port",
                                     f"Service 'web' has no port {port}", ())])


def test_an_ingress_backend_service_must_exist_in_the_ingress_namespace():
    ing = ingress(rules=[{"http": {"paths": [route(backend())]}}, {"http": {"paths": [route(backend()), route(backend("gone"))]}}])
    assert run(references.ingress_backends, ing, service(), service("gone", namespace="workers")) == [
        ("Ingress api/web", "ref.ingress-backend", "spec.rules[1].http.paths[1].backend.service.name",
         "Service 'gone' does not exist in 'api'", ())]


def test_the_default_backend_is_checked_and_a_resource_backend_is_not():
    resource = {"resource": {"apiGroup": "k8s.example.com", "kind": "Bucket", "name": "static"}}
    ing = ingress(default=backend("gone"), paths_=[route(resource)])
    assert paths(run(references.ingress_backends, ing, service())) == ["spec.defaultBackend.service.name"]
    assert run(references.ingress_backends, ingress(default=backend(), rules=[{"host": "x"}]), service()) == []


def rollout(name: str = "web", namespace: str = "api", canary: dict | None = None, app: str | None = None) -> Obj:
    return workload(name, namespace, kind="Rollout", app=app, spec={"strategy": {"canary": canary or {}}})


def test_use_annotation_needs_the_action_annotation_or_a_rollout_routing_through_the_ingress():
    use = backend(name="use-annotation")
    message = ("Ingress api/web", "ref.ingress-backend", "spec.rules[0].http.paths[0].backend.service.port",
               "port 'use-annotation' needs the annotation alb.ingress.kubernetes.io/actions.web or a Rollout "
               "routing through this Ingress", ())
    assert run(references.ingress_backends, ingress(paths_=[route(use)]), service()) == [message]
    annotated = ingress(paths_=[route(use)], annotations={"alb.ingress.kubernetes.io/actions.web": "{}"})
    assert run(references.ingress_backends, annotated, service()) == []
    other_action = ingress(paths_=[route(use)], annotations={"alb.ingress.kubernetes.io/actions.api": "{}"})
    assert run(references.ingress_backends, other_action, service()) == [message]

    by_root = rollout(canary={"stableService": "stable", "trafficRouting": {"alb": {"ingress": "web", "rootService": "web"}}})
    by_stable = rollout(canary={"stableService": "web", "trafficRouting": {"alb": {"ingresses": ["other", "web"]}}})
    elsewhere = rollout(namespace="workers", canary={"stableService": "web", "trafficRouting": {"alb": {"ingress": "web"}}})
    other_ingress = rollout(canary={"stableService": "web", "trafficRouting": {"alb": {"ingress": "other"}}})
    other_root = rollout(canary={"stableService": "web", "trafficRouting": {"alb": {"ingress": "web", "rootService": "api"}}})
    no_alb = rollout(canary={"stableService": "web"})
    for ro, ok in ((by_root, True), (by_stable, True), (elsewhere, False), (other_ingress, False), (other_root, False),
                   (no_alb, False)):
        assert run(references.ingress_backends, ingress(paths_=[route(use)]), service(), ro) == ([] if ok else [message]), ro


# ---------------------------------------------------------------- Rollouts and their analyses


def test_a_rollouts_stable_and_canary_services_exist():
    ro = rollout(canary={"stableService": "web", "canaryService": "web-canary"})
    assert run(references.rollout_references, ro, service()) == [
        ("Rollout api/web", "ref.rollout", "spec.strategy.canary.canaryService", "Service 'web-canary' does not exist", ("delivery",))]
    assert run(references.rollout_references, ro, service(), service("web-canary", namespace="workers")) == [
        ("Rollout api/web", "ref.rollout", "spec.strategy.canary.canaryService", "Service 'web-canary' does not exist", ("delivery",))]
    assert paths(run(references.rollout_references, ro, service("web-canary"))) == ["spec.strategy.canary.stableService"]
    assert run(references.rollout_references, ro, service(), service("web-canary")) == []


ALB = "spec.strategy.canary.trafficRouting.alb"


def test_the_alb_root_service_defaults_to_the_stable_service_and_must_have_the_service_port():
    def alb_rollout(**alb):
        return rollout(canary={"stableService": "web", "trafficRouting": {"alb": {"servicePort": 80, **alb}}})

    assert run(references.rollout_references, alb_rollout(), service()) == []
    assert run(references.rollout_references, alb_rollout(servicePort=8080), service()) == [
        ("Rollout api/web", "ref.rollout", f"{ALB}.servicePort", "Service 'web' has no port 8080", ("delivery",))]
    assert run(references.rollout_references, alb_rollout(rootService="root"), service()) == [
        ("Rollout api/web", "ref.rollout", f"{ALB}.rootService", "Service 'root' does not exist", ("delivery",))]
    assert run(references.rollout_references, alb_rollout(rootService="root"), service(), service("root")) == []


def test_the_alb_ingresses_exist_and_route_to_the_root_service():
    def alb_rollout(**alb):
        return rollout(canary={"stableService": "web", "trafficRouting": {"alb": {"servicePort": 80, **alb}}})

    to_root = ingress(paths_=[route(backend("other")), route(backend("web", name="use-annotation"))])
    elsewhere = ingress("elsewhere", paths_=[route(backend("other"))])
    objs = (service(), service("other"), to_root, elsewhere)
    assert run(references.rollout_references, alb_rollout(ingress="web"), *objs) == []
    assert run(references.rollout_references, alb_rollout(ingresses=["web"]), *objs) == []
    assert run(references.rollout_references, alb_rollout(ingress="gone"), *objs) == [
        ("Rollout api/web", "ref.rollout", f"{ALB}.ingress", "Ingress 'gone' does not exist", ("delivery",))]
    assert run(references.rollout_references, alb_rollout(ingress="web", ingresses=["gone"]), *objs) == [
        ("Rollout api/web", "ref.rollout", f"{ALB}.ingress", "Ingress 'gone' does not exist", ("delivery",))]
    assert run(references.rollout_references, alb_rollout(ingress="elsewhere"), *objs) == [
        ("Rollout api/web", "ref.rollout", f"{ALB}.ingress",
         "Ingress 'elsewhere' has no rule whose backend is the root Service 'web'", ("delivery",))]
    no_http = ingress("bare", rules=[{"host": "x"}])
    assert paths(run(references.rollout_references, alb_rollout(ingress="bare"), *objs, no_http)) == [f"{ALB}.ingress"]


def template(name: str = "success-rate", args: list | None = None, namespace: str = "api", kind: str = "AnalysisTemplate") -> Obj:
    return obj(kind, name, namespace, api=ROLLOUTS, spec={"args": args or [], "metrics": []})


SUCCESS_ARGS = [{"name": "service-name"}, {"name": "threshold", "value": "0.95"},
                {"name": "namespace", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]


def analysis(*templates: dict, args: list[str] = ("service-name",)) -> dict:
    return {"templates": list(templates) or [{"templateName": "success-rate"}],
            "args": [{"name": a, "value": "x"} for a in args]}


def test_an_analysis_passes_exactly_the_arguments_its_templates_declare():
    tmpl = template(args=SUCCESS_ARGS)
    check = references.rollout_references
    assert run(check, rollout(canary={"analysis": analysis()}), tmpl) == []
    assert run(check, rollout(canary={"analysis": analysis(args=["service-name", "threshold", "namespace"])}), tmpl) == []
    assert run(check, rollout(canary={"analysis": analysis(args=["service-name", "stray"])}), tmpl) == [
        ("Rollout api/web", "ref.analysis-args", "spec.strategy.canary.analysis.args",
         "passes argument 'stray' that no referenced template declares", ("delivery", "analysis"))]
    # Only an argument with neither value nor valueFrom is required.
    assert run(check, rollout(canary={"analysis": analysis(args=[])}), tmpl) == [
        ("Rollout api/web", "ref.analysis-args", "spec.strategy.canary.analysis.args",
         "does not pass argument 'service-name', which its template requires", ("delivery", "analysis"))]


def test_arguments_declared_by_any_of_several_templates_count():
    one, two = template("a", [{"name": "x"}]), template("b", [{"name": "y"}])
    ro = rollout(canary={"analysis": analysis({"templateName": "a"}, {"templateName": "b"}, args=["x", "y"])})
    assert run(references.rollout_references, ro, one, two) == []


def test_a_step_analysis_is_checked_where_it_is():
    ro = rollout(canary={"steps": [{"setWeight": 20}, {"analysis": analysis({"templateName": "gone"})}]})
    assert run(references.rollout_references, ro, template(args=SUCCESS_ARGS)) == [
        ("Rollout api/web", "ref.analysis", "spec.strategy.canary.steps[1].analysis.templates[0].templateName",
         "AnalysisTemplate 'gone' does not exist", ("delivery", "analysis")),
        ("Rollout api/web", "ref.analysis-args", "spec.strategy.canary.steps[1].analysis.args",
         "passes argument 'service-name' that no referenced template declares", ("delivery", "analysis"))]


def test_a_missing_template_does_not_hide_the_arguments_of_the_next_one():
    ro = rollout(canary={"analysis": analysis({"templateName": "gone"}, {"templateName": "success-rate"})})
    assert run(references.rollout_references, ro, template(args=SUCCESS_ARGS)) == [
        ("Rollout api/web", "ref.analysis", "spec.strategy.canary.analysis.templates[0].templateName",
         "AnalysisTemplate 'gone' does not exist", ("delivery", "analysis"))]


def test_a_template_in_another_namespace_or_scope_is_not_found():
    ro = rollout(canary={"analysis": analysis()})
    assert paths(run(references.rollout_references, ro, template(args=SUCCESS_ARGS, namespace="workers"))) == [
        "spec.strategy.canary.analysis.templates[0].templateName", "spec.strategy.canary.analysis.args"]
    cluster = rollout(canary={"analysis": analysis({"templateName": "success-rate", "clusterScope": True})})
    assert run(references.rollout_references, cluster, template(args=SUCCESS_ARGS))[0] == (
        "Rollout api/web", "ref.analysis", "spec.strategy.canary.analysis.templates[0].templateName",
        "ClusterAnalysisTemplate 'success-rate' does not exist", ("delivery", "analysis"))
    cluster_template = template(args=SUCCESS_ARGS, namespace="", kind="ClusterAnalysisTemplate")
    assert run(references.rollout_references, cluster, cluster_template) == []


# ---------------------------------------------------------------- HPA, PDB, ServiceMonitor


def hpa(kind: str = "Deployment", name: str = "web", api: str = "apps/v1", namespace: str = "api") -> Obj:
    return obj("HorizontalPodAutoscaler", name, namespace, api="autoscaling/v2",
               spec={"scaleTargetRef": {"apiVersion": api, "kind": kind, "name": name}, "minReplicas": 1, "maxReplicas": 3})


def test_an_hpa_targets_an_existing_workload_of_its_api_group():
    check = references.scale_targets
    assert run(check, hpa(), workload()) == []
    assert run(check, hpa(), workload(namespace="workers")) == [
        ("HorizontalPodAutoscaler api/web", "ref.scale-target", "spec.scaleTargetRef", "Deployment 'web' does not exist", ("hpa",))]
    assert run(check, hpa("Rollout"), workload()) == [
        ("HorizontalPodAutoscaler api/web", "ref.scale-target", "spec.scaleTargetRef", "Rollout 'web' does not exist", ("hpa",))]
    assert run(check, hpa("Rollout", api="apps/v1"), rollout()) == [
        ("HorizontalPodAutoscaler api/web", "ref.scale-target", "spec.scaleTargetRef.apiVersion",
         "apps/v1 does not match the target's argoproj.io/v1alpha1", ("hpa",))]
    # The group decides which controller scales it; the version is only how the scale subresource is read.
    assert run(check, hpa("Rollout", api="argoproj.io/v1"), rollout()) == []


def pdb(selector: dict, namespace: str = "api") -> Obj:
    return obj("PodDisruptionBudget", "web", namespace, api="policy/v1", spec={"minAvailable": 1, "selector": selector})


def test_a_disruption_budget_selects_pods_of_its_namespace():
    check = references.disruption_budgets
    nope = [("PodDisruptionBudget api/web", "ref.pdb", "spec.selector", "selects no pod of any workload", ())]
    assert run(check, pdb({"matchLabels": {"app": "web"}}), workload()) == []
    assert run(check, pdb({"matchLabels": {"app": "web"}}), workload(namespace="workers")) == nope
    assert run(check, pdb({"matchLabels": {"app": "db"}}), workload()) == nope
    assert run(check, pdb({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "db"]}]}), workload()) == []
    assert run(check, pdb({}), workload()) == []  # policy/v1: an empty selector selects every pod of the namespace


def monitor(selector: dict, endpoints: list | None = None, namespace: str = "api", namespaces: dict | None = None) -> Obj:
    spec = {"selector": selector, "endpoints": endpoints if endpoints is not None else [{"port": "http"}]}
    if namespaces is not None:
        spec["namespaceSelector"] = namespaces
    return obj("ServiceMonitor", "web", namespace, api="monitoring.coreos.com/v1", spec=spec)


def test_a_service_monitor_selects_services_by_their_labels_in_its_namespaces():
    check = references.service_monitors
    labelled = service(labels={"app": "web"})
    none = [("ServiceMonitor api/web", "ref.service-monitor", "spec.selector", "selects no Service", ())]
    assert run(check, monitor({"matchLabels": {"app": "web"}}), labelled) == []
    assert run(check, monitor({"matchLabels": {"app": "web"}}), service(selector={"app": "web"})) == none  # labels, not selector
    other = service(namespace="workers", labels={"app": "web"})
    assert run(check, monitor({"matchLabels": {"app": "web"}}), other) == none
    assert run(check, monitor({"matchLabels": {"app": "web"}}, namespaces={"any": True}), other) == []
    assert run(check, monitor({"matchLabels": {"app": "web"}}, namespaces={"matchNames": ["workers"]}), other) == []
    assert run(check, monitor({"matchLabels": {"app": "web"}}, namespaces={"matchNames": ["data"]}), other) == none


def test_a_service_monitor_endpoint_names_a_port_of_a_selected_service():
    check = references.service_monitors
    endpoints = [{"port": "http"}, {"targetPort": 9090}, {"port": "metrics"}]
    assert run(check, monitor({"matchLabels": {"app": "web"}}, endpoints), service(labels={"app": "web"})) == [
        ("ServiceMonitor api/web", "ref.service-monitor", "spec.endpoints[2].port", "no selected Service has a port named 'metrics'", ())]
    metrics = service("metrics", labels={"app": "web"}, ports=[{"name": "metrics", "port": 9090}])
    assert run(check, monitor({"matchLabels": {"app": "web"}}, endpoints), service(labels={"app": "web"}), metrics) == []


# ---------------------------------------------------------------- NetworkPolicies


def policy(pod_selector: dict, ingress_from: list | None = None, egress_to: list | None = None, namespace: str = "api") -> Obj:
    spec: dict = {"podSelector": pod_selector}
    if ingress_from is not None:
        spec["ingress"] = [{"from": ingress_from}]
    if egress_to is not None:
        spec["egress"] = [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}, {"to": egress_to}]
    return obj("NetworkPolicy", "web", namespace, api="networking.k8s.io/v1", spec=spec)


def in_namespace(ns: str, **peer) -> dict:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}, **peer}


def test_a_network_policy_selects_pods_of_its_namespace():
    check = references.network_policies
    assert run(check, policy({"matchLabels": {"app": "web"}}), workload()) == []
    assert run(check, policy({}), workload(namespace="workers")) == []  # an empty podSelector: every pod of the namespace
    assert run(check, policy({"matchLabels": {"app": "web"}}), workload(namespace="workers")) == [
        ("NetworkPolicy api/web", "ref.network-policy", "spec.podSelector", "selects no pod in its namespace", ())]


def test_a_peer_without_namespace_selector_is_in_the_policys_namespace(eco2):
    check = references.network_policies
    peer = {"podSelector": {"matchLabels": {"app": "db"}}}
    db_here, db_there = workload("db", labels={"app": "db"}), workload("db", namespace="data", labels={"app": "db"})
    assert run(check, policy({}, ingress_from=[peer]), db_here, model=eco2) == []
    assert run(check, policy({}, ingress_from=[peer]), workload(), db_there, model=eco2) == [
        ("NetworkPolicy api/web", "ref.network-policy", "spec.ingress[0].from[0].podSelector", "selects no pod in namespace 'api'", ())]


def test_a_peer_namespace_must_exist_and_its_pods_must_match(eco2):
    check = references.network_policies
    db = workload("db", namespace="data", labels={"app": "db"})
    peer = in_namespace("data", podSelector={"matchLabels": {"app": "db"}})
    assert run(check, policy({}, egress_to=[peer]), db, model=eco2) == []
    assert paths(run(check, policy({}, egress_to=[peer]), db)) == ["spec.egress[1].to[0].namespaceSelector"]  # data: the model's
    wrong = in_namespace("data", podSelector={"matchLabels": {"app": "cache"}})
    assert run(check, policy({}, egress_to=[wrong]), db, model=eco2) == [
        ("NetworkPolicy api/web", "ref.network-policy", "spec.egress[1].to[0].podSelector", "selects no pod in namespace 'data'", ())]
    assert run(check, policy({}, egress_to=[in_namespace("nowhere")]), db) == [
        ("NetworkPolicy api/web", "ref.network-policy", "spec.egress[1].to[0].namespaceSelector", "namespace 'nowhere' does not exist", ())]
    # Namespaces that exist without a workload rendered into them: their pods are not ours to resolve.
    dns = in_namespace("kube-system", podSelector={"matchLabels": {"k8s-app": "kube-dns"}})
    assert run(check, policy({}, egress_to=[dns, in_namespace("default")]), db) == []
    rendered_ns = obj("Namespace", "extra", namespace="")
    assert run(check, policy({}, egress_to=[in_namespace("extra")]), db, rendered_ns) == []
    # The model's namespaces and Argo CD's exist too, known only with the model.
    model_peers = [in_namespace("metrics-server"), in_namespace("argocd"), in_namespace("data")]
    assert run(check, policy({}, egress_to=model_peers), model=eco2) == []
    assert run(check, policy({}, egress_to=[dns, in_namespace("default"), in_namespace("extra")]), rendered_ns, model=eco2) == []
    assert paths(run(check, policy({}, egress_to=model_peers))) == [
        "spec.egress[1].to[0].namespaceSelector", "spec.egress[1].to[1].namespaceSelector", "spec.egress[1].to[2].namespaceSelector"]
    # Selected by another label, or an address block: nothing to resolve statically.
    other = {"namespaceSelector": {"matchLabels": {"team": "x"}}, "podSelector": {"matchLabels": {"app": "none"}}}
    assert run(check, policy({}, ingress_from=[other, {"ipBlock": {"cidr": "0.0.0.0/0"}}]), db) == []


# ---------------------------------------------------------------- Secrets, ConfigMaps, volumes


def secret_env(name: str, key: str = "k", optional: bool | None = None, kind: str = "secretKeyRef") -> dict:
    ref = {"name": name, "key": key, **({"optional": optional} if optional is not None else {})}
    return {"name": "E", "valueFrom": {kind: ref}}


def test_env_secrets_are_rendered_or_declared_in_the_model_in_that_namespace_with_that_key(eco2):
    check = references.config_references
    where = "spec.template.spec.containers[0].env[0]"

    def one(env: dict, namespace: str = "api", *others: Obj, model=eco2) -> list:
        return run(check, workload(namespace=namespace, containers=[container(env=[env])]), *others, model=model)

    assert one(secret_env("jwt-secret", "secret-key")) == []
    assert one(secret_env("jwt-secret", "secret-key"), "workers") == [
        ("Deployment workers/web", "ref.secret", where, "Secret 'jwt-secret' is declared only in api, not 'workers'", ("secretEnv",))]
    assert one(secret_env("jwt-secret", "api-key")) == [
        ("Deployment api/web", "ref.secret", where, "Secret 'jwt-secret' has no key 'api-key' in the model", ("secretEnv",))]
    assert one(secret_env("nowhere")) == [
        ("Deployment api/web", "ref.secret", where, "Secret 'nowhere' is neither rendered nor declared external in the model",
         ("secretEnv",))]
    assert one(secret_env("nowhere", optional=True)) == []
    assert one(secret_env("nowhere", optional=False)) != []
    assert one(secret_env("nowhere"), "api", obj("Secret", "nowhere")) == []
    assert one(secret_env("nowhere"), "api", obj("Secret", "nowhere", namespace="workers")) != []
    assert one(secret_env("jwt-secret", "secret-key"), model=None)[0][3] == (
        "Secret 'jwt-secret' is neither rendered nor declared external in the model")


def test_config_maps_must_be_rendered(eco2):
    check = references.config_references
    pod = workload(containers=[container(env=[secret_env("settings", kind="configMapKeyRef")])])
    assert run(check, pod, model=eco2) == [
        ("Deployment api/web", "ref.configmap", "spec.template.spec.containers[0].env[0]",
         "ConfigMap 'settings' is neither rendered nor declared external in the model", ("secretEnv",))]
    # A model secret of the same name does not make a ConfigMap.
    pod = workload(containers=[container(env=[secret_env("jwt-secret", "secret-key", kind="configMapKeyRef")])])
    assert paths(run(check, pod, model=eco2)) == ["spec.template.spec.containers[0].env[0]"]
    assert run(check, pod, obj("ConfigMap", "jwt-secret"), model=eco2) == []


def test_every_way_a_pod_uses_a_secret_or_config_map_is_checked(eco2):
    env_from = [{"secretRef": {"name": "s1"}}, {"configMapRef": {"name": "c1"}}, {"prefix": "X_"},
                {"secretRef": {"name": "s-opt", "optional": True}}]
    volumes = [{"name": "a", "secret": {"secretName": "s2"}}, {"name": "b", "configMap": {"name": "c2"}},
               {"name": "c", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}, {"secret": {"name": "s3"}},
                                                       {"configMap": {"name": "c3"}}]}},
               {"name": "d", "emptyDir": {}}, {"name": "e", "secret": {"secretName": "s-opt", "optional": True}}]
    pod = workload(containers=[container(), container("second", envFrom=env_from)],
                   initContainers=[container("init", env=[{"name": "PLAIN", "value": "1"}, secret_env("s4")])], volumes=volumes)
    found = run(references.config_references, pod, model=eco2)
    assert [(f[1], f[2], f[3].split(" is ")[0]) for f in found] == [
        ("ref.secret", "spec.template.spec.containers[1].envFrom[0]", "Secret 's1'"),
        ("ref.configmap", "spec.template.spec.containers[1].envFrom[1]", "ConfigMap 'c1'"),
        ("ref.secret", "spec.template.spec.initContainers[0].env[1]", "Secret 's4'"),
        ("ref.secret", "spec.template.spec.volumes[0]", "Secret 's2'"),
        ("ref.configmap", "spec.template.spec.volumes[1]", "ConfigMap 'c2'"),
        ("ref.secret", "spec.template.spec.volumes[2].projected.sources[1]", "Secret 's3'"),
        ("ref.configmap", "spec.template.spec.volumes[2].projected.sources[2]", "ConfigMap 'c3'"),
    ]
    optional = workload(containers=[container(envFrom=[{"configMapRef": {"name": "c", "optional": True}}])],
                        volumes=[{"name": "b", "configMap": {"name": "c", "optional": True}},
                                 {"name": "p", "projected": {"sources": [{"secret": {"name": "s", "optional": True}},
                                                                         {"configMap": {"name": "c", "optional": True}}]}}])
    assert run(references.config_references, optional, model=eco2) == []
    # envFrom takes the whole Secret: any declared key will do.
    whole = workload(containers=[container(envFrom=[{"secretRef": {"name": "jwt-secret"}}])])
    assert run(references.config_references, whole, model=eco2) == []


def test_volume_mounts_name_a_volume_of_the_pod():
    check = references.volume_mounts
    mounts = [{"name": "tmp", "mountPath": "/tmp"}, {"name": "data", "mountPath": "/data"}]
    pod = dict(containers=[container(volumeMounts=mounts[:1])], initContainers=[container("init", volumeMounts=mounts)],
               volumes=[{"name": "tmp", "emptyDir": {}}])
    missing = ("spec.template.spec.initContainers[0].volumeMounts[1].name", "mounts volume 'data', which the pod does not have")
    assert [f[1:4] for f in run(check, workload(**pod))] == [("ref.volume-mount", *missing)]
    claims = {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}]}
    assert run(check, workload(kind="StatefulSet", spec=claims, **pod)) == []
    assert [f[2:4] for f in run(check, workload(kind="Deployment", spec=claims, **pod))] == [missing]  # only a StatefulSet has claims


# ---------------------------------------------------------------- placement on the model's nodes


AUTH_SELECTOR = {"workload": "api", "domain": "auth"}
INFRA = {"key": "node-role.kubernetes.io/infrastructure", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
MASTER = {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}


def test_a_pod_lands_on_exactly_its_models_node(eco2):
    check = references.placement
    assert run(check, workload(app="auth", nodeSelector=AUTH_SELECTOR), model=eco2) == []
    assert run(check, workload(app="auth", nodeSelector=AUTH_SELECTOR), model=None) == []
    untainted = sorted(n for n, node in eco2.nodes.items() if not node.taints)
    assert run(check, workload(app="auth", nodeSelector={"workload": "api"}), model=eco2) == [
        ("Deployment api/web", "ref.placement", "spec.template.spec.nodeSelector",
         f"can be scheduled on {', '.join(sorted(n for n in untainted if n.startswith('k8s-api-')))}; "
         "the model places it on 'k8s-api-auth' only", ("placement",))]
    assert run(check, workload(app="auth", nodeSelector={"domain": "userinfo"}), model=eco2) == [
        ("Deployment api/web", "ref.placement", "spec.template.spec.nodeSelector",
         "can be scheduled on k8s-api-userinfo; the model places it on 'k8s-api-auth' only", ("placement",))]
    # Not the model's component, or no pods: nothing to compare.
    assert run(check, workload(app="nobody"), workload(app=None), obj("Service", "auth", app="auth"), model=eco2) == []


def test_a_pod_that_matches_its_node_but_not_its_taint_is_told_about_tolerations(eco2):
    check = references.placement
    redis = {"workload": "cache"}
    assert run(check, workload(app="redis", namespace="data", nodeSelector=redis, tolerations=[INFRA]), model=eco2) == []
    assert run(check, workload(app="redis", namespace="data", nodeSelector=redis), model=eco2) == [
        ("Deployment data/web", "ref.placement", "spec.template.spec.tolerations",
         "can be scheduled on no node; the model places it on 'k8s-redis' only", ("placement",))]
    assert run(check, workload(app="redis", namespace="data", nodeSelector={"workload": "database"}, tolerations=[INFRA]),
               model=eco2)[0][2] == "spec.template.spec.nodeSelector"


def test_operator_pods_are_placed_from_their_custom_resource(eco2):
    spec = {"nodeSelector": {"workload": "monitoring"}, "tolerations": [INFRA]}
    prom = obj("Prometheus", "monitoring-prometheus", "monitoring", api="monitoring.coreos.com/v1", app="monitoring", spec=spec)
    assert run(references.placement, prom, model=eco2) == []
    prom.doc["spec"] = {"nodeSelector": {"workload": "monitoring"}}
    assert run(references.placement, prom, model=eco2) == [
        ("Prometheus monitoring/monitoring-prometheus", "ref.placement", "spec.tolerations",
         "can be scheduled on no node; the model places it on 'k8s-monitoring' only", ("placement",))]


def test_a_daemonset_runs_on_every_node(eco2):
    check = references.placement
    assert run(check, workload(kind="DaemonSet", tolerations=[{"operator": "Exists"}]), model=eco2) == []
    tainted = sorted(n for n, node in eco2.nodes.items() if node.taints)
    assert run(check, workload(kind="DaemonSet", tolerations=[INFRA], app="monitoring"), model=eco2) == [
        ("DaemonSet api/web", "ref.placement", "spec.template.spec.tolerations",
         f"runs on {len(eco2.nodes) - 1} of {len(eco2.nodes)} nodes; not on k8s-master (a node agent must run on every node)", ())]
    assert run(check, workload(kind="DaemonSet"), model=eco2)[0][3] == (
        f"runs on {len(eco2.nodes) - len(tainted)} of {len(eco2.nodes)} nodes; not on {', '.join(tainted)} "
        "(a node agent must run on every node)")
    assert run(check, workload(kind="DaemonSet", tolerations=[MASTER, INFRA]), model=eco2) == []


# ---------------------------------------------------------------- Applications and projects


REPO_URL = "https://github.com/eco2-team/backend.git"
SERVER = "https://kubernetes.default.svc"


def application(name: str = "auth", project: str = "apis", namespace: str = "api", sources: list | None = None,
                source: dict | None = None, wave: str | None = None) -> Obj:
    spec: dict = {"project": project, "destination": {"server": SERVER, "namespace": namespace}}
    if sources is not None:
        spec["sources"] = sources
    if source is not None:
        spec["source"] = source
    annotations = {"argocd.argoproj.io/sync-wave": wave} if wave is not None else None
    return obj("Application", name, "argocd", api=ROLLOUTS, app=name, source=f"rendered/prod/apps/{name}.yaml",
               annotations=annotations, spec=spec)


def project(name: str = "apis", destinations: list | None = None, repos: list | None = None) -> Obj:
    return obj("AppProject", name, "argocd", api=ROLLOUTS, source=f"argocd/projects/{name}.yaml",
               spec={"destinations": destinations if destinations is not None else [{"server": SERVER, "namespace": "api"}],
                     "sourceRepos": repos if repos is not None else [REPO_URL]})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "charts" / "api").mkdir(parents=True)
    (tmp_path / "rendered" / "prod" / "values").mkdir(parents=True)
    (tmp_path / "rendered" / "prod" / "values" / "auth.yaml").write_text("{}\n")
    (tmp_path / "charts" / "api" / "values.yaml").write_text("{}\n")
    return tmp_path


def chart_source(path: str = "charts/api", *value_files: str) -> dict:
    src = {"repoURL": REPO_URL, "path": path, "targetRevision": "main"}
    if value_files:
        src["helm"] = {"valueFiles": list(value_files)}
    return src


def test_an_applications_chart_path_and_value_files_exist(repo):
    check = references.applications

    def found(app):
        return run(check, app, project(), repo=repo)

    assert found(application(source=chart_source("charts/api", "values.yaml", "../../rendered/prod/values/auth.yaml"))) == []
    assert found(application(source=chart_source("charts/apis"))) == [
        ("Application argocd/auth", "ref.app-source", "spec.source.path", "chart path 'charts/apis' does not exist in the repository", ())]
    assert found(application(source=chart_source("charts/api", "../../rendered/prod/values/old.yaml"))) == [
        ("Application argocd/auth", "ref.app-source", "spec.source.helm.valueFiles[0]",
         "value file '../../rendered/prod/values/old.yaml' does not exist", ())]
    assert [f[2] for f in found(application(source=chart_source("charts/api", "values.yaml", "../api")))] == [
        "spec.source.helm.valueFiles[1]"]  # a directory is not a value file


def test_multi_source_value_files_come_from_a_ref_source(repo):
    check = references.applications
    values = {"repoURL": REPO_URL, "targetRevision": "main", "ref": "values"}

    def found(*value_files, sources=None):
        app = application(sources=sources or [chart_source("charts/api", *value_files), values])
        return [f[2:4] for f in run(check, app, project(repos=[REPO_URL, "https://charts.example.org"]), repo=repo)]

    assert found("$values/rendered/prod/values/auth.yaml") == []
    assert found("$values/rendered/prod/values/old.yaml") == [
        ("spec.sources[0].helm.valueFiles[0]", "value file '$values/rendered/prod/values/old.yaml' does not exist")]
    assert found("$other/rendered/prod/values/auth.yaml") == [
        ("spec.sources[0].helm.valueFiles[0]", "value file '$other/rendered/prod/values/auth.yaml' does not exist")]
    chart = {"repoURL": "https://charts.example.org", "chart": "x", "targetRevision": "1.0.0",
             "helm": {"valueFiles": ["values.yaml"]}}  # no path: a plain value file has nothing to be relative to
    assert found(sources=[chart, values]) == [("spec.sources[0].helm.valueFiles[0]", "value file 'values.yaml' does not exist")]
    assert found(sources=[chart_source("charts/apis"), values]) == [
        ("spec.sources[0].path", "chart path 'charts/apis' does not exist in the repository")]


def test_an_application_belongs_to_a_rendered_project_that_allows_its_destination_and_repositories(repo):
    check = references.applications
    app = application(source=chart_source())
    assert run(check, app, project("platform"), repo=repo) == [
        ("Application argocd/auth", "ref.app-project", "spec.project", "AppProject 'apis' is not rendered in argocd/<env>/projects", ())]
    assert run(check, application(namespace="data", source=chart_source()), project(), repo=repo) == [
        ("Application argocd/auth", "ref.app-project", "spec.destination",
         "namespace 'data' is not a destination of project 'apis'", ("namespace",))]
    other_server = project(destinations=[{"server": "https://elsewhere", "namespace": "api"}])
    assert [f[2] for f in run(check, app, other_server, repo=repo)] == ["spec.destination"]
    wildcards = project(destinations=[{"server": "*", "namespace": "*"}], repos=["*"])
    assert run(check, application(namespace="data", source={**chart_source(), "repoURL": "https://x"}), wildcards, repo=repo) == []
    assert run(check, app, project(repos=["https://github.com/eco2-team/other.git"]), repo=repo) == [
        ("Application argocd/auth", "ref.app-project", "spec.source.repoURL",
         f"{REPO_URL} is not a source repository of project 'apis'", ())]
    two = application(sources=[chart_source(), {"repoURL": "https://x", "ref": "values"}])
    assert [f[2] for f in run(check, two, project(), repo=repo)] == ["spec.sources[1].repoURL"]


def test_every_object_of_an_application_lands_in_a_namespace_its_project_allows(repo):
    check = references.applications
    app = application(source=chart_source())
    stray = obj("ConfigMap", "x", "data", app="auth")
    fine = [obj("ConfigMap", "y", "api", app="auth"), obj("ClusterRole", "z", "", app="auth"),
            obj("ConfigMap", "w", "data", app="other"),
            obj("ConfigMap", "u", "data", app="auth", source="rendered/prod/apps/auth.yaml"),
            obj("ConfigMap", "v", "data", app="auth", source="argocd/extra.yaml")]
    assert run(check, app, project(), stray, *fine, repo=repo) == [
        ("ConfigMap data/x", "ref.app-project", "metadata.namespace",
         "namespace 'data' is not a destination of project 'apis': Argo CD refuses to sync it", ("namespace",))]
    everywhere = project(destinations=[{"server": SERVER, "namespace": "api"}, {"server": SERVER, "namespace": "*"}])
    assert run(check, app, everywhere, stray, repo=repo) == []


def test_sync_waves_put_a_component_after_its_dependencies(eco2):
    check = references.sync_waves
    platform, auth = application("platform", wave="0"), application("auth", wave="3")
    assert run(check, platform, auth, model=eco2) == []
    assert run(check, platform, auth, model=None) == []
    assert run(check, application("platform", wave="3"), auth, model=eco2) == [
        ("Application argocd/auth", "ref.sync-wave", 'metadata.annotations["argocd.argoproj.io/sync-wave"]',
         "wave 3 does not come after platform's wave 3 (platform creates its namespace)", ("dependsOn",))]
    # No annotation is wave 0.
    assert [f[3] for f in run(check, application("platform", wave="-1"), application("auth"), model=eco2)] == []
    assert [f[3] for f in run(check, application("platform"), application("auth"), model=eco2)] == [
        "wave 0 does not come after platform's wave 0 (platform creates its namespace)"]
    postgresql = application("postgresql", wave="3")
    assert [f[3] for f in run(check, platform, postgresql, auth, model=eco2)] == [
        "wave 3 does not come after postgresql's wave 3 (postgresql declared in dependsOn)"]


# ---------------------------------------------------------------- capabilities


def sc(name: str = "gp3", app: str = "aws-ebs-csi-driver", default: bool = False) -> Obj:
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else None
    return obj("StorageClass", name, "", api="storage.k8s.io/v1", app=app, annotations=annotations, provisioner="ebs.csi.aws.com")


def pvc(storage_class: str | None = "gp3", app: str = "monitoring") -> Obj:
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return obj("PersistentVolumeClaim", "data", "monitoring", app=app, spec=spec)


WAVES = (application("aws-ebs-csi-driver", wave="1"), application("monitoring", wave="4"),
         application("aws-load-balancer-controller", wave="1"), application("metrics-server", wave="1"),
         application("auth", wave="5"))


def caps(*objs: Obj, model, builtin: frozenset = frozenset()) -> list[tuple]:
    return [f for f in run(references.capabilities, *WAVES, *objs, model=model, builtin=builtin)]


def test_a_storage_class_comes_from_one_app_in_an_earlier_wave(eco2):
    assert caps(sc(), pvc(), model=eco2) == []
    assert caps(sc(), pvc(), model=None) == []
    assert caps(sc(app="monitoring"), pvc(), model=eco2) == []  # its own
    assert caps(sc(), pvc("gp2"), model=eco2) == [
        ("PersistentVolumeClaim monitoring/data", "ref.capability", "spec.storageClassName",
         "uses storage class 'gp2', which nothing in the cluster provides: add the component that provides it, or "
         "declare it in platform.external", ("storage", "grafana"))]
    assert caps(sc(), sc(app="metrics-server"), pvc(), model=eco2)[0][3] == (
        "storage class 'gp3' is provided by several apps (aws-ebs-csi-driver, metrics-server)")
    assert caps(sc(), sc(), pvc(), model=eco2) == []  # twice from one app is still one provider
    late = [application("aws-ebs-csi-driver", wave="4"), application("monitoring", wave="4")]
    assert run(references.capabilities, *late, sc(), pvc(), model=eco2)[0][3] == (
        "storage class 'gp3' comes from aws-ebs-csi-driver, which does not sync in an earlier wave")
    # No sync-wave annotation is wave 0, as for Argo CD; neither is an app with no Application of its own.
    assert run(references.capabilities, application("aws-ebs-csi-driver"), application("monitoring", wave="1"), sc(), pvc(),
               model=eco2) == []
    assert run(references.capabilities, application("aws-ebs-csi-driver", wave="1"), application("monitoring"), sc(), pvc(),
               model=eco2)[0][3].endswith("which does not sync in an earlier wave")
    assert run(references.capabilities, application("monitoring", wave="1"), sc(), pvc(), model=eco2) == []
    assert run(references.capabilities, sc(), pvc(), model=eco2)[0][3].endswith("which does not sync in an earlier wave")


def test_a_claim_without_storage_class_needs_exactly_one_default(eco2):
    message = "no storageClassName and {} default StorageClasses: name one"
    assert caps(sc(default=True), pvc(None), model=eco2) == []
    assert caps(sc(), pvc(None), model=eco2) == [
        ("PersistentVolumeClaim monitoring/data", "ref.capability", "spec.storageClassName", message.format(0), ("storage", "grafana"))]
    assert caps(sc(default=True), sc("io2", default=True), pvc(None), model=eco2)[0][3] == message.format(2)


def test_claims_of_statefulsets_and_operator_resources_are_found(eco2):
    claim = {"metadata": {"name": "wal"}, "spec": {"storageClassName": "gp2"}}
    sts = workload(kind="StatefulSet", app="storage-worker", spec={"volumeClaimTemplates": [{"spec": {}}, claim]})
    deploy = workload(kind="Deployment", app="auth", spec={"volumeClaimTemplates": [claim]})
    storage = {"storage": {"volumeClaimTemplate": {"spec": {"storageClassName": "gp2"}}}}
    prom = obj("Prometheus", "p", "monitoring", api="monitoring.coreos.com/v1", app="monitoring", spec=storage)
    alert = obj("Alertmanager", "a", "monitoring", api="monitoring.coreos.com/v1", app="monitoring", spec={"storage": {}})
    found = caps(sc(default=True), sts, deploy, prom, alert, model=eco2)
    assert [(f[0], f[2], f[4]) for f in found] == [
        ("StatefulSet api/web", "spec.volumeClaimTemplates[1].spec.storageClassName", ("storage", "wal")),
        ("Prometheus monitoring/p", "spec.storage.volumeClaimTemplate.spec.storageClassName", ("prometheus",))]


def test_ingress_class_and_metrics_api_need_providers(eco2):
    ing = obj("Ingress", "auth", app="auth", api="networking.k8s.io/v1", spec={"ingressClassName": "alb"})
    bare = obj("Ingress", "bare", app="auth", api="networking.k8s.io/v1", spec={})
    ic = obj("IngressClass", "alb", "", api="networking.k8s.io/v1", app="aws-load-balancer-controller")
    metrics = {"metrics": [{"type": "Pods", "pods": {}}, {"type": "Resource", "resource": {"name": "cpu"}}]}
    h = obj("HorizontalPodAutoscaler", "auth", app="auth", api="autoscaling/v2", spec=metrics)
    api_svc = obj("APIService", "v1beta1.metrics.k8s.io", "", api="apiregistration.k8s.io/v1", app="metrics-server",
                  spec={"group": "metrics.k8s.io"})
    custom = obj("APIService", "v1beta1.custom.metrics.k8s.io", "", api="apiregistration.k8s.io/v1", app="metrics-server",
                 spec={"group": "custom.metrics.k8s.io"})
    assert caps(ic, ing, h, api_svc, model=eco2) == []
    found = caps(ing, bare, h, custom, model=eco2)
    assert [(f[0], f[2], f[3].split(",")[0], f[4]) for f in found] == [
        ("Ingress api/auth", "spec.ingressClassName", "uses ingress class 'alb'", ("path",)),
        ("Ingress api/bare", "spec.ingressClassName", "no ingressClassName: no controller would reconcile it", ("path",)),
        ("HorizontalPodAutoscaler api/auth", "spec.metrics[1]", "uses metrics API 'metrics.k8s.io'", ("hpa",))]
    container_metric = obj("HorizontalPodAutoscaler", "c", app="auth", api="autoscaling/v2",
                           spec={"metrics": [{"type": "ContainerResource"}]})
    assert [f[2] for f in caps(container_metric, model=eco2)] == ["spec.metrics[0]"]


def crd(kind: str, group: str = "argoproj.io", versions: tuple = (("v1alpha1", True),), app: str = "argo-rollouts") -> Obj:
    return obj("CustomResourceDefinition", f"{kind.lower()}s.{group}", "", api="apiextensions.k8s.io/v1", app=app,
               source=f"rendered/prod/crds/{app}.yaml",
               spec={"group": group, "names": {"kind": kind}, "versions": [{"name": v, "served": s} for v, s in versions]})


def test_a_custom_kind_needs_a_served_crd_or_an_external_provider(eco2):
    builtin = frozenset({("v1", "ConfigMap"), ("apps/v1", "Deployment"), ("apiextensions.k8s.io/v1", "CustomResourceDefinition")})
    ro = rollout(app="auth")
    cm = obj("ConfigMap", "x", app="auth")
    assert caps(crd("Rollout"), ro, cm, model=eco2, builtin=builtin) == []
    assert caps(ro, model=eco2) == []  # without the API server's kinds nothing is custom
    assert caps(crd("Rollout", versions=(("v1alpha1", False),)), ro, model=eco2, builtin=builtin) == [
        ("Rollout api/web", "ref.capability", "kind",
         "uses custom resource 'argoproj.io/v1alpha1/Rollout', which nothing in the cluster provides: add the component "
         "that provides it, or declare it in platform.external", ())]
    app_of_apps = obj("Application", "auth", "argocd", api=ROLLOUTS, app="auth", source="rendered/prod/apps/auth.yaml")
    listed = obj("List", "l", api="v1", app="auth")
    assert caps(app_of_apps, listed, model=eco2, builtin=builtin) == []  # Argo CD's CRDs are external in the Eco² model
    hand = obj("Widget", "w", "", api="example.org/v1", source="argocd/widget.yaml")
    assert caps(hand, model=eco2, builtin=builtin) == []  # argocd/ is applied by hand, before any app
    assert [f[0] for f in caps(obj("Widget", "w", "", api="example.org/v1", source="rendered/prod/nodes.yaml"),
                               model=eco2, builtin=builtin)] == ["Widget w"]


def test_the_custom_kinds_an_upstream_chart_installs_are_the_declared_ones(eco2):
    from generator import kinds

    check = references.declared_custom_kinds
    declared = kinds.of("argo-rollouts").api_kinds

    def crds(kinds):
        return [crd(k.rsplit("/", 1)[1], k.split("/")[0], ((k.split("/")[1], True),)) for k in kinds]

    assert run(check, *crds(declared), model=eco2) == []
    assert run(check, *crds(declared), model=None) == []
    shown = f"CustomResourceDefinition {declared[0].rsplit('/', 1)[1].lower()}s.argoproj.io"
    assert run(check, *crds(declared[1:]), crd("Extra"), model=eco2) == [
        (shown.replace(shown.split(" ")[1], f"{declared[1].rsplit('/', 1)[1].lower()}s.argoproj.io"), "ref.custom-kinds", "spec",
         "argo-rollouts installs argoproj.io/v1alpha1/Extra, which the api_kinds of generator/kinds/argo_rollouts.py do "
         "not list: Applications would not pass it to helm as an apiVersion", ()),
        (shown.replace(shown.split(" ")[1], f"{declared[1].rsplit('/', 1)[1].lower()}s.argoproj.io"), "ref.custom-kinds", "spec",
         f"argo-rollouts no longer installs {declared[0]}, which the api_kinds of generator/kinds/argo_rollouts.py "
         "still list", ())]
    unserved = crds(declared)
    unserved[0].doc["spec"]["versions"][0]["served"] = False
    assert [f[3].split(",")[0] for f in run(check, *unserved, model=eco2)] == [f"argo-rollouts no longer installs {declared[0]}"]
    # metrics-server serves its kinds through an APIService, and a local chart's CRDs are not declared anywhere.
    assert run(check, crd("NodeMetrics", "metrics.k8s.io", (("v1beta1", True),), app="metrics-server"),
               crd("Thing", "example.org", app="auth"), model=eco2) == []


def test_a_bare_pods_fields_are_under_spec(eco2):
    pod = obj("Pod", "auth-debug", app="auth", spec={"containers": [container()], "nodeSelector": {"domain": "waste"}})
    assert run(references.placement, pod, model=eco2) == [
        ("Pod api/auth-debug", "ref.placement", "spec.nodeSelector",
         "can be scheduled on k8s-api-waste; the model places it on 'k8s-api-auth' only", ("placement",))]


def test_every_service_and_every_monitor_is_checked_after_one_that_fails():
    bare = service("bare", selector=None)
    lonely = service("lonely", selector={"app": "nobody"})
    wrong_port = service("wrong", selector={"app": "web"}, ports=[{"port": 80, "targetPort": 9999}])
    found = run(references.service_selectors, bare, lonely, wrong_port, workload("a"), workload("b", labels={"app": "web"}))
    assert [(f[0], f[1]) for f in found] == [("Service api/lonely", "ref.service-selector"), ("Service api/wrong", "ref.target-port")]
    two = service("two", selector={"app": "web"}, ports=[{"port": 80, "targetPort": 9999}])
    pods = [workload("a", labels={"app": "web"}), workload("b", labels={"app": "web"})]
    assert run(references.service_selectors, two, *pods)[0][3] == (
        "targetPort 9999 is not a container port of the selected pods (Deployment/api/a, Deployment/api/b)")
    first = monitor({"matchLabels": {"app": "nobody"}})
    second = obj("ServiceMonitor", "second", api="monitoring.coreos.com/v1",
                 spec={"selector": {"matchLabels": {"app": "web"}}, "endpoints": [{"port": "metrics"}]})
    assert [(f[0], f[2]) for f in run(references.service_monitors, first, second, service(labels={"app": "web"}))] == [
        ("ServiceMonitor api/web", "spec.selector"), ("ServiceMonitor api/second", "spec.endpoints[0].port")]


def test_one_finding_or_skip_does_not_stop_the_check_of_what_follows(eco2, repo):
    # Ingress: a resource backend, then a missing Service, then a wrong port.
    resource = {"resource": {"apiGroup": "k8s.example.com", "kind": "Bucket", "name": "static"}}
    ing = ingress(paths_=[route(resource), route(backend("gone"), "/g"), route(backend(number=81), "/p")])
    assert paths(run(references.ingress_backends, ing, service())) == [
        "spec.rules[0].http.paths[1].backend.service.name", "spec.rules[0].http.paths[2].backend.service.port"]
    # NetworkPolicy: an address block and a peer selected by another label come before a peer that selects nothing.
    peers = [{"ipBlock": {"cidr": "10.0.0.0/8"}}, {"namespaceSelector": {"matchLabels": {"team": "x"}}},
             {"podSelector": {"matchLabels": {"app": "nobody"}}}]
    assert paths(run(references.network_policies, policy({}, ingress_from=peers), workload(), model=eco2)) == [
        "spec.ingress[0].from[2].podSelector"]
    assert paths(run(references.network_policies, policy({"matchLabels": {"app": "web"}}), workload(labels={"app": "db"}), model=eco2)) == [
        "spec.podSelector"]
    # Placement: a DaemonSet and a pod of no component come before a misplaced one.
    misplaced = workload("m", app="auth", nodeSelector={"domain": "waste"})
    assert [f[0] for f in run(references.placement, workload("d", kind="DaemonSet", tolerations=[{"operator": "Exists"}]),
                              workload("n", app="nobody"), misplaced, model=eco2)] == ["Deployment api/m"]
    # Rollout: no `ingress`, only `ingresses`.
    ro = rollout(canary={"stableService": "web", "trafficRouting": {"alb": {"servicePort": 80, "ingresses": ["gone"]}}})
    assert run(references.rollout_references, ro, service()) == [
        ("Rollout api/web", "ref.rollout", f"{ALB}.ingress", "Ingress 'gone' does not exist", ("delivery",))]
    # Applications: one without a rendered project, then one with a wrong path; and one with no source at all.
    apps = [application("a", project="nope", source=chart_source()), application("b", source=chart_source("charts/apis")),
            application("c")]
    assert [(f[0], f[2]) for f in run(references.applications, *apps, project(), repo=repo)] == [
        ("Application argocd/a", "spec.project"), ("Application argocd/b", "spec.source.path")]
    # Capabilities: a hand-applied object in argocd/ comes before a claim nobody provides for.
    hand = obj("Widget", "w", "", api="example.org/v1", source="argocd/widget.yaml")
    assert [f[0] for f in caps(hand, pvc("gp2"), model=eco2)] == ["PersistentVolumeClaim monitoring/data"]


def test_capability_findings_name_their_check(eco2):
    several = caps(sc(), sc(app="metrics-server"), pvc(), model=eco2)
    assert several == [("PersistentVolumeClaim monitoring/data", "ref.capability", "spec.storageClassName",
                        "storage class 'gp3' is provided by several apps (aws-ebs-csi-driver, metrics-server)", ("storage", "grafana"))]
    late = run(references.capabilities, application("aws-ebs-csi-driver", wave="4"), application("monitoring", wave="4"), sc(), pvc(),
               model=eco2)
    assert late == [("PersistentVolumeClaim monitoring/data", "ref.capability", "spec.storageClassName",
                     "storage class 'gp3' comes from aws-ebs-csi-driver, which does not sync in an earlier wave", ("storage", "grafana"))]
    bare = obj("Ingress", "bare", app="auth", api="networking.k8s.io/v1", spec={})
    assert caps(bare, model=eco2) == [("Ingress api/bare", "ref.capability", "spec.ingressClassName",
                                       "no ingressClassName: no controller would reconcile it", ("path",))]
    no_api = obj("Widget", "w", "", app="auth")
    del no_api.doc["apiVersion"]
    assert caps(no_api, model=eco2, builtin=frozenset({("v1", "ConfigMap")}))[0][3].startswith("uses custom resource '/Widget'")


def test_a_secret_declared_in_several_other_namespaces_lists_them(eco2):
    pod = workload(namespace="data", containers=[container(env=[secret_env("openai-api-key", "api-key")])])
    assert run(references.config_references, pod, model=eco2)[0][3] == (
        "Secret 'openai-api-key' is declared only in api, workers, not 'data'")
