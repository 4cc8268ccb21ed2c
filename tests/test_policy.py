"""The pod policies (policy.py) on small objects: a compliant pod passes, and each branch of each rule fails alone.

The rules follow the Pod Security Standards (https://kubernetes.io/docs/concepts/security/pod-security-standards/)
and the README's policy list; every expected finding below is written from those, field path and message whole.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from generator.validate import policy
from generator.validate.objects import Obj

DIGEST = "sha256:" + "a" * 64


def container(name: str = "app", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "ghcr.io/eco2-team/app:v1.2.3",
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
            "livenessProbe": {"tcpSocket": {"port": 8080}}, "readinessProbe": {"tcpSocket": {"port": 8080}},
            "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
            **extra}


def deployment(*containers: dict[str, Any], kind: str = "Deployment", **pod: Any) -> Obj:
    spec = {"automountServiceAccountToken": False, "containers": list(containers or [container()]), **pod}
    if kind == "Pod":
        doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": "api"}, "spec": spec}
    elif kind == "CronJob":
        doc = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "x", "namespace": "api"},
               "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}
    else:
        doc = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "x", "namespace": "api"},
               "spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": spec}}}
    return Obj("rendered/prod/manifests/x.yaml", 0, doc, "x", "api")


def found(objs: list[Obj], levels: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    return [(check, path, message) for _, check, path, message, _ in policy.pods(objs, levels)]


def test_a_compliant_pod_passes_every_rule():
    assert found([deployment()]) == []
    assert found([deployment(kind="Pod"), deployment(kind="CronJob"), deployment(kind="StatefulSet")]) == []


def with_sc(**sc: Any) -> dict[str, Any]:
    c = container()
    c["securityContext"] = {**c["securityContext"], **sc}
    return c


def without_sc(*keys: str) -> dict[str, Any]:
    c = container()
    c["securityContext"] = {k: v for k, v in c["securityContext"].items() if k not in keys}
    return c


C = "spec.template.spec.containers[0]"
SC = f"{C}.securityContext"
SHOWN = "not allowed in a namespace of Pod Security level"

# case -> (objects, levels, findings)
CASES: dict[str, tuple[Callable[[], list[Obj]], dict[str, str] | None, list[tuple[str, str, str]]]] = {
    "no-tag": (lambda: [deployment(container(image="ghcr.io/eco2-team/app"))], None,
               [("policy.image", f"{C}.image", "image 'ghcr.io/eco2-team/app' has no tag or digest (it would pull 'latest')")]),
    "no-image": (lambda: [deployment({k: v for k, v in container().items() if k != "image"})], None,
                 [("policy.image", f"{C}.image", "image '' has no tag or digest (it would pull 'latest')")]),
    "latest": (lambda: [deployment(container(image="ghcr.io/eco2-team/app:latest"))], None,
               [("policy.image", f"{C}.image", "image 'ghcr.io/eco2-team/app:latest' uses the moving tag 'latest'")]),
    "latest-pinned-by-digest": (lambda: [deployment(container(image=f"ghcr.io/eco2-team/app:latest@{DIGEST}"))], None, []),
    "digest-only": (lambda: [deployment(container(image=f"ghcr.io/eco2-team/app@{DIGEST}"))], None, []),
    "registry-port-no-tag": (lambda: [deployment(container(image="registry.example.org:5000/app"))], None,
                             # the port is not a tag: 5000/app is no tag syntax, so the repository is all of it
                             [("policy.image", f"{C}.image", "image 'registry.example.org:5000/app' has no tag or digest "
                                                             "(it would pull 'latest')")]),
    "bad-digest": (lambda: [deployment(container(image="ghcr.io/eco2-team/app@sha256:zz"))], None,
                   [("policy.image", f"{C}.image", "image 'ghcr.io/eco2-team/app@sha256:zz' has no tag or digest (it would "
                                                   "pull 'latest')")]),
    "no-limits": (lambda: [deployment(container(resources={"requests": {"cpu": "1m", "memory": "1Mi"}}))], None,
                  [("policy.resources", f"{C}.resources", "container 'app' has no limits.cpu, limits.memory")]),
    "no-resources": (lambda: [deployment(container(resources=None))], None,
                     [("policy.resources", f"{C}.resources", "container 'app' has no requests.cpu, requests.memory, "
                                                             "limits.cpu, limits.memory")]),
    "no-memory-request": (lambda: [deployment(container(resources={"requests": {"cpu": "1m"}, "limits": {"cpu": "1", "memory": "1Mi"}}))],
                          None, [("policy.resources", f"{C}.resources", "container 'app' has no requests.memory")]),
    "init-container-resources": (lambda: [deployment(container(), initContainers=[{**container("init"), "resources": {}}])], None,
                                 [("policy.resources", "spec.template.spec.initContainers[0].resources",
                                   "container 'init' has no requests.cpu, requests.memory, limits.cpu, limits.memory")]),
    "no-liveness": (lambda: [deployment({k: v for k, v in container().items() if k != "livenessProbe"})], None,
                    [("policy.probes", C, "container 'app' has no livenessProbe")]),
    "no-probes": (lambda: [deployment({k: v for k, v in container().items() if not k.endswith("Probe")})], None,
                  [("policy.probes", C, "container 'app' has no livenessProbe or readinessProbe")]),
    "cronjob-path": (lambda: [deployment(container(resources={}), kind="CronJob")], None,
                     [("policy.resources", "spec.jobTemplate.spec.template.spec.containers[0].resources",
                       "container 'app' has no requests.cpu, requests.memory, limits.cpu, limits.memory")]),
    "init-containers-need-no-probes": (lambda: [deployment(container(), initContainers=[
        {k: v for k, v in container("init").items() if not k.endswith("Probe")}])], None, []),
    "job-needs-no-probes": (lambda: [deployment({k: v for k, v in container().items() if not k.endswith("Probe")}, kind="CronJob")],
                            None, []),
    "pod-needs-probes": (lambda: [deployment({k: v for k, v in container().items() if k != "readinessProbe"}, kind="Pod")], None,
                         [("policy.probes", "spec.containers[0]", "container 'app' has no readinessProbe")]),
    "host-network": (lambda: [deployment(hostNetwork=True, hostPID=True, hostIPC=False)], None,
                     [("policy.security-context", "spec.template.spec.hostNetwork", f"hostNetwork is {SHOWN} restricted"),
                      ("policy.security-context", "spec.template.spec.hostPID", f"hostPID is {SHOWN} restricted")]),
    "host-ipc-baseline": (lambda: [deployment(hostIPC=True)], {"api": "baseline"},
                          [("policy.security-context", "spec.template.spec.hostIPC", f"hostIPC is {SHOWN} baseline")]),
    "host-path": (lambda: [deployment(volumes=[{"name": "a", "emptyDir": {}}, {"name": "b", "hostPath": {"path": "/"}}])], None,
                  [("policy.security-context", "spec.template.spec.volumes[1].hostPath", f"hostPath volumes are {SHOWN} restricted")]),
    "privileged": (lambda: [deployment(with_sc(privileged=True))], None,
                   [("policy.security-context", f"{SC}.privileged", "container 'app' is privileged")]),
    "host-port": (lambda: [deployment(container(ports=[{"containerPort": 80}, {"containerPort": 81, "hostPort": 81}]))], None,
                  [("policy.security-context", f"{C}.ports[1].hostPort", f"hostPort is {SHOWN} restricted")]),
    "baseline-extra-capability": (lambda: [deployment({**container(), "securityContext": {"capabilities": {"add": ["NET_ADMIN", "CHOWN", "BPF"]}}})],
                                  {"api": "baseline"},  # the hardening rules of restricted do not apply
                                  [("policy.security-context", f"{SC}.capabilities.add", "container 'app' adds BPF, NET_ADMIN")]),
    "baseline-allowed-capability": (lambda: [deployment({**container(), "securityContext": {"capabilities": {"add": ["CHOWN"]}}})],
                                    {"api": "baseline"}, []),
    "privileged-level-allows-anything": (lambda: [deployment({**container(), "securityContext": {"privileged": True}}, hostPID=True)],
                                         {"api": "privileged"}, []),
    "other-namespace-is-restricted": (lambda: [deployment(with_sc(capabilities={"drop": ["ALL"], "add": ["CHOWN"]}))],
                                      {"data": "baseline"},
                                      [("policy.security-context", f"{SC}.capabilities.add", "container 'app' adds CHOWN")]),
    "pod-runs-as-root": (lambda: [deployment(securityContext={"runAsUser": 0})], None,
                         [("policy.security-context", "spec.template.spec.securityContext.runAsUser", "runs as root (uid 0)")]),
    "container-runs-as-root": (lambda: [deployment(with_sc(runAsUser=0))], None,
                               [("policy.security-context", f"{SC}.runAsUser", "container 'app' runs as root (uid 0)")]),
    "no-run-as-non-root": (lambda: [deployment(without_sc("runAsNonRoot"))], None,
                           [("policy.security-context", f"{SC}.runAsNonRoot", "container 'app' does not set runAsNonRoot: true")]),
    "run-as-non-root-false": (lambda: [deployment(with_sc(runAsNonRoot=False), securityContext={"runAsNonRoot": True})], None,
                              [("policy.security-context", f"{SC}.runAsNonRoot", "container 'app' does not set runAsNonRoot: true")]),
    "run-as-non-root-from-the-pod": (lambda: [deployment(without_sc("runAsNonRoot"), securityContext={"runAsNonRoot": True})], None, []),
    "escalation": (lambda: [deployment(without_sc("allowPrivilegeEscalation"))], None,
                   [("policy.security-context", f"{SC}.allowPrivilegeEscalation",
                     "container 'app' does not set allowPrivilegeEscalation: false")]),
    "no-drop-all": (lambda: [deployment(with_sc(capabilities={"drop": ["NET_RAW"]}))], None,
                    [("policy.security-context", f"{SC}.capabilities.drop", "container 'app' does not drop ALL capabilities")]),
    "restricted-adds": (lambda: [deployment(with_sc(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN", "NET_BIND_SERVICE", "CHOWN"]}))],
                        None, [("policy.security-context", f"{SC}.capabilities.add", "container 'app' adds CHOWN, SYS_ADMIN")]),
    "restricted-net-bind": (lambda: [deployment(with_sc(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}))], None, []),
    "no-seccomp": (lambda: [deployment(without_sc("seccompProfile"))], None,
                   [("policy.security-context", f"{SC}.seccompProfile", "container 'app' has no RuntimeDefault seccomp profile")]),
    "unconfined-seccomp": (lambda: [deployment(with_sc(seccompProfile={"type": "Unconfined"}))], None,
                           [("policy.security-context", f"{SC}.seccompProfile", "container 'app' has no RuntimeDefault seccomp profile")]),
    "seccomp-from-the-pod": (lambda: [deployment(without_sc("seccompProfile"), securityContext={"seccompProfile": {"type": "Localhost"}})],
                             None, []),
    "init-container-hardening": (lambda: [deployment(container(), initContainers=[{**container("init"), "securityContext": {
        "runAsNonRoot": True, "allowPrivilegeEscalation": False, "seccompProfile": {"type": "RuntimeDefault"}}}])], None,
        [("policy.security-context", "spec.template.spec.initContainers[0].securityContext.capabilities.drop",
          "container 'init' does not drop ALL capabilities")]),
    "token-mounted": (lambda: [deployment(automountServiceAccountToken=True)], None,
                      [("policy.service-account-token", "spec.template.spec.automountServiceAccountToken",
                        "mounts a service account token; set automountServiceAccountToken: false (or waive it where the pod "
                        "calls the API)")]),
    "token-by-default": (lambda: [deployment(automountServiceAccountToken=None)], None,
                         [("policy.service-account-token", "spec.template.spec.automountServiceAccountToken",
                           "mounts a service account token; set automountServiceAccountToken: false (or waive it where the "
                           "pod calls the API)")]),
    "token-bound-by-a-role-binding": (lambda: [deployment(automountServiceAccountToken=None, serviceAccountName="op"), binding("op")],
                                      None, []),
    "default-account-bound": (lambda: [deployment(automountServiceAccountToken=None), binding("default")], None, []),
    "bound-elsewhere-is-not-bound-here": (lambda: [deployment(automountServiceAccountToken=None, serviceAccountName="op"),
                                                   binding("op", namespace="other")], None,
                                          [("policy.service-account-token", "spec.template.spec.automountServiceAccountToken",
                                            "mounts a service account token; set automountServiceAccountToken: false (or waive it "
                                            "where the pod calls the API)")]),
    "a-group-subject-binds-no-account": (lambda: [deployment(automountServiceAccountToken=None, serviceAccountName="op"),
                                                  binding("op", subject_kind="Group")], None,
                                         [("policy.service-account-token", "spec.template.spec.automountServiceAccountToken",
                                           "mounts a service account token; set automountServiceAccountToken: false (or waive it "
                                           "where the pod calls the API)")]),
    "service-account-mounts": (lambda: [account("app", None)], None,
                               [("policy.service-account-token", "automountServiceAccountToken",
                                 "ServiceAccount mounts its token into every pod; set automountServiceAccountToken: false")]),
    "service-account-off": (lambda: [account("app", False)], None, []),
    "service-account-bound": (lambda: [account("op", True), binding("op", kind="ClusterRoleBinding")], None, []),
    "bound-account-then-an-unbound-one": (lambda: [account("op", True), binding("op"), account("app", None)], None,
                                          [("policy.service-account-token", "automountServiceAccountToken",
                                            "ServiceAccount mounts its token into every pod; set automountServiceAccountToken: false")]),
    "operator-pods-are-the-operators": (lambda: [Obj("m.yaml", 0, {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
                                                                   "metadata": {"name": "p", "namespace": "monitoring"},
                                                                   "spec": {"image": "quay.io/prometheus/prometheus"}},
                                                     "monitoring", "monitoring")], None, []),
}


def binding(account_name: str, namespace: str | None = None, kind: str = "RoleBinding", subject_kind: str = "ServiceAccount") -> Obj:
    subject = {"kind": subject_kind, "name": account_name, **({"namespace": namespace} if namespace else {})}
    doc = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": "b", "namespace": "api"},
           "subjects": [subject], "roleRef": {"kind": "Role", "name": "r", "apiGroup": "rbac.authorization.k8s.io"}}
    return Obj("b.yaml", 0, doc, "x", "api")


def account(name: str, automount: bool | None) -> Obj:
    doc = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": "api"}}
    if automount is not None:
        doc["automountServiceAccountToken"] = automount
    return Obj("sa.yaml", 0, doc, "x", "api")


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_branch(case: str):
    objs, levels, expected = CASES[case]
    assert found(copy.deepcopy(objs()), levels) == expected


def test_the_default_container_annotation_picks_the_one_that_needs_readiness():
    """A sidecar (an exporter) must not gate the pod's readiness: only the main container needs a readinessProbe."""
    exporter = {k: v for k, v in container("exporter").items() if k != "readinessProbe"}
    main = container("postgresql")
    obj = deployment(exporter, main)
    assert found([obj]) == [("policy.probes", C, "container 'exporter' has no readinessProbe")]  # first is main by default
    obj.doc["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/default-container": "postgresql"}
    assert found([obj]) == []
    obj.doc["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/default-container": "nobody"}
    assert found([obj]) == [("policy.probes", C, "container 'exporter' has no readinessProbe")]
    pod = deployment(main, exporter, kind="Pod")  # a bare Pod carries the annotation in its own metadata
    pod.doc["metadata"]["annotations"] = {"kubectl.kubernetes.io/default-container": "exporter"}
    assert found([pod]) == [("policy.probes", "spec.containers[1]", "container 'exporter' has no readinessProbe")]


def test_findings_point_at_the_model_field_they_come_from():
    broken = {k: v for k, v in container(image="a", resources={}).items() if k != "livenessProbe"}
    latest = container("b", image="ghcr.io/eco2-team/app:latest")
    objs = [deployment(broken, latest)]
    suffixes = [(check, suffix) for _, check, _, _, suffix in policy.pods(objs)]
    assert suffixes == [("policy.image", ("image",)), ("policy.image", ("image",)), ("policy.resources", ("resources",)),
                        ("policy.probes", ("probes",))]


# ---------------------------------------------------------------- plaintext credentials, with their messages

SECRET_DATA = "a Secret with data is a plaintext credential in git; reference an existing Secret instead"
IN_A_SECRET = "credentials belong in an existing Secret"


@pytest.mark.parametrize("doc,problems", [
    ({"kind": "Secret", "data": {"password": "czNjcjN0"}}, [(("data",), SECRET_DATA)]),
    ({"kind": "Secret", "stringData": {"a": "b"}, "data": {}}, [(("stringData",), SECRET_DATA)]),
    ({"kind": "Secret", "data": {"tls.key": policy.GENERATED}}, []),  # what helm generates at each render, kept live
    ({"kind": "Secret", "data": {"a": policy.GENERATED, "b": "eA=="}}, [(("data",), SECRET_DATA)]),
    ({"kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque"}, []),
    ({"kind": "ConfigMap", "data": {"url": "postgres://app:hunter2@db:5432/app"}},
     [(("data", "url"), "looks like a connection string with a password")]),
    ({"kind": "ConfigMap", "data": {"app.ini": "[db]\nhost = db\npassword = hunter2\n"}},
     [(("data", "app.ini"), "looks like a config file line with a credential (password)")]),
    ({"kind": "ConfigMap", "data": {"app.ini": "[db]\npassword = changeme\n"}}, []),  # a placeholder line
    ({"kind": "Deployment", "spec": {"env": [{"name": "DB_PASSWORD", "value": "hunter2"}, {"name": "DB_HOST", "value": "db"}]}},
     [(("spec", "env", 0, "value"), "environment variable DB_PASSWORD has a literal value; use a secretKeyRef or an existing Secret")]),
    ({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "API_TOKEN", "value": "x1"}]}]}}}},
     [(("spec", "template", "spec", "containers", 0, "env", 0, "value"),
       "environment variable API_TOKEN has a literal value; use a secretKeyRef or an existing Secret")]),
    ({"replicas": 2, "enabled": True, "name": "x", "password": "hunter2"},  # found after leaves that are skipped
     [(("password",), f"'password' holds a literal value; {IN_A_SECRET}")]),
    ({"kind": "Application", "spec": {"source": {"helm": {"parameters": [{"name": "adminPassword", "value": "hunter2"}]}}}},
     [(("spec", "source", "helm", "parameters", 0, "value"),
       "entry adminPassword has a literal value; use a secretKeyRef or an existing Secret")]),
    ({"grafana": {"adminPassword": "hunter2", "adminUser": "admin"}},
     [(("grafana", "adminPassword"), f"'adminPassword' holds a literal value; {IN_A_SECRET}")]),
    ({"token": ["abc", "def"]}, [(("token", 0), f"'token' holds a literal value; {IN_A_SECRET}"),
                                 (("token", 1), f"'token' holds a literal value; {IN_A_SECRET}")]),
    ({"password": "changeme", "apiKey": "", "token": "<redacted>", "pwd": " CHANGEME "}, []),
    ({"password": 12345, "token": None, "secretKey": True}, []),  # not text: nothing a reviewer could leak
    ({"password": policy.GENERATED}, []),
])
def test_credential_problems_say_what_was_found_where(doc, problems):
    assert list(policy.credential_problems(doc)) == problems


def test_a_document_that_is_not_a_mapping_has_no_kind():
    assert list(policy.credential_problems(["postgres://app:hunter2@db/app"])) == [((0,), "looks like a connection string with a password")]
