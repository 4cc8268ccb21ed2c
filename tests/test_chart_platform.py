"""charts/platform: namespaces with Pod Security labels and default-deny policies, rendered by the real helm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import schema_rejection, write_chart_values
from generator.plan import resolve

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "platform"
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
# The platform app's destination: the chart writes only Namespaces and objects with an explicit namespace.
RELEASE_NAMESPACE = "default"
PSA = ("enforce", "audit", "warn")


@pytest.fixture(scope="module")
def eco2(tmp_path_factory):
    """The Eco² model and the platform values the generator writes for it."""
    model, [(comp, path)] = write_chart_values(tmp_path_factory.mktemp("eco2-values"), "platform")
    return model, comp.name, path


@pytest.fixture(scope="module")
def renders(helm, eco2) -> dict[str, tuple[dict[str, Any], str]]:
    """case -> (values, helm output): the Eco² values and every ci scenario, each rendered once."""
    model, release, path = eco2
    kube, apis = model.cluster.kubernetes_version, resolve.api_versions(model)
    cases = {"eco2-model": (release, path)} | {f"ci-{p.name.removesuffix('-values.yaml')}": ("platform", p) for p in SCENARIOS}
    return {case: (yaml.safe_load(p.read_text()), helm.template(CHART, rel, RELEASE_NAMESPACE, [p], kube, apis))
            for case, (rel, p) in cases.items()}


CASES = ["eco2-model"] + [f"ci-{p.name.removesuffix('-values.yaml')}" for p in SCENARIOS]


@pytest.fixture(params=CASES)
def case(request, renders) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    values, text = renders[request.param]
    return values, [d for d in yaml.safe_load_all(text) if d]


def test_scenarios_are_eco2_and_minimal():
    assert [p.name for p in SCENARIOS] == ["eco2-values.yaml", "minimal-values.yaml"]
    assert len(yaml.safe_load((CHART / "ci" / "minimal-values.yaml").read_text())["namespaces"]) == 1


def test_rendered_objects_are_valid_kubernetes(renders, validator):
    assert [str(f) for case, (_, text) in renders.items() for f in validator.validate_stream(case, text)] == []


def test_only_namespaces_and_default_deny_policies(case):
    _, docs = case
    assert {d["kind"] for d in docs} <= {"Namespace", "NetworkPolicy"}
    for d in docs:
        # Namespaced objects say where they go: the release namespace is not where they belong.
        assert ("namespace" in d["metadata"]) == (d["kind"] != "Namespace")


def test_every_namespace_with_its_pod_security_level(case):
    values, docs = case
    namespaces = {d["metadata"]["name"]: d["metadata"]["labels"] for d in docs if d["kind"] == "Namespace"}
    assert list(namespaces) == [ns["name"] for ns in values["namespaces"]]
    for ns in values["namespaces"]:
        labels = namespaces[ns["name"]]
        assert {mode: labels[f"pod-security.kubernetes.io/{mode}"] for mode in PSA} == dict.fromkeys(PSA, ns["podSecurity"])
        assert labels["app.kubernetes.io/part-of"] == values["partOf"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"


def test_default_deny_exactly_where_asked(case):
    values, docs = case
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    assert sorted(p["metadata"]["namespace"] for p in policies) == sorted(
        ns["name"] for ns in values["namespaces"] if ns["defaultDeny"])
    for p in policies:
        assert p["metadata"]["name"] == "default-deny"
        assert p["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_eco2_namespaces(renders):
    docs = [d for d in yaml.safe_load_all(renders["eco2-model"][1]) if d]
    levels = {d["metadata"]["name"]: d["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
              for d in docs if d["kind"] == "Namespace"}
    assert levels == {"api": "restricted", "workers": "restricted", "messaging": "restricted", "data": "restricted",
                      "monitoring": "restricted", "monitoring-node": "privileged", "argo-rollouts": "restricted",
                      "aws-load-balancer-controller": "restricted", "aws-ebs-csi-driver": "privileged",
                      "metrics-server": "restricted"}
    denied = {d["metadata"]["namespace"] for d in docs if d["kind"] == "NetworkPolicy"}
    assert denied == {"api", "workers", "messaging", "data"}


def test_namespaces_are_never_pruned(case):
    _, docs = case
    for d in docs:
        if d["kind"] == "Namespace":
            assert d["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false"


@pytest.mark.parametrize("edit, helm_says", [
    (lambda v: v.update(partof="eco2"), "at '': additional properties 'partof' not allowed"),
    (lambda v: v["namespaces"][0].update(defaultdeny=True), "at '/namespaces/0': additional properties 'defaultdeny' not allowed"),
    (lambda v: v["namespaces"][0].update(podSecurity="strict"), "at '/namespaces/0/podSecurity': value must be one of"),
], ids=["top-level-typo", "typo-in-a-namespace", "unknown-level"])
def test_misspelt_values_are_rejected_by_the_schema(helm, eco2, tmp_path, edit, helm_says):
    _, release, path = eco2
    assert helm_says in schema_rejection(helm, CHART, release, RELEASE_NAMESPACE, path, edit, tmp_path)
