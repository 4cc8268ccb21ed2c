"""Validation of rendered output: each check triggered by a real chart or model change, and on-disk injections."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import REPO, copy_repo, edit, run_cli
from generator import pipeline
from generator.errors import ValidationFailed
from generator.validate import policy
from generator.validate.objects import Obj

# (check id, [(file under the repo copy, old, new)], expected text in the finding)
CASES = {
    "service-selector": ("ref.service-selector", [(
        "charts/worker/templates/service.yaml",
        '  selector:\n    {{- include "lib.selectorLabels" . | nindent 4 }}', "  selector:\n    app: nobody")],
        "Service workers/storage-worker: spec.selector: selects no pod in namespace 'workers'"),
    "target-port": ("ref.target-port", [("charts/worker/templates/service.yaml", "targetPort: metrics", "targetPort: metricz")],
                    "spec.ports[0].targetPort: targetPort 'metricz' is not a container port of the selected pods"),
    "ingress-backend": ("ref.ingress-backend", [("charts/api/templates/ingress.yaml", "number: {{ .Values.service.port }}", "number: 8081")],
                        "Ingress api/auth: spec.rules[0].http.paths[0].backend.service.port: Service 'auth' has no port {'number': 8081}"),
    "rollout-service": ("ref.rollout", [("charts/api/templates/workload.yaml", "canaryService: {{ $name }}-canary", "canaryService: {{ $name }}-canery")],
                        "Rollout api/waste: spec.strategy.canary.canaryService: Service 'waste-canery' does not exist"),
    "analysis-template": ("ref.analysis", [("charts/api/templates/workload.yaml", "- templateName: {{ .templateName }}", "- templateName: {{ .templateName }}-v2")],
                          "AnalysisTemplate 'waste-success-rate-v2' does not exist"),
    "analysis-args": ("ref.analysis-args", [(
        "charts/api/templates/workload.yaml", '{{- include "api.analysisArgs" $ | nindent 10 }}',
        '{{- include "api.analysisArgs" $ | nindent 10 }}\n          - name: stray\n            value: "1"')],
        "passes argument 'stray' that no referenced template declares"),
    "scale-target": ("ref.scale-target", [(
        "charts/api/templates/hpa.yaml", '    kind: {{ include "api.workloadKind" . }}\n    name: {{ include "lib.name" . }}',
        '    kind: {{ include "api.workloadKind" . }}\n    name: elsewhere')],
        "HorizontalPodAutoscaler api/waste: spec.scaleTargetRef: Rollout 'elsewhere' does not exist"),
    "pdb": ("ref.pdb", [("charts/api/templates/poddisruptionbudget.yaml",
                         '    matchLabels:\n      {{- include "lib.selectorLabels" . | nindent 6 }}', "    matchLabels:\n      app: nobody")],
            "PodDisruptionBudget api/auth: spec.selector: selects no pod of any workload"),
    "service-monitor": ("ref.service-monitor", [("charts/api/templates/servicemonitor.yaml", "- port: http", "- port: web")],
                        "ServiceMonitor api/auth: spec.endpoints[0].port: no selected Service has a port named 'web'"),
    "network-policy": ("ref.network-policy", [("charts/lib/templates/_helpers.tpl",
                                               "      app.kubernetes.io/instance: {{ .Release.Name }}\n  policyTypes:",
                                               "      app.kubernetes.io/instance: {{ .Release.Name }}-x\n  policyTypes:")],
                       "NetworkPolicy api/auth: spec.podSelector: selects no pod in its namespace"),
    "secret": ("ref.secret", [("charts/lib/templates/_helpers.tpl", "{{- range .Values.secretEnv }}",
                               "- name: EXTRA\n  valueFrom:\n    secretKeyRef:\n      name: nowhere\n      key: k\n{{- range .Values.secretEnv }}")],
               "Secret 'nowhere' is neither rendered nor declared external in the model"),
    "config-map": ("ref.configmap", [("charts/postgresql/templates/statefulset.yaml",
                                      '        - name: initdb\n          configMap:\n            name: {{ include "lib.name" . }}',
                                      '        - name: initdb\n          configMap:\n            name: {{ include "lib.name" . }}-init')],
                   "ConfigMap 'postgresql-init' is neither rendered nor declared external in the model"),
    "volume-mount": ("ref.volume-mount", [("charts/worker/templates/statefulset.yaml",
                                           "      volumes:\n        - name: tmp\n", "      volumes:\n        - name: scratch\n")],
                     "mounts volume 'tmp', which the pod does not have"),
    "placement": ("ref.placement", [("charts/lib/templates/_helpers.tpl", "{{- with .Values.placement.tolerations }}", "{{- with list }}")],
                  "StatefulSet messaging/rabbitmq: spec.template.spec.tolerations: can be scheduled on no node; the model places it on 'k8s-rabbitmq' only"),
    "image": ("policy.image", [("charts/worker/templates/statefulset.yaml", 'image: {{ include "lib.image" .Values.image | quote }}',
                                "image: {{ .Values.image.repository }}")],
              "image 'ghcr.io/eco2-team/storage-worker' has no tag or digest (it would pull 'latest')"),
    "probes": ("policy.probes", [("charts/api/templates/_helpers.tpl", "readinessProbe:", "startupProbe:")],
               "container 'api' has no readinessProbe"),
    # A sidecar needs no readinessProbe (the exporters have none), but still its livenessProbe.
    "probes-sidecar": ("policy.probes", [("charts/postgresql/templates/statefulset.yaml",
                                          "          livenessProbe:\n            tcpSocket:\n              port: metrics",
                                          "          startupProbe:\n            tcpSocket:\n              port: metrics")],
                       "StatefulSet data/postgresql: spec.template.spec.containers[1]: container 'exporter' has no livenessProbe"),
    # The main container is the one kubectl.kubernetes.io/default-container names, not always the first.
    "probes-default-container": ("policy.probes", [("charts/redis/templates/statefulset.yaml", "      annotations:\n",
                                                    "      annotations:\n        kubectl.kubernetes.io/default-container: exporter\n")],
                                 "StatefulSet data/redis: spec.template.spec.containers[1]: container 'exporter' has no readinessProbe"),
    "security-context": ("policy.security-context", [("charts/lib/templates/_helpers.tpl",
                                                      "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true")],
                         "does not set allowPrivilegeEscalation: false"),
    "token": ("policy.service-account-token", [("charts/api/templates/_helpers.tpl",
                                                "  automountServiceAccountToken: false", "  automountServiceAccountToken: true")],
              "mounts a service account token"),
    "schema": ("schema", [("charts/api/templates/poddisruptionbudget.yaml", "  minAvailable:", "  minAvailble:")],
               'PodDisruptionBudget api/auth: spec.minAvailble: unknown field "minAvailble"'),
    "credentials": ("policy.credentials", [("values/services.yaml", "    env:\n      CELERY_DEFAULT_EXCHANGE: tasks\n",
                                            "    env:\n      CELERY_DEFAULT_EXCHANGE: tasks\n      BROKER_URL: amqp://eco:hunter2@rabbitmq:5672/\n")],
                    "looks like a connection string with a password"),
}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return copy_repo(tmp_path_factory.mktemp("base"))


def failing_lines(root: Path) -> list[str]:
    with pytest.raises(ValidationFailed) as exc:
        pipeline.render_to_disk(pipeline.Options(root=root, values=root / "values"), log=lambda _: None)
    return exc.value.lines


@pytest.mark.parametrize("case", sorted(CASES))
def test_change_triggers_check(case: str, base: Path, tmp_path: Path):
    check, edits, expected = CASES[case]
    root = Path(shutil.copytree(base, tmp_path / "repo", symlinks=True))
    for file, old, new in edits:
        edit(root / file, old, new)
    lines = failing_lines(root)
    hits = [line for line in lines if f"[{check}]" in line and expected in line]
    assert hits, f"no [{check}] finding containing {expected!r}; got:\n" + "\n".join(lines[:30])
    assert not list(root.glob("rendered/**/*.yaml")), "a failed render must not write rendered/"


def test_every_check_is_covered():
    """Each check id the validator can emit has a case here (a chart/model change, or an injection below)."""
    covered = {check for check, _, _ in CASES.values()}
    covered |= {exp[exp.rindex("[") + 1:exp.rindex("]")] for _, _, _, exp, _ in INJECTIONS.values() if "[" in exp}
    covered |= {"policy.credentials"}  # the Secret-with-data injection
    emitted = {"schema", "policy.image", "policy.resources", "policy.probes", "policy.security-context",
               "policy.credentials", "policy.service-account-token", "ref.service-selector", "ref.target-port",
               "ref.ingress-backend", "ref.rollout", "ref.analysis", "ref.analysis-args", "ref.scale-target", "ref.pdb",
               "ref.service-monitor", "ref.network-policy", "ref.secret", "ref.configmap", "ref.volume-mount", "ref.placement", "ref.app-source",
               "ref.app-project", "ref.sync-wave"}
    source = "".join((REPO / "generator" / "validate" / f).read_text() for f in ("references.py", "policy.py", "validation.py"))
    assert all(f'"{check}"' in source or check == "ref.configmap" for check in emitted), "the list above is out of date"
    assert emitted <= covered, f"no test triggers: {sorted(emitted - covered)}"


def test_waiver_accepts_one_finding_and_prints_its_reason(base: Path, tmp_path: Path):
    root = Path(shutil.copytree(base, tmp_path / "repo", symlinks=True))
    edit(root / "charts/worker/templates/statefulset.yaml", 'image: {{ include "lib.image" .Values.image | quote }}',
         "image: {{ .Values.image.repository }}")
    (root / "values/waivers.yaml").write_text(
        "waivers:\n"
        "  - check: policy.image\n    object: StatefulSet/workers/storage-worker\n"
        "    reason: testing the waiver mechanism on one object\n")
    lines = failing_lines(root)
    findings = [line for line in lines if not line.startswith("waived: ")]
    assert not any("StatefulSet workers/storage-worker" in line and "[policy.image]" in line for line in findings)
    assert any("StatefulSet workers/ai-worker" in line and "[policy.image]" in line for line in findings)
    assert any(line.startswith("waived: ") and "testing the waiver mechanism" in line for line in lines)


def _probed(kind: str, *containers: tuple[str, str], default: str | None = None) -> list[str]:
    """policy.probes on one object whose containers carry the probes given as letters (L liveness, R readiness)."""
    meta = {"annotations": {"kubectl.kubernetes.io/default-container": default}} if default else {}
    spec = {"containers": [{"name": name, **{f"{p}Probe": {"tcpSocket": {"port": 1}} for letter, p in
                                             (("L", "liveness"), ("R", "readiness")) if letter in probes}}
                           for name, probes in containers]}
    doc = {"kind": kind, "metadata": {"name": "x", **(meta if kind == "Pod" else {})},
           "spec": spec if kind == "Pod" else {"template": {"metadata": meta, "spec": spec}}}
    obj = Obj("rendered/x.yaml", 0, doc, None, "ns")
    return [f"{path}: {message}" for _, _, path, message, _ in policy.probes(obj, obj.pod()[1])]


@pytest.mark.parametrize("kind, containers, default, findings", [
    # every long-running container needs a livenessProbe, sidecars included
    ("StatefulSet", [("db", "LR"), ("exporter", "L")], None, []),
    ("StatefulSet", [("db", "LR"), ("exporter", "")], None,
     ["spec.template.spec.containers[1]: container 'exporter' has no livenessProbe"]),
    # the main container (the first) needs a readinessProbe as well
    ("Deployment", [("api", "L"), ("exporter", "L")], None,
     ["spec.template.spec.containers[0]: container 'api' has no readinessProbe"]),
    ("Pod", [("api", ""), ("exporter", "LR")], None, ["spec.containers[0]: container 'api' has no livenessProbe or readinessProbe"]),
    # ... unless kubectl.kubernetes.io/default-container names another one (Grafana's sidecars come first)
    ("Deployment", [("sidecar", "L"), ("grafana", "LR")], "grafana", []),
    ("Deployment", [("sidecar", "LR"), ("grafana", "L")], "grafana",
     ["spec.template.spec.containers[1]: container 'grafana' has no readinessProbe"]),
    ("Pod", [("sidecar", "LR"), ("main", "L")], "main", ["spec.containers[1]: container 'main' has no readinessProbe"]),
    # an annotation naming no container leaves the first one main
    ("Deployment", [("api", "L"), ("exporter", "L")], "gone",
     ["spec.template.spec.containers[0]: container 'api' has no readinessProbe"]),
    # Jobs finish: no probes needed
    ("Job", [("migrate", "")], None, []),
])
def test_probes_liveness_everywhere_readiness_on_the_main_container(kind, containers, default, findings):
    assert _probed(kind, *containers, default=default) == findings


# ---------------------------------------------------------------- make validate on an injected tree


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    root = copy_repo(tmp_path_factory.mktemp("rendered"))
    pipeline.render_to_disk(pipeline.Options(root=root, values=root / "values"), log=lambda _: None)
    return root


INJECTIONS = {
    "application-unknown-field": ("rendered/prod/apps/waste.yaml", "  project: apis\n", "  project: apis\n  syncWave: 3\n",
                                  'rendered/prod/apps/waste.yaml#0 Application argocd/waste: spec.syncWave: unknown field "syncWave" [schema]',
                                  "values/services.yaml:67:3 services.waste"),
    "chart-path": ("rendered/prod/apps/auth.yaml", "path: charts/api", "path: charts/apis",
                   "spec.source.path: chart path 'charts/apis' does not exist in the repository [ref.app-source]", "services.auth"),
    "value-file": ("rendered/prod/apps/auth.yaml", "- ../../rendered/prod/values/auth.yaml", "- ../../rendered/prod/values/auth-old.yaml",
                   "spec.source.helm.valueFiles[0]: value file '../../rendered/prod/values/auth-old.yaml' does not exist [ref.app-source]", ""),
    "project-namespace": ("rendered/prod/apps/auth.yaml", "    namespace: api\n", "    namespace: data\n",
                          "spec.destination: namespace 'data' is not a destination of project 'apis' [ref.app-project]", ""),
    "sync-wave": ("rendered/prod/apps/waste.yaml", "sync-wave: '5'", "sync-wave: '3'",
                  'wave 3 does not come after ai-worker\'s wave 4 (ai-worker declared in dependsOn) [ref.sync-wave]', "services.waste.dependsOn"),
    "secret-with-data": ("rendered/prod/manifests/redis.yaml", "apiVersion: v1\nkind: ConfigMap",
                         "apiVersion: v1\nkind: Secret\nmetadata:\n  name: oops\ndata:\n  password: aHVudGVyMg==\n---\napiVersion: v1\nkind: ConfigMap",
                         "Secret data/oops: data: a Secret with data is a plaintext credential in git", ""),
    "resources": ("rendered/prod/manifests/auth.yaml", "          limits:\n            cpu: 300m\n", "          limits:\n",
                  "has no limits.cpu [policy.resources]", "services.auth.resources"),
}


@pytest.mark.parametrize("case", sorted(INJECTIONS))
def test_make_validate_names_file_document_field_and_model_field(case: str, rendered: Path, tmp_path: Path):
    file, old, new, expected, model_field = INJECTIONS[case]
    root = Path(shutil.copytree(rendered, tmp_path / "repo", symlinks=True))
    edit(root / file, old, new)
    result = run_cli("validate", "--root", str(root))
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stdout, result.stdout[:3000]
    if model_field:
        block = result.stdout[result.stdout.index(expected):]
        assert "\n    model: " in block and model_field in block.split("\n")[1], block[:500]


def test_eco2_output_validates_with_zero_findings():
    result = run_cli("validate", "--root", str(REPO))
    assert result.returncode == 0, result.stdout[:3000] + result.stderr
    # Only the findings values/waivers.yaml accepts, each with its reason.
    assert all(line.startswith("waived: ") and " — " in line for line in result.stdout.splitlines()), result.stdout[:3000]
    assert "objects valid" in result.stderr


def test_an_unreadable_values_file_is_a_finding_not_a_pass(rendered: Path, tmp_path: Path):
    """A values file with an unclosed quote used to be skipped: '139 objects valid', exit 0."""
    root = Path(shutil.copytree(rendered, tmp_path / "repo", symlinks=True))
    path = root / "rendered/prod/values/redis.yaml"
    path.write_text(path.read_text() + 'password: "hunter2\n')
    result = run_cli("validate", "--root", str(root))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rendered/prod/values/redis.yaml" in result.stdout and "does not parse as YAML" in result.stdout
