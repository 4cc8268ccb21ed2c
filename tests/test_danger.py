"""The diff's danger rules on small trees: each rule fires alone, with its rule name, group and whole message, and
each safe neighbour of it does not. (tests/test_diff.py runs the same rules end to end through git and the CLI.)

What is dangerous is Kubernetes' and Argo CD's behaviour, not this code's: deleting an Application with the
resources finalizer deletes what it deployed; a namespace, a PVC or a CRD takes its contents with it; a
StatefulSet's volumeClaimTemplates and volume sizes cannot shrink; a narrowed AppProject stops the syncs it no
longer allows; a queue removed from the RabbitMQ definitions loses its messages.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import yaml

from generator import review
from generator.quantity import kubernetes_quantity


def snap(label: str, files: dict[str, list[dict[str, Any]]]) -> review.Snapshot:
    return review.Snapshot(label, {path: yaml.safe_dump_all(docs, sort_keys=False).encode() for path, docs in files.items()})


def dangers(old: dict[str, list[dict]], new: dict[str, list[dict]]) -> list[tuple[str, str, str]]:
    return [(d.rule, d.group, d.message) for d in review.compare(snap("base", old), snap("head", new)).dangers]


def obj(kind: str, name: str, namespace: str | None = None, api: str = "v1", **body: Any) -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": api, "kind": kind, "metadata": meta, **body}


def app(name: str, namespace: str = "data", api: str = "argoproj.io/v1alpha1", kind: str = "Application") -> dict[str, Any]:
    return obj(kind, name, "argocd", api, spec={"project": "p", "destination": {"namespace": namespace}})


def sts(name: str, *templates: tuple[str, str]) -> dict[str, Any]:
    vcts = [{"metadata": {"name": t}, "spec": {"resources": {"requests": {"storage": size}}}} for t, size in templates]
    return obj("StatefulSet", name, "data", "apps/v1", spec={"serviceName": name, "volumeClaimTemplates": vcts} if vcts
               else {"serviceName": name})


M = "rendered/prod/manifests/db.yaml"
A = "rendered/prod/apps/db.yaml"
V = "rendered/prod/values/db.yaml"
FINALIZER = "Argo CD deletes it and, through its finalizer, everything it deployed"


@pytest.mark.parametrize("removed,expected", [
    (app("db"), [("application-removed", "prod/db", f"prod/db: Application argocd/db removed: {FINALIZER}")]),
    (app("db", kind="ApplicationSet"), [("application-removed", "prod/db", f"prod/db: ApplicationSet argocd/db removed: {FINALIZER}")]),
    (app("db", api="example.com/v1"), []),  # someone else's kind named Application: no finalizer of Argo CD's
])
def test_an_application_removed(removed, expected):
    assert dangers({A: [removed]}, {}) == expected


@pytest.mark.parametrize("removed,expected", [
    (obj("Namespace", "data"), [("namespace-removed", "prod/db", "prod/db: Namespace data removed: everything in it is deleted")]),
    (obj("PersistentVolumeClaim", "pgdata", "data"),
     [("pvc-removed", "prod/db", "prod/db: PersistentVolumeClaim data/pgdata removed: its volume and the data on it go with it")]),
    (obj("CustomResourceDefinition", "rollouts.argoproj.io", api="apiextensions.k8s.io/v1"),
     [("crd-removed", "prod/db", "prod/db: CustomResourceDefinition rollouts.argoproj.io removed: every object of that type in "
                                 "the cluster is deleted")]),
    (sts("db", ("data", "10Gi"), ("wal", "1Gi")),
     [("volume-template-removed", "prod/db", "prod/db: StatefulSet data/db removed with its volume templates (data, wal): its "
                                            "replicas lose their volumes")]),
    (sts("db"), []),  # no volume templates: its pods come back elsewhere, nothing is lost
    (obj("Deployment", "db", "data", "apps/v1"), []),
    (obj("ConfigMap", "db", "data"), []),
    (obj("AppProject", "p", "argocd", "example.com/v1"), []),  # not Argo CD's
])
def test_an_object_removed(removed, expected):
    assert dangers({M: [removed, obj("Service", "keep", "data")]}, {M: [obj("Service", "keep", "data")]}) == expected


def test_a_project_removed_stops_every_application_in_it():
    assert dangers({"argocd/projects/p.yaml": [obj("AppProject", "p", "argocd", "argoproj.io/v1alpha1")]}, {}) == [
        ("project-narrowed", "argocd", "argocd: AppProject argocd/p removed: every Application in it stops syncing")]


def test_a_renamed_claim_is_a_removed_one_and_a_renamed_deployment_is_nothing():
    spec = {"accessModes": ["ReadWriteOnce"], "storageClassName": "gp3", "resources": {"requests": {"storage": "10Gi"}}}
    labels = {"app": "db", "part-of": "eco2", "tier": "data", "team": "platform"}
    old = obj("PersistentVolumeClaim", "pgdata", "data", spec=spec)
    new = obj("PersistentVolumeClaim", "pgdata-v2", "data", spec=spec)
    old["metadata"]["labels"] = new["metadata"]["labels"] = labels
    assert dangers({M: [old]}, {M: [new]}) == [
        ("pvc-removed", "prod/db", "prod/db: PersistentVolumeClaim data/pgdata renamed to pgdata-v2: its volume and the data on "
                                   "it go with it")]
    deploy = {"replicas": 2, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}}}
    old, new = obj("Deployment", "web", "data", "apps/v1", spec=deploy), obj("Deployment", "web-2", "data", "apps/v1", spec=deploy)
    old["metadata"]["labels"] = new["metadata"]["labels"] = labels
    assert dangers({M: [old]}, {M: [new]}) == []


def test_a_volume_template_removed_from_a_statefulset():
    assert dangers({M: [sts("db", ("data", "10Gi"), ("wal", "1Gi"))]}, {M: [sts("db", ("data", "10Gi"))]}) == [
        ("volume-template-removed", "prod/db", "prod/db: StatefulSet data/db: volumeClaimTemplate wal removed: its replicas lose "
                                              "that volume")]
    assert dangers({M: [sts("db", ("data", "10Gi"))]}, {M: [sts("db", ("data", "10Gi"), ("wal", "1Gi"))]}) == []


SHRINK = "Kubernetes cannot shrink a volume"


@pytest.mark.parametrize("field,old,new,shrinks", [
    ("storage", "10Gi", "5Gi", True),
    ("storage", "10Gi", "10240Mi", False),  # the same bytes written another way
    ("storage", "10Gi", "20Gi", False),
    ("storage", "1e10", "5Gi", True),  # 10^10 bytes, an exponent
    ("storage", "10G", "10Gi", False),  # 10^10 < 10 * 2^30: grows
    ("storage", "10Gi", "10G", True),
    ("storage", "2Ti", "2047Gi", True),
    ("storage", "1.5Gi", "1536Mi", False),
    ("storage", "10Gi", "later", False),  # not a quantity: nothing can be told
    ("storage", 10737418240, "5Gi", True),  # a bare number of bytes
    ("persistence", "8Gi", "4Gi", True),
    ("volume", "8Gi", "4Gi", True),
    ("cache", "8Gi", "4Gi", False),  # a size that is not a volume's
])
def test_a_volume_size_in_values(field, old, new, shrinks):
    found = dangers({V: [{field: {"size": old}}]}, {V: [{field: {"size": new}}]})
    assert found == ([("volume-shrunk", "prod/db", f"prod/db: Helm values prod/db {field}.size shrinks {old} → {new}: {SHRINK}")]
                     if shrinks else [])


def test_a_volume_template_shrunk_in_the_manifest_and_the_values_is_named_once_at_the_object():
    old = {M: [sts("db", ("data", "10Gi"))], V: [{"storage": {"size": "10Gi"}}],
           "rendered/prod/values/wal.yaml": [{"persistence": {"size": "4Gi"}}]}
    new = {M: [sts("db", ("data", "5Gi"))], V: [{"storage": {"size": "5Gi"}}],
           "rendered/prod/values/wal.yaml": [{"persistence": {"size": "2Gi"}}]}
    assert dangers(old, new) == [
        ("volume-shrunk", "prod/db", "prod/db: StatefulSet data/db spec.volumeClaimTemplates[data].spec.resources.requests.storage "
                                     f"shrinks 10Gi → 5Gi: {SHRINK}"),
        ("volume-shrunk", "prod/wal", f"prod/wal: Helm values prod/wal persistence.size shrinks 4Gi → 2Gi: {SHRINK}")]


def project(**spec: Any) -> dict[str, Any]:
    return obj("AppProject", "p", "argocd", "argoproj.io/v1alpha1", spec=spec)


P = "argocd/projects/p.yaml"
IN = "https://kubernetes.default.svc"


@pytest.mark.parametrize("old,new,what", [
    ({"destinations": [{"server": IN, "namespace": "data"}, {"server": IN, "namespace": "api"}]},
     {"destinations": [{"server": IN, "namespace": "data"}]}, [f"destinations loses {{server: {IN}, namespace: api}}"]),
    ({"destinations": [{"server": IN, "namespace": "data"}]}, {"destinations": [{"server": IN, "namespace": "*"}]}, []),
    ({"destinations": [{"server": IN, "namespace": "data"}]}, {"destinations": [{"server": "*", "namespace": "d*"}]}, []),
    ({"destinations": [{"server": IN, "namespace": "data"}]}, {"destinations": [{"namespace": "data"}]}, []),  # no server: any
    ({"destinations": [{"name": "in-cluster", "namespace": "data"}]}, {"destinations": [{"namespace": "data"}]},
     ["destinations loses {name: in-cluster, namespace: data}"]),  # a missing name matches no named cluster
    ({"sourceRepos": ["https://github.com/a/b.git", "https://github.com/a/c.git"]}, {"sourceRepos": ["https://github.com/a/b.git"]},
     ["sourceRepos loses https://github.com/a/c.git"]),
    ({"sourceRepos": ["https://github.com/a/b.git"]}, {"sourceRepos": ["https://github.com/a/*"]}, []),
    ({"sourceNamespaces": ["argocd"]}, {}, ["sourceNamespaces loses argocd"]),
    ({"clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}]}, {"clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}, []),
    ({"namespaceResourceWhitelist": [{"group": "apps", "kind": "Deployment"}, {"group": "", "kind": "Service"}]},
     {"namespaceResourceWhitelist": [{"group": "apps", "kind": "*"}]}, ["namespaceResourceWhitelist loses {group: , kind: Service}"]),
    ({}, {"clusterResourceBlacklist": [{"group": "", "kind": "Namespace"}, {"group": "rbac.authorization.k8s.io", "kind": "*"}]},
     ["clusterResourceBlacklist gains {group: , kind: Namespace}, {group: rbac.authorization.k8s.io, kind: *}"]),
    ({"namespaceResourceBlacklist": [{"group": "", "kind": "Secret"}]}, {"namespaceResourceBlacklist": [{"group": "", "kind": "Secret"}]}, []),
    ({"namespaceResourceBlacklist": [{"group": "", "kind": "Secret"}]}, {}, []),  # a blacklist entry lifted widens it
    ({"destinations": [{"server": IN, "namespace": "api"}]}, {"destinations": [{"server": IN, "namespace": "api"}, {"server": IN, "namespace": "x"}]}, []),
])
def test_a_project_narrowed(old, new, what):
    assert dangers({P: [project(**old)]}, {P: [project(**new)]}) == [
        ("project-narrowed", "argocd", f"argocd: AppProject argocd/p narrowed: {w}") for w in what]


def test_only_argo_cds_projects_narrow():
    old = obj("AppProject", "p", "argocd", "example.com/v1", spec={"sourceRepos": ["a", "b"]})
    new = obj("AppProject", "p", "argocd", "example.com/v1", spec={"sourceRepos": ["a"]})
    assert dangers({P: [old]}, {P: [new]}) == []


R = "rendered/prod/values/rabbitmq.yaml"
RM = "rendered/prod/manifests/rabbitmq.yaml"
LOST = "removed from the RabbitMQ definitions: the messages in it are lost"


def definitions(*queues: str) -> dict[str, Any]:
    return {"queues": [{"name": q, "vhost": "/"} for q in queues], "exchanges": []}


def configmap(*queues: str, key: str = "definitions.json") -> dict[str, Any]:
    import json
    return obj("ConfigMap", "rabbitmq-definitions", "messaging", data={key: json.dumps(definitions(*queues))})


@pytest.mark.parametrize("old,new,queues", [
    ({R: [{"definitions": definitions("q.a", "q.b", "q.c")}]}, {R: [{"definitions": definitions("q.b")}]}, ["q.a", "q.c"]),
    ({R: [{"definitions": definitions("q.a")}]}, {R: [{"definitions": definitions("q.a", "q.new")}]}, []),
    ({R: [{"definitions": definitions("q.a")}]}, {R: [{"replicas": 1}]}, ["q.a"]),  # the definitions gone altogether
    ({RM: [configmap("q.a", "q.b")]}, {RM: [configmap("q.b")]}, ["q.a"]),  # only in the hydrated ConfigMap
    ({RM: [configmap("q.a", key="definitions.txt")]}, {RM: [configmap(key="definitions.txt")]}, []),  # not a definitions file
    ({RM: [configmap("q.a")], R: [{"definitions": definitions("q.a")}]}, {RM: [configmap()], R: [{"definitions": definitions()}]},
     ["q.a"]),  # said once, though both places declare it
    ({R: [{"definitions": {"queues": [{"vhost": "/"}, "q.x"]}}]}, {R: [{"definitions": {"queues": []}}]}, []),  # no names
])
def test_a_queue_removed(old, new, queues):
    assert dangers(old, new) == [("queue-removed", "prod/rabbitmq", f"prod/rabbitmq: queue {q} {LOST}") for q in queues]


def test_a_removed_broker_loses_its_queues_too():
    assert dangers({R: [{"definitions": definitions("q.a")}]}, {}) == [("queue-removed", "prod/rabbitmq", f"prod/rabbitmq: queue q.a {LOST}")]


def test_dangers_of_the_environments_come_before_the_bootstrap():
    old = {"argocd/projects/p.yaml": [project()], "rendered/prod/apps/zz.yaml": [app("zz")], "rendered/dev/apps/aa.yaml": [app("aa")]}
    assert [(rule, group) for rule, group, _ in dangers(old, {})] == [
        ("application-removed", "dev/aa"), ("application-removed", "prod/zz"), ("project-narrowed", "argocd")]


@pytest.mark.parametrize("text,amount", [
    ("1", 1), ("0", 0), ("10Gi", 10 * 2**30), ("1Ki", 1024), ("1Mi", 2**20), ("1Ti", 2**40), ("1Pi", 2**50), ("1Ei", 2**60),
    ("1k", 1000), ("1M", 10**6), ("1G", 10**9), ("1T", 10**12), ("1P", 10**15), ("1E", 10**18),
    ("250m", Decimal("0.25")), ("5u", Decimal("0.000005")), ("7n", Decimal("7e-9")),
    ("1.5Gi", 3 * 2**29), (".5Ki", 512), ("2.", 2), ("+3", 3), ("1e3", 1000), ("1E3", 1000), ("5e-1", Decimal("0.5")),
    ("12e+2", 1200),
])
def test_kubernetes_quantities(text, amount):
    """As k8s.io/apimachinery's resource.Quantity reads them (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/)."""
    assert kubernetes_quantity(text) == amount


@pytest.mark.parametrize("text", ["", "Gi", "1 Gi", "1GB", "1K", "1gi", "1e", "1.5.5", "0x10", "ten", "1Gi ", "1e3Gi"])
def test_not_kubernetes_quantities(text):
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        kubernetes_quantity(text)


# ---------------------------------------------------------------- restarts (not dangers: warnings in the summary)


def workload(kind: str, replicas: int | None, checksum: str, **spec: Any) -> dict[str, Any]:
    body = {"template": {"metadata": {"annotations": {"checksum/config": checksum}}, "spec": {"containers": [{"name": "c"}]}},
            **spec}
    if replicas is not None:
        body["replicas"] = replicas
    return obj(kind, "w", "data", "apps/v1", spec=body)


def restarts(old: dict, new: dict) -> list[str]:
    return [r.message for r in review.compare(snap("base", old), snap("head", new)).restarts]


@pytest.mark.parametrize("kind,replicas,how", [
    ("StatefulSet", 1, "its only pod: unavailable until the new one is ready"),
    ("Deployment", 3, "its 3 pods"),
    ("Deployment", None, "its only pod: unavailable until the new one is ready"),  # Kubernetes' default of 1
    ("DaemonSet", None, "its pod on every node"),
])
def test_a_checksum_in_the_pod_template_restarts_the_pods(kind, replicas, how):
    assert restarts({M: [workload(kind, replicas, "a")]}, {M: [workload(kind, replicas, "b")]}) == [
        f"prod/db: {kind} data/w restarts {how}"]


def test_the_replicas_of_an_autoscaled_workload_are_its_hpas_minimum():
    hpa = obj("HorizontalPodAutoscaler", "w", "data", "autoscaling/v2",
              spec={"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"}, "minReplicas": 2})
    assert restarts({M: [workload("Deployment", None, "a"), hpa]}, {M: [workload("Deployment", None, "b"), hpa]}) == [
        "prod/db: Deployment data/w restarts its 2 pods"]


def test_what_does_not_touch_the_pod_template_restarts_nothing():
    assert restarts({M: [workload("Deployment", 2, "a")]}, {M: [workload("Deployment", 3, "a")]}) == []  # a scale
    assert restarts({}, {M: [workload("Deployment", 2, "a")]}) == []  # new: nothing to restart
    assert restarts({M: [obj("ConfigMap", "w", "data", data={"a": "1"})]}, {M: [obj("ConfigMap", "w", "data", data={"a": "2"})]}) == []


def test_restarts_come_first_and_an_only_pod_is_a_warning():
    report = review.compare(snap("base", {M: [workload("StatefulSet", 1, "a")]}), snap("head", {M: [workload("StatefulSet", 1, "b")]}))
    text = review.render_text(report).splitlines()
    assert text[text.index("RESTARTS at sync (pod template changed):") + 1] == (
        "  ! prod/db: StatefulSet data/w restarts its only pod: unavailable until the new one is ready")
    assert text[-1].startswith("base → head: 0 changed, 0 added, 0 removed, 0 renamed, 1 restart; 1 noise change hidden")
    markdown = review.render_markdown(report)
    assert "> [!WARNING]\n> **Restarts at sync** (pod template changed):\n>\n> - prod/db: StatefulSet data/w restarts its only" in markdown


# ---------------------------------------------------------------- replacements and immutable fields


def rollout(name: str = "w") -> dict[str, Any]:
    return obj("Rollout", name, "data", "argoproj.io/v1alpha1", spec={"replicas": 2, "template": {"spec": {"containers": [{"name": "c"}]}}})


def deployment(name: str = "w", **spec: Any) -> dict[str, Any]:
    return obj("Deployment", name, "data", "apps/v1", spec={"replicas": 2, "selector": {"matchLabels": {"app": name}},
                                                          "template": {"spec": {"containers": [{"name": "c"}]}}, **spec})


def test_a_rolling_service_made_canary_replaces_its_deployment():
    assert dangers({M: [deployment()]}, {M: [rollout()]}) == [
        ("workload-replaced", "prod/db", "prod/db: Deployment data/w is replaced by a Rollout: at sync Argo CD deletes the "
                                         "Deployment and its pods while the Rollout's start from none; safe path: first add "
                                         "the Rollout with workloadRef to the Deployment (Argo Rollouts' migration), let it "
                                         "scale up, then remove the Deployment")]


def test_other_replacements_and_what_is_no_replacement():
    assert dangers({M: [rollout()]}, {M: [deployment()]}) == [
        ("workload-replaced", "prod/db", "prod/db: Rollout data/w is replaced by a Deployment: at sync Argo CD deletes the "
                                         "Rollout and its pods while the Deployment's start from none; safe path: first add "
                                         "the Deployment under another name, let it become ready, then remove the Rollout")]
    assert dangers({M: [deployment("a")]}, {M: [rollout("b")]}) == []  # another name: a new service, not a replacement
    assert dangers({M: [obj("ConfigMap", "w", "data")]}, {M: [rollout()]}) == []


@pytest.mark.parametrize("old,new,field", [
    (deployment(), deployment(selector={"matchLabels": {"app": "w2"}}), "spec.selector"),
    (sts("db", ("data", "1Gi")), {**sts("db", ("data", "1Gi")), "spec": {**sts("db", ("data", "1Gi"))["spec"], "serviceName": "db2"}},
     "spec.serviceName"),
])
def test_an_immutable_field_changed(old, new, field):
    found = dangers({M: [old]}, {M: [new]})
    assert [(rule, message.split(": ", 2)[2]) for rule, _, message in found] == [
        ("immutable-field", f"{field} changes, which Kubernetes refuses: the sync fails until the object is deleted and "
                            "created again, its pods with it")]


def test_a_mutable_change_is_no_danger():
    assert dangers({M: [deployment()]}, {M: [deployment(replicas=5)]}) == []


def test_the_plan_counts_cluster_objects_per_environment_first():
    old = {M: [workload("Deployment", 2, "a"), obj("ConfigMap", "gone", "data")], V: [{"replicas": 2}],
           P: [project()], "rendered/dev/manifests/db.yaml": [obj("ConfigMap", "c", "data", data={"a": "1"})]}
    new = {M: [workload("Deployment", 2, "b"), obj("Service", "new", "data")], V: [{"replicas": 3}],
           "rendered/dev/manifests/db.yaml": [obj("ConfigMap", "c", "data", data={"a": "2"})]}
    text = review.render_text(review.compare(snap("base", old), snap("head", new))).splitlines()
    assert text[:4] == ["plan: dev: 0 to add, 1 to change, 0 to destroy, 0 restarts",
                        "plan: prod: 1 to add, 1 to change, 1 to destroy, 1 restart",  # Helm values are no cluster object
                        "plan: bootstrap (argocd/): 0 to add, 0 to change, 1 to destroy, 0 restarts", ""]
    assert "prod/db  (1 to add, 1 to change, 1 to destroy, 1 restart)" in text


def test_only_a_horizontal_pod_autoscaler_of_that_workload_sets_its_count():
    other = obj("HorizontalPodAutoscaler", "x", "data", "autoscaling/v2",
                spec={"scaleTargetRef": {"kind": "Deployment", "name": "other"}, "minReplicas": 4})
    keda = obj("ScaledObject", "w", "data", "keda.sh/v1alpha1", spec={"scaleTargetRef": {"kind": "Deployment", "name": "w"},
                                                                      "minReplicas": 5})
    default = obj("HorizontalPodAutoscaler", "w", "data", "autoscaling/v2",
                  spec={"scaleTargetRef": {"kind": "Deployment", "name": "w"}})  # minReplicas defaults to 1
    for extra, how in (([other, keda], "its only pod: unavailable until the new one is ready"),
                       ([default], "its only pod: unavailable until the new one is ready")):
        assert restarts({M: [workload("Deployment", None, "a"), *extra]}, {M: [workload("Deployment", None, "b"), *extra]}) == [
            f"prod/db: Deployment data/w restarts {how}"]


def test_a_new_workload_beside_a_replaced_one():
    assert [rule for rule, _, _ in dangers({M: [deployment()]}, {M: [deployment("a-new"), rollout()]})] == ["workload-replaced"]
