"""charts/worker: the Celery worker chart, rendered by the real helm with the Eco² values and every ci scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import Rendered, schema_rejection, write_chart_values
from generator.helm import HelmError
from generator.plan import resolve

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "worker"
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
SCENARIO_RELEASE = "demo-worker"


class Render(Rendered):
    @property
    def beat_name(self) -> str:
        return f"{self.release}-beat"

    def pod_templates(self) -> list[dict[str, Any]]:
        return [d["spec"]["template"] for d in self.docs if d["kind"] in ("StatefulSet", "Deployment")]


@pytest.fixture(scope="module")
def eco2(tmp_path_factory):
    """The Eco² model, and the values the generator writes for each of its workers."""
    model, written = write_chart_values(tmp_path_factory.mktemp("eco2-values"), "worker")
    files = {comp.name: (comp.namespace, path) for comp, path in written}
    assert set(files) == {"storage-worker", "ai-worker"}
    return model, files


@pytest.fixture(scope="module")
def renders(helm, eco2) -> dict[str, Render]:
    """Every case rendered once: the Eco² workers in their namespace, and each ci scenario in `workers`."""
    model, files = eco2
    kube, apis = model.cluster.kubernetes_version, resolve.api_versions(model)
    cases = {f"eco2-{name}": (name, ns, path) for name, (ns, path) in files.items()}
    cases |= {f"ci-{p.name.removesuffix('-values.yaml')}": (SCENARIO_RELEASE, "workers", p) for p in SCENARIOS}
    return {case: Render(release, ns, yaml.safe_load(path.read_text()),
                         helm.template(CHART, release, ns, [path], kube, apis))
            for case, (release, ns, path) in cases.items()}


CASES = ["eco2-storage-worker", "eco2-ai-worker"] + [f"ci-{p.name.removesuffix('-values.yaml')}" for p in SCENARIOS]


@pytest.fixture(params=CASES)
def r(request, renders) -> Render:
    return renders[request.param]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# ---------------------------------------------------------------- chart-level


def test_the_scenarios_cover_beat_and_no_beat_and_one_replica():
    assert [p.name for p in SCENARIOS] == ["single-replica-values.yaml", "with-beat-values.yaml", "without-beat-values.yaml"]
    values = {p.name: yaml.safe_load(p.read_text()) for p in SCENARIOS}
    assert values["with-beat-values.yaml"]["beat"]["enabled"] is True
    assert values["without-beat-values.yaml"]["beat"]["enabled"] is False
    assert values["single-replica-values.yaml"]["replicas"] == 1


def test_rendered_objects_are_valid_kubernetes(renders, validator):
    findings = [str(f) for case, r in renders.items() for f in validator.validate_stream(case, r.text)]
    assert findings == []


@pytest.mark.parametrize("edit, helm_says", [
    (lambda v: v.update(replica=2), "at '': additional properties 'replica' not allowed"),
    (lambda v: v["wal"]["storage"].update(storagClass=v["wal"]["storage"].pop("storageClass")),
     "at '/wal/storage': additional properties 'storagClass' not allowed"),
    (lambda v: v["celery"].update(pool="threadz"), "at '/celery/pool': value must be one of"),
    (lambda v: v["beat"].pop("enabled"), "at '/beat': missing property 'enabled'"),
], ids=["top-level-typo", "typo-two-levels-deep", "unknown-pool", "missing-field"])
def test_misspelt_values_are_rejected_by_the_schema(helm, eco2, tmp_path, edit, helm_says):
    assert helm_says in schema_rejection(helm, CHART, "storage-worker", "workers", eco2[1]["storage-worker"][1], edit, tmp_path)


def test_a_beat_without_resources_is_refused(helm, eco2, tmp_path):
    model, files = eco2
    values = yaml.safe_load(files["storage-worker"][1].read_text())
    del values["beat"]["resources"]  # optional in the schema (a disabled beat has none)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(values))
    with pytest.raises(HelmError, match="beat.resources is required when beat.enabled is true"):
        helm.template(CHART, "storage-worker", "workers", [bad], model.cluster.kubernetes_version, [])


# ---------------------------------------------------------------- objects


def test_objects_kinds_and_names(r):
    name = r.release
    expected = {(kind, name) for kind in ("StatefulSet", "Service", "ServiceAccount", "PodDisruptionBudget",
                                          "NetworkPolicy", "ServiceMonitor", "PrometheusRule")}
    if r.values["beat"]["enabled"]:
        expected.add(("Deployment", r.beat_name))
    assert r.objects() == expected
    assert not r.all("Secret")
    assert all("namespace" not in d["metadata"] for d in r.docs)  # the release namespace applies


def test_eco2_storage_worker_has_a_beat_and_ai_worker_none(renders):
    assert ("Deployment", "storage-worker-beat") in renders["eco2-storage-worker"].objects()
    assert not renders["eco2-ai-worker"].all("Deployment")


def test_statefulset_gets_one_wal_volume_per_replica(r):
    sts = r.one("StatefulSet", r.release)["spec"]
    wal = r.values["wal"]
    assert sts["replicas"] == r.values["replicas"]
    assert sts["podManagementPolicy"] == "Parallel"
    assert sts["updateStrategy"]["type"] == "RollingUpdate"
    assert sts["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    [claim] = sts["volumeClaimTemplates"]
    assert claim["spec"] == {"accessModes": [wal["storage"]["accessMode"]],
                             "storageClassName": wal["storage"]["storageClass"],
                             "resources": {"requests": {"storage": wal["storage"]["size"]}}}
    # Immutable once created: labels that change with a release would make every upgrade fail.
    assert "app.kubernetes.io/version" not in claim["metadata"].get("labels", {})
    pod = sts["template"]["spec"]
    [container] = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == wal["mountPath"]
    assert wal["path"].startswith(wal["mountPath"] + "/")
    # The claim comes from the template only: no pod volume shares one claim between replicas.
    assert not [v for v in pod.get("volumes", []) if "persistentVolumeClaim" in v]
    assert {"name": "WAL_PATH", "value": wal["path"]} in container["env"]


def test_governing_service_is_headless_and_exists(r):
    sts = r.one("StatefulSet", r.release)["spec"]
    svc = r.one("Service", sts["serviceName"])
    assert svc["spec"]["clusterIP"] == "None"


def test_worker_command_is_built_from_values(r):
    c = r.values["celery"]
    [container] = r.one("StatefulSet", r.release)["spec"]["template"]["spec"]["containers"]
    assert container["command"] == [
        "celery", "-A", c["app"], "worker", "--queues=" + ",".join(c["queues"]), f"--pool={c['pool']}",
        f"--concurrency={c['concurrency']}", f"--loglevel={c['logLevel']}",
    ]
    assert "args" not in container
    pod = r.one("StatefulSet", r.release)["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == r.values["terminationGracePeriodSeconds"]


def test_eco2_storage_worker_command_line(renders):
    [container] = renders["eco2-storage-worker"].one("StatefulSet")["spec"]["template"]["spec"]["containers"]
    assert " ".join(container["command"]) == ("celery -A ecoeco.worker worker --queues=q.fast,q.bulk,q.sched "
                                              "--pool=eventlet --concurrency=1000 --loglevel=INFO")


def test_beat_is_one_recreated_replica_only_when_enabled(r):
    beats = r.all("Deployment")
    if not r.values["beat"]["enabled"]:
        assert beats == []
        return
    [beat] = beats
    spec = beat["spec"]
    assert beat["metadata"]["name"] == r.beat_name
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    c = r.values["celery"]
    assert container["command"][:5] == ["celery", "-A", c["app"], "beat", f"--loglevel={c['logLevel']}"]
    [schedule_arg] = container["command"][5:]
    schedule = schedule_arg.removeprefix("--schedule=")
    assert schedule != schedule_arg
    # The schedule file lives on an emptyDir (the root filesystem is read-only).
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    assert any(schedule.startswith(m["mountPath"] + "/") and m["name"] in empty_dirs for m in container["volumeMounts"])
    assert container["resources"] == r.values["beat"]["resources"]
    assert "ports" not in container
    for probe in ("livenessProbe", "readinessProbe"):
        assert schedule in " ".join(container[probe]["exec"]["command"])


def test_selectors_match_their_pods_and_never_overlap(r):
    sts = r.one("StatefulSet", r.release)
    sts_selector = sts["spec"]["selector"]["matchLabels"]
    sts_pod = sts["spec"]["template"]["metadata"]["labels"]
    assert _selects(sts_selector, sts_pod)
    assert set(sts_selector) == {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
    for selector in (r.one("Service", r.release)["spec"]["selector"],
                     r.one("PodDisruptionBudget", r.release)["spec"]["selector"]["matchLabels"]):
        assert _selects(selector, sts_pod)
    if r.values["beat"]["enabled"]:
        beat = r.one("Deployment", r.beat_name)
        beat_selector = beat["spec"]["selector"]["matchLabels"]
        beat_pod = beat["spec"]["template"]["metadata"]["labels"]
        assert _selects(beat_selector, beat_pod)
        assert not _selects(sts_selector, beat_pod), "the StatefulSet would adopt the beat pod"
        assert not _selects(beat_selector, sts_pod), "the beat Deployment would adopt worker pods"
        assert not _selects(r.one("Service", r.release)["spec"]["selector"], beat_pod)
        assert not _selects(r.one("PodDisruptionBudget", r.release)["spec"]["selector"]["matchLabels"], beat_pod)


def test_pdb_comes_from_values(r):
    assert r.one("PodDisruptionBudget", r.release)["spec"]["maxUnavailable"] == r.values["pdbMaxUnavailable"]


def test_metrics_service_targets_the_named_container_port(r):
    [container] = r.one("StatefulSet", r.release)["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": r.values["metricsPort"]}
    [svc_port] = r.one("Service", r.release)["spec"]["ports"]
    assert svc_port["targetPort"] == "metrics" and svc_port["name"] == "metrics"
    assert svc_port["port"] == r.values["metricsPort"]


def test_service_monitor_selects_exactly_one_service(r):
    sm = r.one("ServiceMonitor", r.release)["spec"]
    selected = [s for s in r.all("Service") if _selects(sm["selector"]["matchLabels"], s["metadata"]["labels"])]
    assert [s["metadata"]["name"] for s in selected] == [r.release]
    assert "namespaceSelector" not in sm  # its own (the release) namespace
    [endpoint] = sm["endpoints"]
    assert endpoint["port"] in {p["name"] for p in selected[0]["spec"]["ports"]}
    assert endpoint["interval"] == r.values["serviceMonitor"]["interval"]
    assert endpoint["scrapeTimeout"] == r.values["serviceMonitor"]["scrapeTimeout"]


def test_placement_equals_values_on_every_pod(r):
    for template in r.pod_templates():
        pod = template["spec"]
        assert pod.get("nodeSelector", {}) == r.values["placement"]["nodeSelector"]
        assert pod.get("tolerations", []) == r.values["placement"]["tolerations"]


def test_pods_are_restricted(r):
    sa = r.one("ServiceAccount", r.release)
    assert sa["automountServiceAccountToken"] is False
    for template in r.pod_templates():
        pod = template["spec"]
        assert pod["serviceAccountName"] == r.release
        assert pod["automountServiceAccountToken"] is False
        sc = pod["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001 and sc["fsGroup"] == 10001
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        tmp_volumes = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for container in pod.get("initContainers", []) + pod["containers"]:
            csc = container["securityContext"]
            assert csc["allowPrivilegeEscalation"] is False
            assert csc["readOnlyRootFilesystem"] is True
            assert csc["capabilities"] == {"drop": ["ALL"]}
            assert "privileged" not in csc
            assert any(m["mountPath"] == "/tmp" and m["name"] in tmp_volumes for m in container["volumeMounts"])


def test_every_container_has_resources_and_probes(r):
    [worker] = r.one("StatefulSet", r.release)["spec"]["template"]["spec"]["containers"]
    assert worker["resources"] == r.values["resources"]
    assert worker["livenessProbe"] == r.values["probes"]["liveness"]
    assert worker["readinessProbe"] == r.values["probes"]["readiness"]
    for template in r.pod_templates():
        for container in template["spec"].get("initContainers", []) + template["spec"]["containers"]:
            assert container["resources"]["requests"] and container["resources"]["limits"]
            assert container["livenessProbe"] and container["readinessProbe"]


def test_env_and_secret_references(r):
    expected = [{"name": e["name"], "value": e["value"]} for e in r.values["env"]]
    expected += [{"name": s["name"], "valueFrom": {"secretKeyRef": {"name": s["secret"], "key": s["key"]}}}
                 for s in r.values["secretEnv"]]
    for template in r.pod_templates():
        [container] = template["spec"]["containers"]
        assert container["env"] == expected


def test_eco2_secrets_are_referenced_never_rendered(renders):
    refs = {(e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
            for e in renders["eco2-ai-worker"].one("StatefulSet")["spec"]["template"]["spec"]["containers"][0]["env"]
            if "valueFrom" in e}
    assert {("postgresql-credentials", "password"), ("rabbitmq-credentials", "username"),
            ("rabbitmq-credentials", "password"), ("openai-api-key", "api-key")} <= refs
    assert not any(r.all("Secret") for r in renders.values())


def test_network_policy_covers_worker_and_beat(r):
    policy = r.one("NetworkPolicy", r.release)["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    for template in r.pod_templates():
        assert _selects(policy["podSelector"]["matchLabels"], template["metadata"]["labels"])
    scrape_ports = {p["port"] for rule in policy["ingress"] for p in rule["ports"]}
    assert scrape_ports == {r.values["metricsPort"]}


def test_alerts(r):
    [group] = r.one("PrometheusRule", r.release)["spec"]["groups"]
    rules = {rule["alert"]: rule for rule in group["rules"]}
    expected = {"CeleryTaskFailureRatioHigh", "CeleryWorkerPodsDown"}
    if r.values["beat"]["enabled"]:
        expected.add("CeleryBeatDown")
        assert f'deployment="{r.beat_name}"' in rules["CeleryBeatDown"]["expr"]
    assert set(rules) == expected
    alerts = r.values["alerts"]
    assert {rule["for"] for rule in rules.values()} == {alerts["for"]}
    failure = rules["CeleryTaskFailureRatioHigh"]["expr"]
    assert "celery_task_failed_total" in failure and "celery_task_(failed|succeeded)_total" in failure
    assert "sum by (namespace, pod, hostname)" in failure
    assert failure.rstrip().endswith(f"> {alerts['failureRatio']}")
    # Scoped to this release's scraped series, so two workers in one namespace do not alert for each other.
    assert f'service="{r.release}"' in failure and f'namespace="{r.namespace}"' in failure
    down = rules["CeleryWorkerPodsDown"]["expr"]
    assert "kube_statefulset_status_replicas_ready" in down and "kube_statefulset_replicas" in down
    assert f'statefulset="{r.release}"' in down
