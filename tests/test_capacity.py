"""Node capacity from the rendered pods, with the real charts: each way a node fills up, and the Eco² headroom."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO, VALUES, copy_repo, edit
from generator import capacity, output, pipeline
from generator.errors import ValidationFailed
from generator.loader import load
from generator.objects import Obj, app_of, collect


@pytest.fixture(scope="module")
def eco2():
    objs, _ = collect(output.read_generated(REPO))
    return [o for o in objs if app_of(o.source)[1] == "manifests"], load(VALUES).model


def _row(eco2, node):
    return next(r for r in capacity.table(*eco2) if r["node"] == node)


def _render_fails(tmp_path: Path, file: str, old: str, new: str) -> str:
    root = copy_repo(tmp_path)
    edit(root / "values" / file, old, new)
    with pytest.raises(ValidationFailed) as err:
        pipeline.render_to_disk(pipeline.Options(root=root, values=root / "values"), log=lambda _: None)
    assert not (root / "rendered").exists()
    return "\n".join(err.value.lines)


def test_every_pod_is_counted_where_it_runs(eco2):
    loads = capacity.loads(*eco2)
    exporters = {l.node for l in loads if l.what == "DaemonSet monitoring-node/monitoring-prometheus-node-exporter"}
    assert exporters == set(eco2[1].nodes)  # node-exporter on all 13 nodes
    mon = {l.what: l for l in loads if l.node == "k8s-monitoring"}
    # Prometheus: its 300m plus the config-reloader sidecar the operator adds (10m from the operator's flags).
    assert mon["Prometheus monitoring/monitoring-prometheus"].cpu == 310
    # Grafana: 100m plus two 20m sidecars.
    assert mon["Deployment monitoring/monitoring-grafana"].cpu == 140
    assert mon["Job monitoring/monitoring-admission-create"].pods == 1
    waste = next(l for l in loads if l.what == "Rollout api/waste")
    assert (waste.pods, waste.steady, waste.node) == (8, 2, "k8s-api-waste")  # HPA max 4, canary second set
    auth = next(l for l in loads if l.what == "Deployment api/auth")
    assert (auth.pods, auth.steady) == (3, 2)  # maxSurge 1
    assert next(l for l in loads if l.what == "StatefulSet data/postgresql").pods == 1


def test_eco2_fits_with_headroom_at_peak(eco2):
    for row in capacity.table(*eco2):
        assert row["cpu_peak"] <= row["cpu_free"] and row["memory_peak"] <= row["memory_free"], row["node"]
    assert list(capacity.findings(*eco2)) == []
    assert _row(eco2, "k8s-api-waste")["cpu_peak"] == 8 * 200 + 50 + 3 * 10  # canary pods, node-exporter, EBS node


def test_a_sidecar_that_pushes_a_node_over_names_the_node_and_the_workload(tmp_path: Path):
    """Grafana's sidecars asked for 800m each: the chart renders them into the pod, and k8s-monitoring is full."""
    out = _render_fails(tmp_path, "infra.yaml", "requests: {cpu: 20m, memory: 64Mi}\n        limits: {cpu: 100m,",
                        "requests: {cpu: 800m, memory: 64Mi}\n        limits: {cpu: 800m,")
    assert "Node k8s-monitoring: cpu: peak CPU requests 2370m of the rendered pods exceed the 1750m left" in out
    assert "Deployment monitoring/monitoring-grafana 1×1700m (1 replicas, Recreate; placed by infra.monitoring.placement.node)" in out
    assert "model: values/cluster.yaml:" in out and "nodes.k8s-monitoring.cpu" in out


def test_hpa_maximum_and_canary_second_set_count(tmp_path: Path):
    out = _render_fails(tmp_path, "services.yaml", "hpa: {minReplicas: 2, maxReplicas: 4, targetCpuUtilization: 70}",
                        "hpa: {minReplicas: 2, maxReplicas: 6, targetCpuUtilization: 70}")
    assert "Rollout api/waste 12×200m (HPA max 6 + 6 (canary: a full second set at promotion)" in out


def test_the_system_reserve_of_a_node_counts(tmp_path: Path):
    out = _render_fails(tmp_path, "cluster.yaml", "systemReserved: {cpu: 1000m, memory: 3Gi}", "systemReserved: {cpu: 1300m, memory: 3Gi}")
    assert "Node k8s-master: cpu: peak CPU requests 780m of the rendered pods exceed the 700m left after the system reserve of 1300m" in out


def test_memory_counts_too(tmp_path: Path):
    out = _render_fails(tmp_path, "infra.yaml", "requests: {cpu: 300m, memory: 1536Mi}", "requests: {cpu: 300m, memory: 2Gi}")
    assert "Node k8s-monitoring: memory: peak memory requests" in out and "Prometheus monitoring/monitoring-prometheus" in out


def _obj(kind, spec, name="w", app=None):
    return Obj("rendered/prod/manifests/x.yaml", 0, {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec},
               app, "ns")


def _pod(*containers, init=()):
    return {"containers": list(containers), "initContainers": list(init)}


def _c(cpu, mem="0", **extra):
    return {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}, **extra}


def test_effective_requests_follow_the_scheduler():
    assert capacity.pod_requests(_pod(_c("100m"), _c("50m"))) == (150, 0)
    assert capacity.pod_requests(_pod(_c("100m"), init=[_c("300m")])) == (300, 0)  # the largest init container wins
    assert capacity.pod_requests(_pod(_c("100m"), init=[_c("30m", restartPolicy="Always")])) == (130, 0)  # native sidecar
    assert capacity.pod_requests(_pod({"name": "c"})) == (0, 0)


@pytest.mark.parametrize("kind,spec,peak", [
    ("Deployment", {"replicas": 4}, 5),  # default maxSurge 25% of 4, rounded up
    ("Deployment", {"replicas": 4, "strategy": {"rollingUpdate": {"maxSurge": 2}}}, 6),
    ("Deployment", {"replicas": 3, "strategy": {"type": "Recreate"}}, 3),
    ("StatefulSet", {"replicas": 3}, 3),
    ("Rollout", {"replicas": 2}, 4),
    ("Job", {"parallelism": 3}, 3),
])
def test_peak_pod_counts(kind, spec, peak):
    assert capacity._peak(_obj(kind, spec), {})[0] == peak


def test_hpa_maximum_replaces_replicas():
    assert capacity._peak(_obj("Deployment", {"replicas": 2, "strategy": {"type": "Recreate"}}), {("Deployment", "ns", "w"): (2, 7)})[:2] == (7, 2)
