"""Node capacity from the rendered pods (generator/validate/capacity.py): each way a pod's request and count are reached,
where it lands, and the real kube-prometheus-stack chart rendered by the real helm.

The small cases build objects by hand against the real Eco² model (values/): the nodes have 2 vCPUs and a
250m reserve (1750m allocatable; k8s-master keeps 1000m), so one pod over or under that line decides a finding.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from conftest import REPO, VALUES
from generator.errors import Finding
from generator.model.loader import load
from generator.model.model import Taint
from generator.plan import resolve
from generator.quantity import cpu_millis, memory_bytes
from generator.validate import capacity
from generator.validate.objects import Obj

AUTH = {"nodeSelector": {"workload": "api", "domain": "auth"}}
INFRA_TAINT = {"key": "node-role.kubernetes.io/infrastructure", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
MONITORING = {"nodeSelector": {"workload": "monitoring"}, "tolerations": [INFRA_TAINT]}
RECREATE = {"strategy": {"type": "Recreate"}}
_index = itertools.count()


@pytest.fixture(scope="module")
def model():
    return load(VALUES).model


def _c(cpu: str | None = None, memory: str | None = None, name: str = "c", **extra) -> dict:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": name, "image": "example/app:1.0.0", "resources": {"requests": requests}, **extra}


def _pod(*containers: dict, init: tuple | list = (), **scheduling) -> dict:
    spec = {"containers": list(containers), **scheduling}
    if init:
        spec["initContainers"] = list(init)
    return spec


def _workload(kind: str, podspec: dict, name: str = "w", namespace: str = "api", app: str | None = None, **spec) -> Obj:
    api_version = {"Rollout": "argoproj.io/v1alpha1", "Job": "batch/v1", "CronJob": "batch/v1", "Pod": "v1"}.get(kind, "apps/v1")
    template = {"metadata": {"labels": {"app": name}}, "spec": podspec}
    if kind == "Pod":
        body = podspec
    elif kind == "CronJob":
        body = {"schedule": "* * * * *", "jobTemplate": {"spec": {**spec, "template": template}}}
    else:
        body = {**spec, "template": template}
    doc = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": body}
    return Obj("rendered/prod/manifests/x.yaml", next(_index), doc, app, namespace)


def _hpa(target: str, maximum: int, minimum: int = 1, kind: str = "Deployment", namespace: str = "api") -> Obj:
    doc = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": target, "namespace": namespace},
           "spec": {"scaleTargetRef": {"kind": kind, "name": target}, "minReplicas": minimum, "maxReplicas": maximum}}
    return Obj("rendered/prod/manifests/x.yaml", next(_index), doc, None, namespace)


def _cr(kind: str, spec: dict, name: str = "p", app: str | None = "monitoring") -> Obj:
    doc = {"apiVersion": "monitoring.coreos.com/v1", "kind": kind, "metadata": {"name": name, "namespace": "monitoring"}, "spec": spec}
    return Obj("rendered/prod/manifests/monitoring.yaml", next(_index), doc, app, "monitoring")


def _over(model, objs: list[Obj], node: str = "k8s-api-auth", resource: str = "cpu") -> bool:
    return any(f.loc == ("nodes", node, resource) for f in capacity.findings(objs, model))


def _single(podspec: dict, **kw) -> Obj:
    """One pod, no surge: isolates the per-pod request."""
    return _workload("Deployment", podspec, replicas=1, **RECREATE, **kw)


def _one(loads: list[capacity.PodLoad], what: str) -> capacity.PodLoad:
    found = [l for l in loads if l.what == what]
    assert len(found) == 1, found
    return found[0]


# ---------------------------------------------------------------- per-pod requests


def test_the_largest_init_container_wins_over_a_smaller_sum(model):
    assert capacity.pod_requests(_pod(_c("1000m"), init=[_c("1800m")])) == (1800, 0)
    assert _over(model, [_single(_pod(_c("1000m"), init=[_c("1800m")], **AUTH))])
    assert not _over(model, [_single(_pod(_c("1000m"), init=[_c("1700m")], **AUTH))])


def test_the_sum_of_the_containers_wins_over_a_smaller_init_container(model):
    assert capacity.pod_requests(_pod(_c("1000m"), _c("800m"), init=[_c("1500m")])) == (1800, 0)
    assert _over(model, [_single(_pod(_c("1000m"), _c("800m"), init=[_c("1500m")], **AUTH))])
    assert not _over(model, [_single(_pod(_c("1000m"), _c("700m"), init=[_c("1500m")], **AUTH))])


def test_a_native_sidecar_adds_to_the_containers(model):
    sidecar = _c("800m", "64Mi", restartPolicy="Always")
    assert capacity.pod_requests(_pod(_c("1000m", "128Mi"), init=[sidecar])) == (1800, 192 * 2**20)
    assert _over(model, [_single(_pod(_c("1000m"), init=[sidecar], **AUTH))])
    # The same container as a plain init container has finished before the others start: max, not sum.
    assert not _over(model, [_single(_pod(_c("1000m"), init=[_c("800m")], **AUTH))])
    # A plain init container starts after the sidecars before it and runs beside them.
    assert capacity.pod_requests(_pod(_c("100m"), init=[sidecar, _c("1000m")]))[0] == 1800


def test_a_container_without_requests_counts_zero():
    assert capacity.pod_requests(_pod({"name": "c"}, _c("100m"))) == (100, 0)
    assert capacity.pod_requests(_pod(_c(memory="1Gi"))) == (0, 2**30)
    # Quantities the API server takes that the model's strict parsers do not.
    assert capacity.pod_requests(_pod(_c("0.25", "1.5Gi"), _c(cpu=1))) == (1250, 3 * 2**29)


# ---------------------------------------------------------------- peak pod counts


def test_hpa_maximum_replaces_replicas(model):
    dep = _single(_pod(_c("500m"), **AUTH))
    assert _over(model, [dep, _hpa("w", 4)])  # 4 × 500m
    assert not _over(model, [dep, _hpa("w", 3)])  # 3 × 500m
    assert not _over(model, [dep, _hpa("w", 4, namespace="data")])  # another namespace's HPA
    assert not _over(model, [dep, _hpa("other", 4)])  # names another Deployment
    load = _one(capacity.loads([dep, _hpa("w", 4, minimum=2)], model), "Deployment api/w")
    assert (load.pods, load.steady, load.why) == (4, 2, "HPA max 4, Recreate (no surge)")


def test_max_surge_as_a_number(model):
    assert _over(model, [_workload("Deployment", _pod(_c("500m"), **AUTH), replicas=3,
                                   strategy={"rollingUpdate": {"maxSurge": 1}})])  # 4 × 500m
    assert not _over(model, [_workload("Deployment", _pod(_c("500m"), **AUTH), replicas=3,
                                       strategy={"rollingUpdate": {"maxSurge": 0}})])
    load = _one(capacity.loads([_workload("Deployment", _pod(_c("10m"), **AUTH), replicas=1,
                                          strategy={"rollingUpdate": {"maxSurge": 1}})], model), "Deployment api/w")
    assert (load.pods, load.steady, load.why) == (2, 1, "replicas 1 + maxSurge 1")


def test_max_surge_as_a_percentage_rounds_up_against_the_peak(model):
    def dep(cpu, surge=None, **kw):
        strategy = {"strategy": {"rollingUpdate": {"maxSurge": surge}}} if surge is not None else {}
        return _workload("Deployment", _pod(_c(cpu), **AUTH), **strategy, **kw)

    assert _over(model, [dep("500m", "1%", replicas=3)])  # 1% of 3 rounds up to 1 pod: 4 × 500m
    assert not _over(model, [dep("500m", "0%", replicas=3)])
    assert _over(model, [dep("500m", replicas=3)])  # no strategy: Kubernetes' default 25%
    # 50% of the HPA maximum 4 is 2 (of the replicas 1 it would be 1): 6 × 300m = 1800m.
    assert _over(model, [dep("300m", "50%", replicas=1), _hpa("w", 4)])
    assert not _over(model, [dep("250m", "50%", replicas=1), _hpa("w", 4)])
    assert _one(capacity.loads([dep("300m", "50%", replicas=1), _hpa("w", 4)], model), "Deployment api/w").pods == 6


def test_recreate_has_no_surge(model):
    assert not _over(model, [_workload("Deployment", _pod(_c("500m"), **AUTH), replicas=3, **RECREATE)])
    assert _over(model, [_workload("Deployment", _pod(_c("500m"), **AUTH), replicas=3,
                                   strategy={"type": "RollingUpdate"})])


def test_a_canary_rollout_counts_a_full_second_set(model):
    canary = {"canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "1m"}}]}}
    assert _over(model, [_workload("Rollout", _pod(_c("500m"), **AUTH), replicas=2, strategy=canary)])  # 4 × 500m
    assert not _over(model, [_workload("Rollout", _pod(_c("500m"), **AUTH), replicas=1, strategy=canary)])
    assert _over(model, [_workload("Rollout", _pod(_c("500m"), **AUTH), replicas=2,
                                   strategy={"blueGreen": {"activeService": "w"}})])
    rollout = _workload("Rollout", _pod(_c("200m"), **AUTH), replicas=2, strategy=canary)
    load = _one(capacity.loads([rollout, _hpa("w", 4, minimum=2, kind="Rollout")], model), "Rollout api/w")
    assert (load.pods, load.steady, load.why) == (8, 2, "HPA max 4 + canary 4 (full second set at promotion)")
    assert not _over(model, [rollout, _hpa("w", 4, minimum=2, kind="Rollout")])  # 8 × 200m = 1600m
    assert _over(model, [rollout, _hpa("w", 5, minimum=2, kind="Rollout")])  # 10 × 200m


def test_a_statefulset_has_no_surge(model):
    assert not _over(model, [_workload("StatefulSet", _pod(_c("500m"), **AUTH), replicas=3)])  # a Deployment: 2000m
    assert _over(model, [_workload("StatefulSet", _pod(_c("500m"), **AUTH), replicas=4)])
    assert _one(capacity.loads([_workload("StatefulSet", _pod(_c("1m"), **AUTH))], model), "StatefulSet api/w").pods == 1


def test_job_and_cronjob_parallelism(model):
    assert _over(model, [_workload("Job", _pod(_c("500m"), **AUTH), parallelism=4)])
    assert not _over(model, [_workload("Job", _pod(_c("500m"), **AUTH), parallelism=3)])
    assert _over(model, [_workload("CronJob", _pod(_c("500m"), **AUTH), parallelism=4)])
    assert not _over(model, [_workload("CronJob", _pod(_c("500m"), **AUTH))])  # default parallelism 1
    loads = capacity.loads([_workload("Job", _pod(_c("1m"), **AUTH)),
                            _workload("Job", _pod(_c("1m"), **AUTH), name="few", parallelism=4, completions=2)], model)
    assert _one(loads, "Job api/w").pods == 1
    assert _one(loads, "Job api/few").pods == 2  # never more pods than completions


def test_a_daemonset_runs_on_every_node_it_fits_tainted_ones_included(model):
    untainted = {n for n, node in model.nodes.items() if not node.taints}
    infra = {n for n, node in model.nodes.items() if any(t.key == INFRA_TAINT["key"] for t in node.taints)}
    assert len(untainted) == 8 and len(infra) == 4

    def nodes(*tolerations):
        ds = _workload("DaemonSet", _pod(_c("10m"), tolerations=list(tolerations)), namespace="kube-system")
        return {l.node for l in capacity.loads([ds], model)}

    assert nodes({"operator": "Exists"}) == set(model.nodes)  # all 13
    assert nodes() == untainted
    assert nodes({"key": INFRA_TAINT["key"], "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}) == untainted | infra
    assert nodes(INFRA_TAINT) == untainted | infra
    assert nodes({**INFRA_TAINT, "value": "false"}) == untainted
    ds = _workload("DaemonSet", _pod(_c("1200m"), tolerations=[{"operator": "Exists"}]), namespace="kube-system")
    assert _over(model, [ds], node="k8s-master") and not _over(model, [ds], node="k8s-api-auth")
    assert not _over(model, [_workload("DaemonSet", _pod(_c("1200m")), namespace="kube-system")], node="k8s-master")
    load = capacity.loads([ds], model)[0]
    assert (load.pods, load.why) == (1, "1 per node (DaemonSet)")


def test_a_bare_pod_counts_once(model):
    assert _over(model, [_workload("Pod", _pod(_c("1800m"), **AUTH))])
    assert not _over(model, [_workload("Pod", _pod(_c("1700m"), **AUTH))])


# ---------------------------------------------------------------- where pods land


def _affinity(*terms: list[dict]) -> dict:
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": list(t)} for t in terms]}}}}


def test_required_node_affinity_in_and_not_in(model):
    auth = _affinity([{"key": "domain", "operator": "In", "values": ["auth"]}])
    not_auth = _affinity([{"key": "workload", "operator": "In", "values": ["api"]},
                          {"key": "domain", "operator": "NotIn", "values": ["auth", "waste"]}])
    assert capacity.fits(model, _pod(**auth)) == ["k8s-api-auth"]
    assert capacity.fits(model, _pod(**not_auth)) == ["k8s-api-chat-llm", "k8s-api-location", "k8s-api-recycle-info", "k8s-api-userinfo"]
    either = _affinity([{"key": "domain", "operator": "In", "values": ["auth"]}],
                       [{"key": "domain", "operator": "In", "values": ["waste"]}])
    assert capacity.fits(model, _pod(**either)) == ["k8s-api-auth", "k8s-api-waste"]  # terms are ORed
    assert _over(model, [_single(_pod(_c("1800m"), **auth))])
    assert not _over(model, [_single(_pod(_c("1800m"), **not_auth))])  # lands on the first fit instead
    assert _over(model, [_single(_pod(_c("1800m"), **not_auth))], node="k8s-api-chat-llm")


def test_well_known_labels_and_the_other_operators(model):
    host = _affinity([{"key": "kubernetes.io/hostname", "operator": "In", "values": ["k8s-redis"]},
                      {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                      {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}])
    assert capacity.fits(model, _pod(tolerations=[INFRA_TAINT], **host)) == ["k8s-redis"]
    assert capacity.fits(model, _pod(**host)) == []  # its taint is not tolerated
    gone = _affinity([{"key": "domain", "operator": "DoesNotExist"}, {"key": "workload", "operator": "Exists"}])
    assert capacity.fits(model, _pod(**gone)) == ["k8s-worker-ai", "k8s-worker-storage"]
    assert capacity.fits(model, _pod(nodeSelector={"kubernetes.io/arch": "arm64"})) == []
    assert capacity._expression({"key": "n", "operator": "Gt", "values": ["3"]}, {"n": "5"})
    assert not capacity._expression({"key": "n", "operator": "Lt", "values": ["3"]}, {"n": "5"})
    assert not capacity._expression({"key": "n", "operator": "Gt", "values": ["3"]}, {})


def _with_node(model, name: str, **changes):
    """The Eco² model with one node changed (labels or taints), for the rules its own nodes do not exercise."""
    node = model.nodes[name].model_copy(update=changes)
    return model.model_copy(update={"nodes": {**model.nodes, name: node}})


@pytest.mark.parametrize("operator,bound,fits", [
    ("Gt", "4", True), ("Gt", "5", False),  # strictly greater (k8s.io/component-helpers nodeaffinity)
    ("Lt", "6", True), ("Lt", "5", False),  # strictly less
    ("Gt", "four", False), ("Lt", "x", False),  # a bound that is no integer matches nothing
])
def test_gt_and_lt_compare_the_label_as_an_integer(model, operator, bound, fits):
    ranked = _with_node(model, "k8s-api-auth", labels={**model.nodes["k8s-api-auth"].labels, "rank": "5"})
    pod = _pod(**_affinity([{"key": "rank", "operator": operator, "values": [bound]}]))
    assert capacity.fits(ranked, pod) == (["k8s-api-auth"] if fits else [])


def test_gt_needs_an_integer_label_and_exactly_one_value(model):
    worded = _with_node(model, "k8s-api-auth", labels={**model.nodes["k8s-api-auth"].labels, "rank": "five"})
    assert capacity.fits(worded, _pod(**_affinity([{"key": "rank", "operator": "Gt", "values": ["1"]}]))) == []
    ranked = _with_node(model, "k8s-api-auth", labels={**model.nodes["k8s-api-auth"].labels, "rank": "5"})
    assert capacity.fits(ranked, _pod(**_affinity([{"key": "rank", "operator": "Gt", "values": ["1", "2"]}]))) == []
    assert capacity.fits(ranked, _pod(**_affinity([{"key": "rank", "operator": "Eq", "values": ["5"]}]))) == []  # no such operator


def test_match_fields_select_a_node_by_name(model):
    by_name = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["k8s-api-waste"]}]}]}}}}
    assert capacity.fits(model, _pod(**by_name)) == ["k8s-api-waste"]
    both = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "workload", "operator": "In", "values": ["api"]}],
         "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["k8s-api-waste"]}]}]}}}}
    assert capacity.fits(model, _pod(**both)) == ["k8s-api-auth", "k8s-api-chat-llm", "k8s-api-location",
                                                  "k8s-api-recycle-info", "k8s-api-userinfo"]  # both parts of a term hold


def test_an_empty_term_matches_no_node_and_no_required_affinity_matches_every_node(model):
    untainted = sorted(n for n, node in model.nodes.items() if not node.taints)
    empty_term = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]}}}}
    assert capacity.fits(model, _pod(**empty_term)) == []
    preferred_only = {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [{"key": "domain", "operator": "In", "values": ["auth"]}]}}]}}}
    assert capacity.fits(model, _pod(**preferred_only)) == untainted  # a preference never keeps a pod off a node
    # Invalid (the API server requires nodeSelectorTerms; schema validation reports it): no constraint, no crash.
    no_terms = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": None}}}}
    assert capacity.fits(model, _pod(**no_terms)) == untainted


def test_noexecute_taints_keep_pods_off_and_prefernoschedule_taints_do_not(model):
    key = "example.org/draining"
    for effect, fits in (("NoExecute", False), ("PreferNoSchedule", True)):
        tainted = _with_node(model, "k8s-api-auth", taints=[Taint(key=key, effect=effect)])
        assert capacity.fits(tainted, _pod(**AUTH)) == (["k8s-api-auth"] if fits else []), effect
    tainted = _with_node(model, "k8s-api-auth", taints=[Taint(key=key, effect="NoExecute")])
    assert capacity.fits(tainted, _pod(**AUTH, tolerations=[{"key": key, "operator": "Exists", "effect": "NoExecute"}])) == [
        "k8s-api-auth"]
    # A toleration names the effect it tolerates: NoSchedule does not cover NoExecute.
    assert capacity.fits(tainted, _pod(**AUTH, tolerations=[{"key": key, "operator": "Exists", "effect": "NoSchedule"}])) == []


def test_a_toleration_without_operator_is_equal_and_an_empty_value_matches_a_taint_without_value(model):
    master = {"nodeSelector": {"kubernetes.io/hostname": "k8s-master"}}
    control_plane = "node-role.kubernetes.io/control-plane"  # tainted NoSchedule without a value
    assert capacity.fits(model, _pod(**master, tolerations=[{"key": control_plane, "operator": "Equal", "effect": "NoSchedule"}])) == [
        "k8s-master"]
    assert capacity.fits(model, _pod(**master, tolerations=[{"key": control_plane, "effect": "NoSchedule"}])) == ["k8s-master"]
    assert capacity.fits(model, _pod(**master, tolerations=[{"key": control_plane, "value": "true", "effect": "NoSchedule"}])) == []
    infra = {"nodeSelector": {"workload": "cache"}}  # k8s-redis: node-role.kubernetes.io/infrastructure=true:NoSchedule
    assert capacity.fits(model, _pod(**infra, tolerations=[{"key": INFRA_TAINT["key"], "value": "true"}])) == ["k8s-redis"]  # any effect
    assert capacity.fits(model, _pod(**infra, tolerations=[{"key": INFRA_TAINT["key"]}])) == []  # Equal to "" is not "true"
    assert capacity.fits(model, _pod(**infra, tolerations=["not a toleration", {"operator": "Exists"}])) == ["k8s-redis"]


def test_pods_land_on_the_models_node_when_they_fit_it_else_on_the_first_fit(model):
    api = _pod(_c("10m"), nodeSelector={"workload": "api"})  # fits all six API nodes
    waste = _one(capacity.loads([_single(api, app="waste")], model), "Deployment api/w")
    assert (waste.node, waste.loc) == ("k8s-api-waste", ("services", "waste", "placement", "node"))
    stray = _one(capacity.loads([_single(api)], model), "Deployment api/w")
    assert (stray.node, stray.loc) == ("k8s-api-auth", ())  # alphabetically first
    off = _one(capacity.loads([_single(_pod(_c("10m"), **AUTH), app="waste")], model), "Deployment api/w")
    assert off.node == "k8s-api-auth"  # the model's node is not among the fits
    assert capacity.loads([_single(_pod(_c("10m"), nodeSelector={"workload": "nowhere"}))], model) == []
    assert (off.source, off.index) == ("rendered/prod/manifests/x.yaml", off.index) and off.index >= 0


# ---------------------------------------------------------------- pods prometheus-operator makes


def _operator(*args: str, app: str = "monitoring") -> Obj:
    container = _c("0m", name="kube-prometheus-stack", args=["--kubelet-service=kube-system/kubelet",
                                                          "--prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1",
                                                          *args])
    return _single(_pod(container, **MONITORING), name="operator", namespace="monitoring", app=app)


def _prometheus(cpu: str = "1500m", **spec) -> Obj:
    return _cr("Prometheus", {"replicas": 1, "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}, **MONITORING, **spec})


def _mon(model, objs: list[Obj]) -> capacity.PodLoad:
    return _one(capacity.loads(objs, model), "Prometheus monitoring/p")


def test_prometheus_counts_the_config_reloader_from_the_operators_flags(model):
    fine = [_operator("--config-reloader-cpu-request=200m", "--config-reloader-memory-request=100Mi"), _prometheus()]
    load = _mon(model, fine)
    assert (load.node, load.pods, load.cpu, load.memory) == ("k8s-monitoring", 1, 1700, 2**30 + 100 * 2**20)
    assert load.loc == ("infra", "monitoring", "placement", "node")
    assert not _over(model, fine, node="k8s-monitoring")
    assert _over(model, [_operator("--config-reloader-cpu-request=300m"), _prometheus()], node="k8s-monitoring")
    assert _mon(model, [_operator("--config-reloader-cpu-request", "300m"), _prometheus()]).cpu == 1800  # "-flag value"
    assert _mon(model, [_operator("--config-reloader-cpu-request=0"), _prometheus()]).cpu == 1500  # "0": no request


def test_without_flags_the_operators_own_defaults_apply(model):
    assert capacity.RELOADER_DEFAULTS == {"cpu": "10m", "memory": "50Mi"}
    for objs in ([_prometheus()], [_operator(), _prometheus()], [_operator("--config-reloader-cpu-request=300m", app="other"), _prometheus()]):
        load = _mon(model, objs)
        assert (load.cpu, load.memory) == (1510, 2**30 + 50 * 2**20)


def test_the_custom_resources_container_overrides_count(model):
    bigger = [{"name": "config-reloader", "resources": {"requests": {"cpu": "400m"}}}]
    objs = [_operator("--config-reloader-cpu-request=10m", "--config-reloader-memory-request=50Mi"), _prometheus(containers=bigger)]
    load = _mon(model, objs)
    assert (load.cpu, load.memory) == (1900, 2**30 + 50 * 2**20)  # cpu overridden, memory kept from the flags
    assert _over(model, objs, node="k8s-monitoring")
    main = [{"name": "prometheus", "resources": {"requests": {"cpu": "100m"}}}, {"name": "extra", "resources": {"requests": {"cpu": "5m"}}}]
    assert _mon(model, [_prometheus(containers=main)]).cpu == 100 + 10 + 5


def test_alertmanager_replicas_and_placement(model):
    am = _cr("Alertmanager", {"replicas": 2, "resources": {"requests": {"cpu": "800m"}}, **MONITORING}, name="am")
    load = _one(capacity.loads([_operator("--config-reloader-cpu-request=20m"), am], model), "Alertmanager monitoring/am")
    assert (load.node, load.pods, load.cpu) == ("k8s-monitoring", 2, 820)
    assert not _over(model, [_operator("--config-reloader-cpu-request=20m"), am], node="k8s-monitoring")  # 1640m
    assert _over(model, [_operator("--config-reloader-cpu-request=80m"), am], node="k8s-monitoring")  # 2 × 880m
    untolerated = _cr("Alertmanager", {"resources": {"requests": {"cpu": "1m"}}, "nodeSelector": {"workload": "monitoring"}})
    assert capacity.loads([untolerated], model) == []  # the CR's own scheduling fields decide


# ---------------------------------------------------------------- the finding and the table


def test_the_finding_names_every_contribution_largest_first(model):
    objs = [_workload("Deployment", _pod(_c("300m", "256Mi"), **AUTH), name="api", replicas=3, app="auth",
                      strategy={"rollingUpdate": {"maxSurge": 1}}),
            _workload("DaemonSet", _pod(_c("50m", "64Mi"), tolerations=[{"operator": "Exists"}]), name="exporter", namespace="node"),
            _workload("Job", _pod(_c("700m")), name="migrate", **AUTH)]
    found = [f for f in capacity.findings(objs, model) if f.loc[:2] == ("nodes", "k8s-api-auth")]
    assert found == [Finding(("nodes", "k8s-api-auth", "cpu"),
                             "peak CPU requests 1950m of the rendered pods exceed the 1750m left after the system "
                             "reserve of 250m: Deployment api/api 4×300m/256Mi (replicas 3 + maxSurge 1; placed by "
                             "services.auth.placement.node); Job api/migrate 1×700m/0 (parallelism 1 (Job)); "
                             "DaemonSet node/exporter 1×50m/64Mi (1 per node (DaemonSet))")]
    rows = {r["node"]: r for r in capacity.table(objs, model)}
    assert len(rows) == 13
    auth = rows["k8s-api-auth"]
    assert (auth["cpu_allocatable"], auth["cpu_steady"], auth["cpu_peak"]) == (1750, 3 * 300 + 50 + 700, 1950)
    assert (auth["memory_allocatable"], auth["memory_steady"], auth["memory_peak"]) == (
        4 * 2**30 - 768 * 2**20, 3 * 256 * 2**20 + 64 * 2**20, 4 * 256 * 2**20 + 64 * 2**20)
    assert rows["k8s-master"]["cpu_allocatable"] == 1000  # its own reserve
    assert rows["k8s-redis"]["cpu_peak"] == 50


def test_memory_is_checked_too(model):
    big = _single(_pod(_c("10m", "3Gi"), **AUTH), app="auth")
    assert not _over(model, [big], resource="memory")
    bigger = _single(_pod(_c("10m", "3Gi"), _c("10m", "300Mi", name="sidecar"), **AUTH), app="auth")
    [finding] = capacity.findings([bigger], model)
    assert finding.loc == ("nodes", "k8s-api-auth", "memory")
    assert finding.message.startswith("peak memory requests 3372Mi of the rendered pods exceed the 3328Mi left "
                                      "after the system reserve of 768Mi: Deployment api/w 1×20m/3372Mi")


# ---------------------------------------------------------------- the real kube-prometheus-stack chart


CHART = REPO.parent / "shared" / "charts" / "kube-prometheus-stack-88.5.3.tgz"
MONITORING_VALUES = REPO / "rendered" / "prod" / "values" / "monitoring.yaml"


class _HelmLoader(yaml.SafeLoader):
    """PyYAML's safe loader, plus the plain scalar `=` (YAML 1.1 'value') that a Grafana dashboard renders."""


_HelmLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def _render(helm, model, *extra: Path) -> list[Obj]:
    if not CHART.is_file():
        pytest.skip(f"{CHART} is not there")
    text = helm.template(CHART, "monitoring", "monitoring", [MONITORING_VALUES, *extra], "1.28", resolve.api_versions(model))
    docs = [d for d in yaml.load_all(text, Loader=_HelmLoader) if isinstance(d, dict)]
    return [Obj("rendered/prod/manifests/monitoring.yaml", i, d, "monitoring",
                (d.get("metadata") or {}).get("namespace") or "monitoring") for i, d in enumerate(docs)]


@pytest.fixture(scope="module")
def chart(helm, model):
    return _render(helm, model)


def test_the_real_chart_pods(chart, model):
    values = yaml.safe_load(MONITORING_VALUES.read_text())
    loads = capacity.loads(chart, model)
    mon = {l.what: l for l in loads if l.node == "k8s-monitoring"}

    # Prometheus: its own requests plus the config-reloader sidecar, whose requests the operator Deployment's flags carry.
    reloader = values["prometheusOperator"]["prometheusConfigReloader"]["resources"]["requests"]
    own = values["prometheus"]["prometheusSpec"]["resources"]["requests"]
    prom = mon["Prometheus monitoring/monitoring-prometheus"]
    assert prom.cpu == cpu_millis(own["cpu"]) + cpu_millis(reloader["cpu"])
    assert prom.memory == memory_bytes(own["memory"]) + memory_bytes(reloader["memory"])
    assert prom.pods == 1 and prom.loc == ("infra", "monitoring", "placement", "node")
    args = next(a for o in chart if o.kind == "Deployment" for c in o.pod()[1]["containers"] for a in c.get("args") or []
                if a.startswith("--config-reloader-cpu-request="))
    assert args == f"--config-reloader-cpu-request={reloader['cpu']}"

    # Grafana: its own container plus every sidecar the chart renders into the pod.
    grafana = mon["Deployment monitoring/monitoring-grafana"]
    deployment = next(o for o in chart if o.kind == "Deployment" and o.name == "monitoring-grafana")
    containers = deployment.pod()[1]["containers"]
    sidecars = [c for c in containers if c["name"] != "grafana"]
    assert len(sidecars) >= 2
    sidecar_cpu = cpu_millis(values["grafana"]["sidecar"]["resources"]["requests"]["cpu"])
    assert grafana.cpu == cpu_millis(values["grafana"]["resources"]["requests"]["cpu"]) + len(sidecars) * sidecar_cpu
    assert grafana.cpu > cpu_millis(values["grafana"]["resources"]["requests"]["cpu"])

    # node-exporter: on all 13 nodes, tainted ones included.
    exporters = [l for l in loads if l.what == "DaemonSet monitoring-node/monitoring-prometheus-node-exporter"]
    assert sorted(l.node for l in exporters) == sorted(model.nodes) and len(exporters) == 13
    assert all(l.cpu == cpu_millis(values["prometheus-node-exporter"]["resources"]["requests"]["cpu"]) for l in exporters)

    assert "Alertmanager monitoring/monitoring-alertmanager" in mon
    assert not [f for f in capacity.findings(chart, model) if f.loc[:2] == ("nodes", "k8s-monitoring")]


def test_a_grafana_sidecar_that_pushes_the_monitoring_node_over(helm, model, tmp_path):
    extra = tmp_path / "sidecar.yaml"
    extra.write_text(yaml.safe_dump({"grafana": {"sidecar": {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "2"}}}}}))
    objs = _render(helm, model, extra)
    found = [f for f in capacity.findings(objs, model) if f.loc == ("nodes", "k8s-monitoring", "cpu")]
    assert len(found) == 1
    message = found[0].message
    assert "left after the system reserve of 250m" in message
    # Grafana is named, first (it is the largest), with its model field.
    parts = message.split(": ", 1)[1].split("; ")
    assert parts[0].startswith("Deployment monitoring/monitoring-grafana 1×")
    assert "placed by infra.monitoring.placement.node" in message
    grafana = _one(capacity.loads(objs, model), "Deployment monitoring/monitoring-grafana")
    assert grafana.cpu >= 100 + 2 * 2000


def test_a_contribution_names_the_model_fields_its_requests_come_from(model):
    """Named only where the model's requests add up to exactly what the rendered pod requests: auth's own
    resources (100m), PostgreSQL's main container plus its exporter (500m + 50m), and nothing for a pod whose
    requests no field (or pair of fields) of its component gives."""
    auth = _workload("Deployment", _pod(_c("100m", "128Mi"), **AUTH), name="auth", replicas=18, app="auth", **RECREATE)
    other = _workload("Deployment", _pod(_c("70m", "64Mi"), **AUTH), name="extra", replicas=1, app="auth", **RECREATE)
    [finding] = [f for f in capacity.findings([auth, other], model) if f.loc == ("nodes", "k8s-api-auth", "cpu")]
    assert ("Deployment api/auth 18×100m/128Mi (replicas 18, Recreate (no surge); placed by services.auth.placement.node; "
            "requests from services.auth.resources.requests.cpu)") in finding.message
    assert "Deployment api/extra 1×70m/64Mi (replicas 1, Recreate (no surge); placed by services.auth.placement.node)" \
        in finding.message
    pg = capacity.requested_by(resolve.by_name(model)["postgresql"], 550, 1024 * 2**20 + 64 * 2**20)
    assert pg == ((("infra", "postgresql", "resources", "requests", "cpu"),
                   ("infra", "postgresql", "exporter", "resources", "requests", "cpu")),
                  (("infra", "postgresql", "resources", "requests", "memory"),
                   ("infra", "postgresql", "exporter", "resources", "requests", "memory")))
    assert capacity.requested_by(resolve.by_name(model)["postgresql"], 551, 0) == ((), ())
    assert capacity.requested_by(None, 100, 1) == ((), ())


# ---------------------------------------------------------------- what pushed a node over, against the committed tree


def _auth(replicas: int, cpu: str = "100m", name: str = "auth", app: str | None = "auth", **scheduling) -> Obj:
    return _workload("Deployment", _pod(_c(cpu, "128Mi"), **(scheduling or AUTH)), name=name, replicas=replicas, app=app,
                     **RECREATE)


def _told(model, now: list[Obj], before: list[Obj]) -> capacity.Overcommit:
    [found] = [f for f in capacity.findings(now, model, before) if f.loc == ("nodes", "k8s-api-auth", "cpu")]
    assert isinstance(found, capacity.Overcommit)
    return found


def test_more_replicas_point_at_the_replicas_field(model):
    found = _told(model, [_auth(18)], [_auth(2)])
    assert found.changed == ("services", "auth", "replicas")
    assert found.message.endswith("; grown since the committed tree: Deployment api/auth: 2×100m -> 18×100m")


def test_a_component_with_an_hpa_points_at_its_maximum(model):
    found = _told(model, [_auth(18, app="waste")], [_auth(2, app="waste")])
    assert found.changed == ("services", "waste", "hpa", "maxReplicas")


def test_larger_requests_point_at_the_requests_field(model):
    """auth's model requests 100m per pod: the rendered pod's 100m comes from that field."""
    found = _told(model, [_auth(18)], [_auth(18, cpu="50m")])
    assert found.changed == ("services", "auth", "resources", "requests", "cpu")
    assert "Deployment api/auth: 18×50m -> 18×100m" in found.message


def test_requests_no_model_field_gives_or_both_grown_point_at_the_component(model):
    assert _told(model, [_auth(18, cpu="700m")], [_auth(18, cpu="60m")]).changed == ("services", "auth")
    assert _told(model, [_auth(30)], [_auth(2, cpu="60m")]).changed == ("services", "auth")


def test_a_workload_new_on_the_node_points_at_what_places_it(model):
    found = _told(model, [_auth(18)], [_auth(18, **MONITORING)])
    assert found.changed == ("services", "auth", "placement", "node")
    assert "Deployment api/auth: not on this node -> 18×100m" in found.message


def test_two_workloads_grown_are_both_named_and_neither_is_pointed_at(model):
    found = _told(model, [_auth(10), _auth(10, name="extra")], [_auth(2), _auth(2, name="extra")])
    assert found.changed == ()
    assert "Deployment api/auth: 2×100m -> 10×100m; Deployment api/extra: 2×100m -> 10×100m" in found.message


def test_a_chart_pod_that_grew_is_named_but_has_no_model_field(model):
    found = _told(model, [_auth(18, app=None)], [_auth(2, app=None)])
    assert found.changed == () and "Deployment api/auth: 2×100m -> 18×100m" in found.message


def test_nothing_grown_says_so(model):
    found = _told(model, [_auth(18)], [_auth(18)])
    assert found.changed == ()
    assert found.message.endswith("(no pod on it requests more than in the committed tree)")


def test_a_smaller_workload_is_not_named_as_grown(model):
    found = _told(model, [_auth(18), _auth(1, name="extra")], [_auth(2), _auth(3, name="extra")])
    assert found.changed == ("services", "auth", "replicas") and "api/extra: 3" not in found.message


def test_without_the_committed_tree_a_finding_says_nothing_of_a_change(model):
    [found] = [f for f in capacity.findings([_auth(18)], model) if f.loc == ("nodes", "k8s-api-auth", "cpu")]
    assert type(found) is Finding and "committed" not in found.message
