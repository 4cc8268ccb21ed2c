"""The platform as a whole: upstream charts hydrated like Argo CD does it, capabilities closed, nothing that flaps.

Each rule gets a failing case made from a real change (to a chart, to the committed tree, to the model)
and the Eco² tree as its passing case.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import REPO, VALUES
from generator import pipeline, yamlio
from generator.helm import HelmError
from generator.hydrate import hydrate
from generator.model.loader import load
from generator.render import applications
from generator.validate import validation
from generator.write import output

SHARED = REPO.parent / "shared" / "charts"


# ---------------------------------------------------------------- Helm hooks, the way Argo CD 3.5 maps them


@pytest.mark.parametrize("annotations,phases", [
    ({}, None),
    ({"helm.sh/hook": "crd-install"}, None),  # Argo CD's normal CRD handling
    ({"helm.sh/hook": "pre-install,pre-upgrade"}, ["PreSync", "PreSync"]),
    ({"helm.sh/hook": "post-install"}, ["PostSync"]),
    ({"helm.sh/hook": "post-upgrade"}, ["PostSync"]),
    ({"helm.sh/hook": "pre-delete"}, ["PreDelete"]),
    ({"helm.sh/hook": "post-delete"}, ["PostDelete"]),
    ({"helm.sh/hook": "test"}, []),  # no Argo CD equivalent: never applied
    ({"helm.sh/hook": "test-success"}, []),
    ({"helm.sh/hook": "pre-rollback"}, []),
    ({"helm.sh/hook": "test", "argocd.argoproj.io/hook": "PostSync"}, ["PostSync"]),  # Argo CD's own hook wins
    ({"argocd.argoproj.io/hook": "Skip"}, None),
])
def test_hook_phases_follow_argo_cd(annotations, phases):
    assert hydrate.hook_phases({"kind": "Pod", "metadata": {"name": "x", "annotations": annotations}}) == phases


def test_list_objects_are_unwrapped_and_test_hooks_dropped():
    text = yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}]},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "t", "annotations": {"helm.sh/hook": "test"}}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "annotations": {"helm.sh/hook": "pre-install"}}},
    ])
    out = hydrate.normalize(text)
    assert [(d["kind"], d["metadata"]["name"]) for d in out.docs] == [("ConfigMap", "a"), ("Job", "j")]
    assert out.dropped == ["Pod/t (helm.sh/hook: test): a hook Argo CD never runs"]


def test_a_plain_equals_sign_loads_as_a_string():
    """kube-prometheus-stack renders a plain `=`; PyYAML's safe loader alone rejects it."""
    assert yamlio.load_all("a: =\n") == [{"a": "="}]
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.safe_load("a: =\n")


# ---------------------------------------------------------------- flapping charts


def _chart(tmp_path: Path, template: str) -> Path:
    chart = tmp_path / "flappy"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: flappy\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("random: true\n")
    (chart / "templates" / "secret.yaml").write_text(template)
    return chart


FLAPPY = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: token\ndata:\n"
          "  value: {{ if .Values.random }}{{ randAlphaNum 16 | quote }}{{ else }}fixed{{ end }}\n")


def test_flap_detector_catches_randalphanum_and_passes_once_configured_away(tmp_path: Path, helm):
    chart = _chart(tmp_path, FLAPPY)
    assert hydrate.may_flap(chart)
    off = tmp_path / "off.yaml"
    off.write_text("random: false\n")
    on = hydrate.Invocation("flappy", chart, "flappy", "default", ())
    configured = hydrate.Invocation("flappy-off", chart, "flappy", "default", (off,))
    result = hydrate.hydrate([on, configured], tmp_path, helm, tmp_path / "cache")
    assert result.flaps["flappy"] == [(("ConfigMap", "", "token"), ("data", "value"))]
    assert result.flaps["flappy-off"] == []


def test_a_chart_without_generators_is_rendered_once(tmp_path: Path):
    assert not hydrate.may_flap(_chart(tmp_path, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: now-and-then\n"))


def test_metrics_server_flaps_with_helm_certificates_and_not_with_its_own(tmp_path: Path, helm):
    chart = SHARED / "metrics-server-3.13.1.tgz"
    helm_tls = tmp_path / "helm-tls.yaml"
    helm_tls.write_text("tls: {type: helm}\napiService: {insecureSkipTLSVerify: false}\n")
    own = tmp_path / "own.yaml"
    own.write_text("tls: {type: metrics-server}\n")
    result = hydrate.hydrate([hydrate.Invocation("helm-tls", chart, "ms", "metrics-server", (helm_tls,), "1.28"),
                              hydrate.Invocation("own", chart, "ms", "metrics-server", (own,), "1.28")],
                             tmp_path, helm, tmp_path / "cache")
    assert any(key[0] == "Secret" for key, _ in result.flaps["helm-tls"])
    assert result.flaps["own"] == []


def test_generated_fields_are_ignored_by_the_application_and_blanked_in_rendered():
    app = yaml.safe_load((REPO / "rendered/prod/apps/aws-load-balancer-controller.yaml").read_text())
    assert "RespectIgnoreDifferences=true" in app["spec"]["syncPolicy"]["syncOptions"]
    docs = yamlio.load_all((REPO / "rendered/prod/manifests/aws-load-balancer-controller.yaml").read_text())
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert set(secret["data"].values()) == {pipeline.GENERATED}
    hooks = [d for d in docs if d["kind"].endswith("WebhookConfiguration")]
    assert hooks and all(w["clientConfig"]["caBundle"] == pipeline.GENERATED for d in hooks for w in d["webhooks"])


def test_a_flap_the_application_does_not_ignore_is_an_error(tmp_path: Path, monkeypatch):
    from conftest import copy_repo

    monkeypatch.setattr(applications, "_generated", lambda comp: [])
    root = copy_repo(tmp_path)
    with pytest.raises(HelmError) as err:
        pipeline.render_to_disk(pipeline.Options(root=root, values=root / "values"), log=lambda _: None)
    assert 'Secret/aws-load-balancer-controller/aws-load-balancer-tls: data["tls.key"] differs' in str(err.value)
    assert "differs between two renders of aws-load-balancer-controller-3.5.0.tgz" in str(err.value)
    assert not (root / "rendered").exists()


# ---------------------------------------------------------------- checks over the hydrated tree


@pytest.fixture(scope="module")
def tree():
    """prod's committed tree and model (each environment is validated on its own; test_environments covers them)."""
    return pipeline.environment_files(output.read_generated(REPO), "prod"), load(VALUES, env="prod")


def _findings(tree, change) -> list[str]:
    files, loaded = tree
    files = dict(files)
    change(files)
    report = validation.validate_files(files, REPO, loaded, loaded.model.cluster.kubernetes_version)
    return [str(i) for i in report.issues]


def _edit_docs(files: dict, path: str, fn) -> None:
    docs = yamlio.load_all(files[path].decode())
    files[path] = yamlio.dump_all(fn(docs)).encode()


def test_eco2_tree_has_no_findings(tree):
    assert _findings(tree, lambda files: None) == []


def test_removing_the_storage_provider_fails_at_every_claim(tree):
    found = _findings(tree, lambda f: _edit_docs(f, "rendered/prod/manifests/aws-ebs-csi-driver.yaml",
                                                 lambda docs: [d for d in docs if d["kind"] != "StorageClass"]))
    capability = [f for f in found if "[ref.capability]" in f]
    assert any("StatefulSet data/postgresql: spec.volumeClaimTemplates[0].spec.storageClassName: uses storage class 'gp3'" in f
               and "model: values/infra.yaml" in f for f in capability), capability
    assert any("Prometheus monitoring/monitoring-prometheus: spec.storage.volumeClaimTemplate.spec.storageClassName" in f for f in capability)
    assert any("PersistentVolumeClaim monitoring/monitoring-grafana: spec.storageClassName" in f for f in capability)


def test_a_provider_in_a_later_wave_is_an_error(tree):
    found = _findings(tree, lambda f: f.__setitem__(
        "rendered/prod/apps/aws-ebs-csi-driver.yaml",
        f["rendered/prod/apps/aws-ebs-csi-driver.yaml"].replace(b"sync-wave: '1'", b"sync-wave: '7'")))
    assert any("storage class 'gp3' comes from aws-ebs-csi-driver, which does not sync in an earlier wave" in f for f in found)


def test_ingress_class_metrics_api_and_custom_kinds_need_providers(tree):
    def change(f):
        _edit_docs(f, "rendered/prod/manifests/aws-load-balancer-controller.yaml",
                   lambda docs: [d for d in docs if d["kind"] != "IngressClass"])
        _edit_docs(f, "rendered/prod/manifests/metrics-server.yaml", lambda docs: [d for d in docs if d["kind"] != "APIService"])
        del f["rendered/prod/crds/argo-rollouts.yaml"]

    found = " ".join(_findings(tree, change))
    assert "Ingress api/auth: spec.ingressClassName: uses ingress class 'alb', which nothing in the cluster provides" in found
    assert "HorizontalPodAutoscaler api/waste: spec.metrics[0]: uses metrics API 'metrics.k8s.io'" in found
    assert "Rollout api/waste: kind: uses custom resource 'argoproj.io/v1alpha1/Rollout'" in found


def test_a_chart_that_stops_installing_a_declared_kind_is_caught(tree):
    found = _findings(tree, lambda f: _edit_docs(f, "rendered/prod/crds/argo-rollouts.yaml",
                                                 lambda docs: [d for d in docs if d["spec"]["names"]["kind"] != "Experiment"]))
    assert any("argo-rollouts no longer installs argoproj.io/v1alpha1/Experiment" in f for f in found)


def test_a_hydrated_crd_that_differs_from_the_pinned_one_is_reported(tree):
    def change(docs):
        crd = next(d for d in docs if d["spec"]["names"]["kind"] == "ServiceMonitor")
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"].pop("jobLabel")
        return docs

    found = _findings(tree, lambda f: _edit_docs(f, "rendered/prod/crds/monitoring.yaml", change))
    assert any("the schema of monitoring.coreos.com/v1 ServiceMonitor differs from the pinned" in f and "[schema.crd]" in f
               for f in found)


def test_node_agents_must_run_on_every_node(tree):
    def change(docs):
        ds = next(d for d in docs if d["kind"] == "DaemonSet")
        ds["spec"]["template"]["spec"]["tolerations"] = []
        return docs

    found = _findings(tree, lambda f: _edit_docs(f, "rendered/prod/manifests/monitoring.yaml", change))
    assert any("DaemonSet monitoring-node/monitoring-prometheus-node-exporter" in f and "runs on 8 of 13 nodes" in f
               for f in found), found


def test_pod_security_follows_the_namespace_level(tree):
    """node-exporter's hostNetwork passes in its privileged namespace and fails once that is restricted."""
    def restrict(docs):
        ns = next(d for d in docs if d["kind"] == "Namespace" and d["metadata"]["name"] == "monitoring-node")
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "restricted"
        return docs

    def change(f):
        _edit_docs(f, "rendered/prod/manifests/platform.yaml", restrict)

    found = _findings(tree, change)
    assert any("monitoring-prometheus-node-exporter: spec.template.spec.hostNetwork: hostNetwork is not allowed in a "
               "namespace of Pod Security level restricted" in f for f in found), found[:5]


def test_a_token_is_fine_only_where_rbac_binds_the_service_account(tree):
    found = _findings(tree, lambda f: _edit_docs(f, "rendered/prod/manifests/metrics-server.yaml",
                                                 lambda docs: [d for d in docs if d["kind"] not in ("ClusterRoleBinding", "RoleBinding")]))
    assert any("Deployment metrics-server/metrics-server: spec.template.spec.automountServiceAccountToken" in f for f in found)


def test_every_object_lands_in_a_namespace_its_project_allows(tree):
    def change(f):
        path = "argocd/prod/projects/platform.yaml"
        f[path] = f[path].replace(b"  - server: https://kubernetes.default.svc\n    namespace: kube-system\n", b"")

    found = _findings(tree, change)
    assert any("Service kube-system/monitoring-coredns: metadata.namespace: namespace 'kube-system' is not a destination "
               "of project 'platform'" in f for f in found), found[:5]


# ---------------------------------------------------------------- reviewing a CRD or chart bump


def test_a_crd_change_reads_as_versions_and_fields_not_a_wall_of_yaml():
    from generator import review

    path = "rendered/prod/crds/monitoring.yaml"
    base = (REPO / path).read_bytes()
    docs = yamlio.load_all(base.decode())
    crd = next(d for d in docs if d["spec"]["names"]["kind"] == "ServiceMonitor")
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"].pop("jobLabel")
    spec["properties"]["shardLabel"] = {"type": "string", "description": "new in the bump"}
    spec["properties"]["sampleLimit"]["type"] = "string"
    spec["description"] = "every description of an upstream bump changes; none of it is shown"
    crd["spec"]["versions"].append({**crd["spec"]["versions"][0], "name": "v2", "storage": False})
    head = yamlio.dump_all(docs).encode()
    report = review.compare(review.Snapshot("base", {path: base}), review.Snapshot("head", {path: head}))
    text = review.render_text(report)
    assert "version v2" in text and "spec.shardLabel" in text and "spec.jobLabel" in text
    assert "spec.sampleLimit type" in text
    assert "new in the bump" not in text and "none of it is shown" not in text
    assert len(text.splitlines()) < 20, text


@pytest.mark.parametrize("entry,path,covered", [
    ({"kind": "Secret", "group": "", "name": "tls", "jsonPointers": ["/data"]}, ("data", "tls.key"), True),
    ({"kind": "Secret", "group": "", "name": "tls", "jsonPointers": ["/data"]}, ("metadata", "labels"), False),
    ({"kind": "Secret", "group": "", "name": "other", "jsonPointers": ["/data"]}, ("data", "tls.key"), False),
    ({"kind": "Secret", "group": "", "name": "tls", "jqPathExpressions": [".webhooks[]?.clientConfig.caBundle"]},
     ("webhooks", 2, "clientConfig", "caBundle"), True),
    ({"kind": "Secret", "group": "", "name": "tls", "jqPathExpressions": [".webhooks[]?.clientConfig.caBundle"]},
     ("webhooks", 2, "clientConfig", "service"), False),
    ({"kind": "Secret", "group": "", "name": "tls", "jqPathExpressions": ["select(.x)"]}, ("data", "x"), False),
])
def test_ignore_differences_cover_exactly_their_fields(entry, path, covered):
    app = {"spec": {"ignoreDifferences": [entry]}}
    doc = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls"}}
    assert pipeline._covered(app, ("Secret", "", "tls"), doc, path) is covered


def test_render_refuses_a_node_over_capacity_and_writes_nothing(tmp_path: Path):
    """Grafana's sidecars asked for 800m each: the chart renders them into the pod and k8s-monitoring is full."""
    from conftest import copy_repo, edit
    from generator.errors import ValidationFailed

    root = copy_repo(tmp_path)
    edit(root / "values" / "infra.yaml", "requests: {cpu: 20m, memory: 64Mi}\n        limits: {cpu: 100m,",
         "requests: {cpu: 800m, memory: 64Mi}\n        limits: {cpu: 800m,")
    with pytest.raises(ValidationFailed) as err:
        pipeline.render_to_disk(pipeline.Options(root=root, values=root / "values"), log=lambda _: None)
    out = "\n".join(err.value.lines)
    assert "Node k8s-monitoring: cpu: peak CPU requests" in out and "[capacity]" in out, out[:2000]
    assert "Deployment monitoring/monitoring-grafana" in out and "infra.monitoring.placement.node" in out
    assert "model: values/cluster.yaml:" in out and "nodes.k8s-monitoring.cpu" in out
    assert not (root / "rendered").exists()
