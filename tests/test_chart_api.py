"""charts/api: the API service chart (rolling Deployment or Argo Rollouts canary), rendered by the real helm
with the Eco² values of all six services and every ci scenario."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import Rendered, schema_rejection, write_chart_values
from generator.helm import HelmError
from generator.plan import resolve

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "api"
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
SCENARIO_RELEASE = "demo-api"
ECO2_APIS = {"auth", "userinfo", "location", "waste", "recycle-info", "chat-llm"}
ECO2_CANARIES = {"waste", "chat-llm"}


class Render(Rendered):
    @property
    def canary(self) -> bool:
        return self.values["strategy"] == "canary"

    @property
    def kind(self) -> str:
        return "Rollout" if self.canary else "Deployment"

    def workload(self) -> dict[str, Any]:
        return self.one(self.kind, self.release)

    def pod(self) -> dict[str, Any]:
        return self.workload()["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def eco2(tmp_path_factory):
    """The Eco² model, and the values the generator writes for each API service."""
    model, written = write_chart_values(tmp_path_factory.mktemp("eco2-values"), "api")
    files = {comp.name: (comp.namespace, path) for comp, path in written}
    assert set(files) == ECO2_APIS
    return model, files


@pytest.fixture(scope="module")
def renders(helm, eco2) -> dict[str, Render]:
    """Every case rendered once: the Eco² APIs in their namespace, and each ci scenario in `api`."""
    model, files = eco2
    kube, apis = model.cluster.kubernetes_version, resolve.api_versions(model)
    cases = {f"eco2-{name}": (name, ns, path) for name, (ns, path) in files.items()}
    cases |= {f"ci-{p.name.removesuffix('-values.yaml')}": (SCENARIO_RELEASE, "api", p) for p in SCENARIOS}
    return {case: Render(release, ns, yaml.safe_load(path.read_text()),
                         helm.template(CHART, release, ns, [path], kube, apis))
            for case, (release, ns, path) in cases.items()}


CASES = [f"eco2-{a}" for a in sorted(ECO2_APIS)] + [f"ci-{p.name.removesuffix('-values.yaml')}" for p in SCENARIOS]


@pytest.fixture(params=CASES)
def r(request, renders) -> Render:
    return renders[request.param]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _container(r: Render) -> dict[str, Any]:
    [container] = r.pod()["containers"]
    return container


# ---------------------------------------------------------------- chart-level


def test_the_scenarios_cover_rolling_canary_hpa_and_internal():
    values = {p.name.removesuffix("-values.yaml"): yaml.safe_load(p.read_text()) for p in SCENARIOS}
    assert set(values) == {"rolling", "rolling-with-hpa", "canary-with-hpa", "internal", "canary-internal"}
    shape = {name: (v["strategy"], v["hpa"]["enabled"], v["ingress"]["enabled"], v["service"]["type"])
             for name, v in values.items()}
    assert shape == {
        "rolling": ("rolling", False, True, "NodePort"),
        "rolling-with-hpa": ("rolling", True, True, "NodePort"),
        "canary-with-hpa": ("canary", True, True, "NodePort"),
        "internal": ("rolling", False, False, "ClusterIP"),
        "canary-internal": ("canary", False, False, "ClusterIP"),
    }
    assert "analysis" in values["canary-with-hpa"]["canary"] and "analysis" not in values["canary-internal"]["canary"]


def test_rendered_objects_are_valid_kubernetes(renders, validator):
    findings = [str(f) for case, r in renders.items() for f in validator.validate_stream(case, r.text)]
    # The Rollout's pod template is also checked as a Deployment's, against the built-in (strict) schema.
    for case, r in renders.items():
        if r.canary:
            rollout = r.workload()
            as_deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": r.release},
                             "spec": {"selector": rollout["spec"]["selector"], "template": rollout["spec"]["template"]}}
            findings += [str(f) for f in validator.validate(f"{case} (Rollout pod template)", 0, as_deployment)]
    assert findings == []


@pytest.mark.parametrize("edit, helm_says", [
    (lambda v: v.update(replica=2), "additional properties 'replica' not allowed"),
    (lambda v: v["canary"]["analysis"].update(intervall=v["canary"]["analysis"].pop("interval")),
     "additional properties 'intervall' not allowed"),
    (lambda v: v["service"].update(nodeport=v["service"].pop("nodePort")), "additional properties 'nodeport' not allowed"),
    (lambda v: v.update(strategy="blue-green"), "at '/strategy': value must be one of 'rolling', 'canary'"),
    (lambda v: v.pop("canary"), "missing property 'canary'"),
    (lambda v: v.update(rolling={"maxSurge": 1, "maxUnavailable": 0}), "at '/rolling': false schema"),
    (lambda v: v["canary"]["steps"].__setitem__(0, {"setWeight": 10, "pause": "1m"}), "maxProperties"),
    (lambda v: v["canary"]["analysis"].update(successThreshold=95), "successThreshold"),
], ids=["top-level-typo", "typo-three-levels-deep", "typo-two-levels-deep", "unknown-strategy",
        "canary-without-its-block", "rolling-block-on-a-canary", "step-with-two-actions", "threshold-as-percent"])
def test_misspelt_values_are_rejected_by_the_schema(helm, eco2, tmp_path, edit, helm_says):
    assert helm_says in schema_rejection(helm, CHART, "waste", "api", eco2[1]["waste"][1], edit, tmp_path)


@pytest.mark.parametrize("edit, helm_says", [
    (lambda v: v["hpa"].update(minReplicas=5), "hpa.minReplicas (5) is above hpa.maxReplicas (4)"),
    (lambda v: v["canary"]["analysis"].update(startingStep=6), "canary.analysis.startingStep (6) must be the index"),
], ids=["hpa-min-above-max", "analysis-after-the-last-step"])
def test_values_the_schema_cannot_express_fail_the_render(helm, eco2, tmp_path, edit, helm_says):
    model, files = eco2
    values = yaml.safe_load(files["waste"][1].read_text())
    edit(values)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(values))
    with pytest.raises(HelmError, match=re.escape(helm_says)):
        helm.template(CHART, "waste", "api", [bad], model.cluster.kubernetes_version, [])


# ---------------------------------------------------------------- objects


def test_objects_kinds_and_names(r):
    name = r.release
    expected = {(kind, name) for kind in ("Service", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy",
                                          "ServiceMonitor", "PrometheusRule")}
    expected.add((r.kind, name))
    if r.canary:
        expected |= {("Service", f"{name}-stable"), ("Service", f"{name}-canary")}
        if "analysis" in r.values["canary"]:
            expected.add(("AnalysisTemplate", r.values["canary"]["analysis"]["templateName"]))
    if r.values["ingress"]["enabled"]:
        expected.add(("Ingress", name))
    if r.values["hpa"]["enabled"]:
        expected.add(("HorizontalPodAutoscaler", name))
    assert r.objects() == expected
    assert not r.all("Secret")
    assert all("namespace" not in d["metadata"] for d in r.docs)  # the release namespace applies


def test_canary_renders_a_rollout_and_rolling_a_deployment(r):
    if r.canary:
        assert r.all("Deployment") == [] and len(r.all("Rollout")) == 1
        assert r.workload()["apiVersion"] == "argoproj.io/v1alpha1"
    else:
        assert r.all("Rollout") == [] and r.all("AnalysisTemplate") == [] and len(r.all("Deployment")) == 1
        assert r.workload()["apiVersion"] == "apps/v1"


def test_eco2_delivery_per_service(renders):
    for name in ECO2_APIS:
        r = renders[f"eco2-{name}"]
        assert r.canary == (name in ECO2_CANARIES), name
        assert r.values["hpa"]["enabled"] == (name in ECO2_CANARIES), name
    waste = renders["eco2-waste"].workload()["spec"]["strategy"]["canary"]
    assert waste["steps"] == [{"setWeight": 10}, {"pause": {"duration": "5m"}}, {"setWeight": 30},
                              {"pause": {"duration": "5m"}}, {"setWeight": 50}, {"pause": {"duration": "5m"}}]
    assert waste["analysis"]["templates"] == [{"templateName": "waste-success-rate"}]
    assert renders["eco2-chat-llm"].one("AnalysisTemplate", "chat-llm-success-rate")


def test_rolling_update_comes_from_values(r):
    spec = r.workload()["spec"]
    assert spec["minReadySeconds"] == r.values["minReadySeconds"]
    if r.canary:
        return
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": r.values["rolling"]}


def test_canary_strategy_comes_from_values(r):
    if not r.canary:
        return
    canary = r.workload()["spec"]["strategy"]["canary"]
    steps = [{"setWeight": s["setWeight"]} if "setWeight" in s else {"pause": {"duration": s["pause"]}}
             for s in r.values["canary"]["steps"]]
    assert canary["steps"] == steps
    assert canary["stableService"] == f"{r.release}-stable"
    assert canary["canaryService"] == f"{r.release}-canary"
    if r.values["ingress"]["enabled"]:
        assert canary["scaleDownDelaySeconds"] == r.values["canary"]["scaleDownDelaySeconds"]
        assert canary["trafficRouting"] == {"alb": {"ingress": r.release, "rootService": r.release,
                                                    "servicePort": r.values["service"]["port"]}}
    else:  # no Ingress to split by: replica counts do it, and scaleDownDelaySeconds needs traffic routing
        assert "trafficRouting" not in canary and "scaleDownDelaySeconds" not in canary
    analysis = r.values["canary"].get("analysis")
    if analysis is None:
        assert "analysis" not in canary
    else:
        assert canary["analysis"]["templates"] == [{"templateName": analysis["templateName"]}]
        assert canary["analysis"]["startingStep"] == analysis["startingStep"]


def test_rollout_and_analysis_template_arguments_are_bound_both_ways(r):
    if not r.canary or "analysis" not in r.values["canary"]:
        assert r.all("AnalysisTemplate") == []
        return
    canary = r.workload()["spec"]["strategy"]["canary"]
    [ref] = canary["analysis"]["templates"]
    template = r.one("AnalysisTemplate", ref["templateName"])["spec"]
    passed = {a["name"]: a for a in canary["analysis"]["args"]}
    declared = {a["name"]: a for a in template["args"]}
    assert len(passed) == len(canary["analysis"]["args"]) and len(declared) == len(template["args"])
    assert set(passed) <= set(declared), "the Rollout passes an argument the template does not declare"
    required = {n for n, a in declared.items() if "value" not in a and "valueFrom" not in a}
    assert required <= set(passed), "a template argument without a default is not passed"
    for arg in passed.values():
        assert ("value" in arg) != ("valueFrom" in arg), arg
    # Every placeholder the template uses is declared.
    used = set(re.findall(r"\{\{\s*args\.([\w-]+)\s*\}\}", yaml.safe_dump(template["metrics"])))
    assert used and used <= set(declared)
    # The canary's pods only: the latest ReplicaSet's hash, matched on the label the ServiceMonitor copies.
    hash_args = [n for n, a in passed.items() if a.get("valueFrom") == {"podTemplateHashValue": "Latest"}]
    assert len(hash_args) == 1
    [metric] = template["metrics"]
    query = metric["provider"]["prometheus"]["query"]
    assert query.count(f'rollouts_pod_template_hash="{{{{args.{hash_args[0]}}}}}"') == 2
    monitor = r.one("ServiceMonitor", r.release)["spec"]
    assert monitor["podTargetLabels"] == ["rollouts-pod-template-hash"]
    assert passed["service-name"]["value"] == r.release  # the job label of the root Service's series


def test_analysis_measures_the_canary_success_rate(r):
    if not r.canary or "analysis" not in r.values["canary"]:
        return
    a = r.values["canary"]["analysis"]
    [metric] = r.one("AnalysisTemplate", a["templateName"])["spec"]["metrics"]
    assert metric["interval"] == a["interval"] and metric["failureLimit"] == a["failureLimit"]
    assert "count" not in metric  # background analysis: runs until the rollout completes or fails
    prom = metric["provider"]["prometheus"]
    assert prom["address"] == a["prometheusAddress"]
    numerator, denominator = prom["query"].split("\n/\n")
    assert 'status!~"5.*"' in numerator and "status" not in denominator
    assert f"[{a['window']}]" in numerator and f"[{a['window']}]" in denominator
    assert "http_requests_total" in numerator and "http_requests_total" in denominator
    assert metric["successCondition"] == f"len(result) == 0 || isNaN(result[0]) || result[0] >= {a['successThreshold']}"
    assert "failureCondition" not in metric  # so a measurement below the threshold counts as failed


def test_services_of_the_rollout_and_its_ingress_exist(r):
    if not r.canary:
        assert {s["metadata"]["name"] for s in r.all("Service")} == {r.release}
        return
    canary = r.workload()["spec"]["strategy"]["canary"]
    names = {canary["stableService"], canary["canaryService"], r.release}
    assert {s["metadata"]["name"] for s in r.all("Service")} == names
    alb = canary.get("trafficRouting", {}).get("alb")
    if alb is None:
        return
    ingress = r.one("Ingress", alb["ingress"])
    [rule] = ingress["spec"]["rules"]
    [path] = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": alb["rootService"], "port": {"name": "use-annotation"}}
    for name in names | {alb["rootService"]}:
        assert alb["servicePort"] in [p["port"] for p in r.one("Service", name)["spec"]["ports"]]


def test_service_types_and_node_ports(r):
    svc = r.values["service"]
    for service in r.all("Service"):
        assert service["spec"]["type"] == svc["type"]
        [port] = service["spec"]["ports"]
        assert port["port"] == svc["port"]
        if service["metadata"]["name"] == r.release:
            assert port.get("nodePort") == svc.get("nodePort")
        else:  # stable and canary: allocated by Kubernetes
            assert "nodePort" not in port
    if r.values["ingress"]["enabled"]:  # target-type instance: the ALB reaches pods through node ports
        assert r.values["ingress"]["annotations"]["alb.ingress.kubernetes.io/target-type"] == "instance"
        assert svc["type"] == "NodePort"


def test_eco2_node_ports(renders):
    node_ports = {name: renders[f"eco2-{name}"].one("Service", name)["spec"]["ports"][0]["nodePort"] for name in ECO2_APIS}
    assert len(set(node_ports.values())) == len(ECO2_APIS)
    assert all(30000 <= p <= 32767 for p in node_ports.values())


def test_services_target_the_named_container_port(r):
    [port] = _container(r)["ports"]
    assert port == {"name": "http", "containerPort": r.values["port"], "protocol": "TCP"}
    for service in r.all("Service"):
        [svc_port] = service["spec"]["ports"]
        assert svc_port["targetPort"] == "http" and svc_port["name"] == "http"


def test_ingress_from_values(r):
    ing = r.values["ingress"]
    if not ing["enabled"]:
        assert r.all("Ingress") == []
        return
    ingress = r.one("Ingress", r.release)
    assert ingress["metadata"]["annotations"] == ing["annotations"]
    spec = ingress["spec"]
    assert spec["ingressClassName"] == ing["className"]
    [rule] = spec["rules"]
    assert rule["host"] == ing["host"]
    [path] = rule["http"]["paths"]
    assert path["path"] == ing["path"] and path["pathType"] == "Prefix"
    if not r.canary:
        assert path["backend"]["service"] == {"name": r.release, "port": {"number": r.values["service"]["port"]}}


def test_hpa_targets_the_workload_which_then_has_no_replicas(r):
    spec = r.workload()["spec"]
    hpa = r.values["hpa"]
    if not hpa["enabled"]:
        assert r.all("HorizontalPodAutoscaler") == []
        assert spec["replicas"] == r.values["replicas"]
        return
    assert "replicas" not in spec  # the HPA owns it: Helm and Argo CD must not reset it
    h = r.one("HorizontalPodAutoscaler", r.release)["spec"]
    workload = r.workload()
    assert h["scaleTargetRef"] == {"apiVersion": workload["apiVersion"], "kind": workload["kind"], "name": r.release}
    assert (h["minReplicas"], h["maxReplicas"]) == (hpa["minReplicas"], hpa["maxReplicas"])
    assert h["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": hpa["targetCpuUtilization"]}}}]


def test_selectors_match_the_pods(r):
    workload = r.workload()["spec"]
    selector = workload["selector"]["matchLabels"]
    pod_labels = workload["template"]["metadata"]["labels"]
    assert _selects(selector, pod_labels)
    assert set(selector) == {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
    for service in r.all("Service"):
        assert service["spec"]["selector"] == selector
    assert r.one("PodDisruptionBudget", r.release)["spec"]["selector"]["matchLabels"] == selector
    assert r.one("PodDisruptionBudget", r.release)["spec"]["minAvailable"] == r.values["pdbMinAvailable"]


def test_service_monitor_scrapes_the_root_service_only(r):
    sm = r.one("ServiceMonitor", r.release)["spec"]
    selected = [s for s in r.all("Service") if _selects(sm["selector"]["matchLabels"], s["metadata"]["labels"])]
    assert [s["metadata"]["name"] for s in selected] == [r.release]
    assert "namespaceSelector" not in sm
    [endpoint] = sm["endpoints"]
    assert endpoint == {"port": "http", "path": r.values["metricsPath"],
                        "interval": r.values["serviceMonitor"]["interval"],
                        "scrapeTimeout": r.values["serviceMonitor"]["scrapeTimeout"]}
    assert ("podTargetLabels" in sm) == r.canary


def test_placement_equals_values(r):
    pod = r.pod()
    assert pod.get("nodeSelector", {}) == r.values["placement"]["nodeSelector"]
    assert pod.get("tolerations", []) == r.values["placement"]["tolerations"]


def test_eco2_each_api_is_pinned_to_its_node(renders):
    for name in ECO2_APIS:
        assert renders[f"eco2-{name}"].pod()["nodeSelector"] == {"workload": "api", "domain": name}


def test_pods_are_restricted(r):
    sa = r.one("ServiceAccount", r.release)
    assert sa["automountServiceAccountToken"] is False
    pod = r.pod()
    assert pod["serviceAccountName"] == r.release
    assert pod["automountServiceAccountToken"] is False
    sc = pod["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001 and sc["fsGroup"] == 10001
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    tmp_volumes = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    assert "initContainers" not in pod
    for container in pod["containers"]:
        csc = container["securityContext"]
        assert csc["allowPrivilegeEscalation"] is False
        assert csc["readOnlyRootFilesystem"] is True
        assert csc["capabilities"] == {"drop": ["ALL"]}
        assert "privileged" not in csc
        assert any(m["mountPath"] == "/tmp" and m["name"] in tmp_volumes for m in container["volumeMounts"])


def test_container_image_resources_and_probes(r):
    c = _container(r)
    image = r.values["image"]
    assert c["image"] == f"{image['repository']}:{image['tag']}"
    assert c["imagePullPolicy"] == image["pullPolicy"]
    assert c["resources"] == r.values["resources"]
    assert c["livenessProbe"] == r.values["probes"]["liveness"]
    assert c["readinessProbe"] == r.values["probes"]["readiness"]


def test_eco2_probes(renders):
    c = _container(renders["eco2-auth"])
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8000}
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8000}
    assert "latest" not in c["image"]


def test_env_and_secret_references(r):
    expected = [{"name": e["name"], "value": e["value"]} for e in r.values["env"]]
    expected += [{"name": s["name"], "valueFrom": {"secretKeyRef": {"name": s["secret"], "key": s["key"]}}}
                 for s in r.values["secretEnv"]]
    assert _container(r)["env"] == expected


def test_eco2_secrets_are_referenced_never_rendered(renders):
    def refs(name):
        return {(e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
                for e in _container(renders[f"eco2-{name}"])["env"] if "valueFrom" in e}
    assert ("jwt-secret", "secret-key") in refs("auth")
    assert ("openai-api-key", "api-key") in refs("chat-llm")
    assert {("rabbitmq-credentials", "username"), ("rabbitmq-credentials", "password")} <= refs("waste")
    assert all(("postgresql-credentials", "password") in refs(n) for n in ECO2_APIS)
    assert not any(r.all("Secret") for r in renders.values())


def test_network_policy_selects_the_pods_and_admits_the_container_port(r):
    policy = r.one("NetworkPolicy", r.release)["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert _selects(policy["podSelector"]["matchLabels"], r.workload()["spec"]["template"]["metadata"]["labels"])
    assert {p["port"] for rule in policy["ingress"] for p in rule["ports"]} == {r.values["port"]}


def test_alerts(r):
    [group] = r.one("PrometheusRule", r.release)["spec"]["groups"]
    rules = {rule["alert"]: rule for rule in group["rules"]}
    assert set(rules) == {"ApiHighErrorRatio", "ApiHighLatencyP95", "ApiPodDown"}
    alerts = r.values["alerts"]
    assert {rule["for"] for rule in rules.values()} == {alerts["for"]}
    scope = f'namespace="{r.namespace}", job="{r.release}"'
    errors = rules["ApiHighErrorRatio"]["expr"]
    assert 'status=~"5.*"' in errors and errors.count("http_requests_total") == 2 and errors.count(scope) == 2
    assert errors.rstrip().endswith(f"> {alerts['errorRatio']}")
    latency = rules["ApiHighLatencyP95"]["expr"]
    assert "histogram_quantile(0.95" in latency and "http_request_duration_seconds_bucket" in latency and scope in latency
    assert float(latency.rstrip().rsplit("> ", 1)[1]) == alerts["latencyP95Seconds"]
    down = rules["ApiPodDown"]["expr"]
    assert f'owner_kind="{r.kind}", owner_name="{r.release}"' in down
    assert "kube_replicaset_status_ready_replicas" in down and "kube_replicaset_spec_replicas" in down
    assert f'up{{namespace="{r.namespace}", job="{r.release}"}} == 0' in down
    # Probes, the ALB health check and scrapes are not user traffic.
    handlers = {r.values["metricsPath"], r.values["probes"]["liveness"]["httpGet"]["path"],
                r.values["probes"]["readiness"]["httpGet"]["path"]}
    assert f'handler!~"{"|".join(sorted(handlers))}"' in errors


def test_eco2_alert_thresholds(renders):
    rules = {x["alert"]: x for x in renders["eco2-waste"].one("PrometheusRule")["spec"]["groups"][0]["rules"]}
    assert rules["ApiHighErrorRatio"]["expr"].rstrip().endswith("> 0.05")
    assert rules["ApiHighLatencyP95"]["expr"].rstrip().endswith("> 1")
    assert rules["ApiHighErrorRatio"]["for"] == "5m"


def test_a_canary_without_analysis_renders_no_template(helm, eco2, tmp_path):
    model, files = eco2
    values = copy.deepcopy(yaml.safe_load(files["waste"][1].read_text()))
    del values["canary"]["analysis"]
    path = tmp_path / "no-analysis.yaml"
    path.write_text(yaml.safe_dump(values))
    r = Render("waste", "api", values, helm.template(CHART, "waste", "api", [path], model.cluster.kubernetes_version, []))
    assert r.all("AnalysisTemplate") == []
    assert "analysis" not in r.workload()["spec"]["strategy"]["canary"]
    assert "podTargetLabels" in r.one("ServiceMonitor")["spec"]  # harmless, and ready for an analysis
