"""Policy over rendered objects: pinned images, resources, probes, Pod Security restricted, no credentials, no tokens."""

from __future__ import annotations

import re
from typing import Any, Iterator

from .credentials import TOKENS, URL_PASSWORD
from .objects import Obj, containers

Finding = tuple  # (obj, check, path, message, model_suffix)

_CREDENTIAL_VALUES = [(URL_PASSWORD, "a connection string with a password"), *TOKENS]
# Environment variable names whose literal value would be a credential.
_CREDENTIAL_ENV = re.compile(
    r"(^|[_.-])(password|passwd|pwd|secret|token|api[_-]?key|secret[_-]?key|private[_-]?key|access[_-]?key|"
    r"client[_-]?secret|credentials?)$", re.IGNORECASE)
# YAML keys whose literal value would be a credential. Narrower than env names: in Kubernetes and
# Helm values `secret:`/`credentialsSecret:` name a Secret, they do not hold one.
_CREDENTIAL_KEY = re.compile(
    r"^(password|passwd|pwd|token|api[_-]?key|apiKey|secret[_-]?key|secretKey|private[_-]?key|privateKey|"
    r"access[_-]?key|accessKey|client[_-]?secret|clientSecret|auth[_-]?token|authToken|bearer[_-]?token)$", re.IGNORECASE)
_PLACEHOLDERS = {"", "changeme", "<redacted>"}
_RUNNING_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Rollout", "Pod"}
_IMAGE = re.compile(r"^(?P<repo>[^@]+?)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")


def _pod_path(obj: Obj) -> str:
    return {"Pod": "spec", "CronJob": "spec.jobTemplate.spec.template.spec"}.get(obj.kind, "spec.template.spec")


def images(obj: Obj, podspec: dict[str, Any]) -> Iterator[Finding]:
    for field, i, c in containers(podspec):
        image = str(c.get("image", ""))
        m = _IMAGE.match(image)
        where = f"{_pod_path(obj)}.{field}[{i}].image"
        if not m or (not m["tag"] and not m["digest"]):
            yield obj, "policy.image", where, f"image {image!r} has no tag or digest (it would pull 'latest')", ("image",)
        elif m["tag"] == "latest" and not m["digest"]:
            yield obj, "policy.image", where, f"image {image!r} uses the moving tag 'latest'", ("image",)


def resources(obj: Obj, podspec: dict[str, Any]) -> Iterator[Finding]:
    for field, i, c in containers(podspec):
        res = c.get("resources") or {}
        missing = [f"{kind}.{r}" for kind in ("requests", "limits") for r in ("cpu", "memory") if r not in (res.get(kind) or {})]
        if missing:
            yield (obj, "policy.resources", f"{_pod_path(obj)}.{field}[{i}].resources",
                   f"container {c.get('name')!r} has no {', '.join(missing)}", ("resources",))


def probes(obj: Obj, podspec: dict[str, Any]) -> Iterator[Finding]:
    if obj.kind not in _RUNNING_KINDS:
        return  # Jobs finish; probes are for long-running containers
    for field, i, c in containers(podspec, init=False):
        missing = [p for p in ("livenessProbe", "readinessProbe") if p not in c]
        if missing:
            yield (obj, "policy.probes", f"{_pod_path(obj)}.{field}[{i}]",
                   f"container {c.get('name')!r} has no {' or '.join(missing)}", ("probes",))


def security_context(obj: Obj, podspec: dict[str, Any]) -> Iterator[Finding]:
    """Pod Security Standards, level restricted (https://kubernetes.io/docs/concepts/security/pod-security-standards/)."""
    base = _pod_path(obj)
    pod_sc = podspec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if podspec.get(field):
            yield obj, "policy.security-context", f"{base}.{field}", f"{field} is not allowed", ()
    for v, vol in enumerate(podspec.get("volumes") or []):
        if "hostPath" in vol:
            yield obj, "policy.security-context", f"{base}.volumes[{v}].hostPath", "hostPath volumes are not allowed", ()
    if pod_sc.get("runAsUser") == 0:
        yield obj, "policy.security-context", f"{base}.securityContext.runAsUser", "runs as root (uid 0)", ()
    for field, i, c in containers(podspec):
        sc = c.get("securityContext") or {}
        where = f"{base}.{field}[{i}].securityContext"
        name = c.get("name")
        if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True):
            yield obj, "policy.security-context", where + ".runAsNonRoot", f"container {name!r} does not set runAsNonRoot: true", ()
        if sc.get("runAsUser") == 0:
            yield obj, "policy.security-context", where + ".runAsUser", f"container {name!r} runs as root (uid 0)", ()
        if sc.get("allowPrivilegeEscalation") is not False:
            yield obj, "policy.security-context", where + ".allowPrivilegeEscalation", f"container {name!r} does not set allowPrivilegeEscalation: false", ()
        if sc.get("privileged"):
            yield obj, "policy.security-context", where + ".privileged", f"container {name!r} is privileged", ()
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            yield obj, "policy.security-context", where + ".capabilities.drop", f"container {name!r} does not drop ALL capabilities", ()
        extra = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        if extra:
            yield obj, "policy.security-context", where + ".capabilities.add", f"container {name!r} adds {', '.join(sorted(extra))}", ()
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            yield obj, "policy.security-context", where + ".seccompProfile", f"container {name!r} has no RuntimeDefault seccomp profile", ()


def service_account_token(obj: Obj, podspec: dict[str, Any]) -> Iterator[Finding]:
    if podspec.get("automountServiceAccountToken") is not False:
        yield (obj, "policy.service-account-token", f"{_pod_path(obj)}.automountServiceAccountToken",
               "mounts a service account token; set automountServiceAccountToken: false (or waive it where the pod calls the API)", ())


POD_POLICIES = (images, resources, probes, security_context, service_account_token)


def pods(objs: list[Obj]) -> Iterator[Finding]:
    for obj in objs:
        pod = obj.pod()
        if pod is not None:
            for policy in POD_POLICIES:
                yield from policy(obj, pod[1])
        if obj.kind == "ServiceAccount" and obj.doc.get("automountServiceAccountToken") is not False:
            yield (obj, "policy.service-account-token", "automountServiceAccountToken",
                   "ServiceAccount mounts its token into every pod; set automountServiceAccountToken: false", ())


# ---------------------------------------------------------------- credentials in any generated text


def _leaves(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, path + (i,))
    else:
        yield path, node


def credential_problems(doc: Any) -> Iterator[tuple[tuple, str]]:
    """(path, what) of every plaintext credential in a parsed document (manifest, values file, Application)."""
    if isinstance(doc, dict) and doc.get("kind") == "Secret":
        for field in ("data", "stringData"):
            if doc.get(field):
                yield (field,), "a Secret with data is a plaintext credential in git; reference an existing Secret instead"
    for path, value in _leaves(doc):
        if not isinstance(value, str) or value.strip().lower() in _PLACEHOLDERS:
            continue
        for pattern, what in _CREDENTIAL_VALUES:
            if pattern.search(value):
                yield path, f"looks like {what}"
                break
        else:
            key = path[-1] if path else ""
            if isinstance(key, str) and key == "value" and len(path) >= 2 and isinstance(path[-2], int):
                # an env entry {name: X, value: ...}: judge by the variable's name
                continue
            if isinstance(key, str) and _CREDENTIAL_KEY.search(key):
                yield path, f"{key!r} holds a literal value; credentials belong in an existing Secret"
    yield from _env_credentials(doc)


def _env_credentials(doc: Any, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """env entries like {name: DB_PASSWORD, value: hunter2}."""
    if isinstance(doc, dict):
        name, value = doc.get("name"), doc.get("value")
        if isinstance(name, str) and isinstance(value, str) and value.strip().lower() not in _PLACEHOLDERS \
                and _CREDENTIAL_ENV.search(name) and set(doc) <= {"name", "value"}:
            yield path + ("value",), f"environment variable {name} has a literal value; use a secretKeyRef"
        for k, v in doc.items():
            yield from _env_credentials(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _env_credentials(v, path + (i,))
