"""Each cross-object rule of the model: the Eco² model passes it, and a broken model fails it with its finding."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from conftest import VALUES, edit
from generator import kinds
from generator.model import checks
from generator.model.loader import load
from generator.plan import resolve
from test_invalid_inputs import apply

INVALID = Path(__file__).parent / "invalid"

# rule -> invalid cases (tests/invalid/<case>.yaml) that must trigger it
FAILING = {
    "unique_component_names": ["duplicate-component-name"],
    "nodes_exist": ["unknown-node"],
    "projects_and_namespaces_exist": ["unknown-project"],
    "dependencies_exist": ["unknown-dependency"],
    "secrets_exist": ["undeclared-secret", "secret-wrong-namespace"],
    "databases_have_a_server": ["database-without-server"],
    "messaging_references": ["unknown-queue"],
    "queues_have_consumers": ["queue-without-consumer"],
    "placement_fits_node": ["taint-not-tolerated", "selector-mismatch", "selector-too-wide"],
    "unique_routes": ["duplicate-path", "duplicate-node-port"],
    "canaries": ["canary-weights-fall", "canary-weight-100", "canary-without-analysis", "canary-internal"],
    "capabilities_provided": ["no-rollouts-controller", "no-storage-provider", "storage-class-twice", "unknown-storage-class"],
    "acyclic_dependencies": ["dependency-cycle"],
    "kind_rules": ["redis-maxmemory", "redis-db-index-reused"],
    "single_of_a_kind": ["two-postgresql"],
}
# A kind's own rule (generator/kinds/<kind>.py, run by kind_rules) -> the invalid cases that must trigger it
KIND_FAILING = {
    ("redis", "memory_below_limit"): ["redis-maxmemory"],
    ("redis", "databases_unique"): ["redis-db-index-reused"],
}
RULES = {rule.__name__: rule for rule in checks.RULES}


def registered_functions(module, argument: str) -> set[str]:
    """Public functions of a module's source whose first parameter is annotated `argument` (x_*: mutmut's copies)."""
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    return {f.name for f in tree.body if isinstance(f, ast.FunctionDef) and not f.name.startswith(("_", "x_"))
            and f.name != "run" and f.args.args and f.args.args[0].annotation is not None
            and ast.unparse(f.args.args[0].annotation) == argument}


def test_every_rule_of_the_module_runs():
    assert registered_functions(checks, "Model") == set(RULES), "list the new rule in checks.RULES"
    assert len(checks.RULES) == len(RULES)  # none twice


def test_every_rule_has_a_failing_case():
    assert set(FAILING) == set(RULES), "add a case to tests/invalid/ and map it here for each new rule"
    declared = {(k.name, rule.__name__) for k in kinds.KINDS for rule in k.checks}
    assert set(KIND_FAILING) == declared, "add a case to tests/invalid/ and map it in KIND_FAILING for each kind's rule"


@pytest.mark.parametrize("kind,rule,case", [(k, r, c) for (k, r), cases in sorted(KIND_FAILING.items()) for c in cases])
def test_a_kinds_rule_fails_on_broken_model(kind, rule, case, model_dir):
    spec = yaml.safe_load((INVALID / f"{case}.yaml").read_text(encoding="utf-8"))
    apply(spec, model_dir)
    model = load(model_dir, run_checks=False).model
    check = next(r for r in kinds.of(kind).checks if r.__name__ == rule)
    findings = [f for c in resolve.of_kind(model, kind) for f in check(model, c.name, c.spec)]
    assert findings, f"{kind}'s rule {rule} did not fire on case {case}"
    expected = "\n".join(spec["expected"])
    assert all(f.message in expected for f in findings), findings


@pytest.fixture(scope="module")
def eco2():
    return load(VALUES, run_checks=False).model


@pytest.mark.parametrize("name", sorted(RULES))
def test_rule_passes_on_eco2(name, eco2):
    assert list(RULES[name](eco2)) == []


@pytest.mark.parametrize("name,case", [(r, c) for r, cases in sorted(FAILING.items()) for c in cases])
def test_rule_fails_on_broken_model(name, case, model_dir):
    spec = yaml.safe_load((INVALID / f"{case}.yaml").read_text(encoding="utf-8"))
    apply(spec, model_dir)
    model = load(model_dir, run_checks=False).model
    findings = list(RULES[name](model))
    assert findings, f"rule {name} did not fire on case {case}"
    expected = "\n".join(spec["expected"])
    for finding in findings:
        assert finding.message in expected, f"{finding.message!r} is not among the case's expected messages"


# ---------------------------------------------------------------- every branch of every rule, on small real edits

NS = "known: api, argo-rollouts, aws-ebs-csi-driver, aws-load-balancer-controller, data, messaging, metrics-server, monitoring, monitoring-node, workers"
AUTH_PLACEMENT = "    placement: {node: k8s-api-auth}\n"
REDIS_TAINT = '      - {key: node-role.kubernetes.io/infrastructure, value: "true", effect: NoSchedule}\n  k8s-monitoring:'  # k8s-redis's
# case -> (rule, [(file, old, new)], only the findings whose loc starts with this, [(loc, message)])
# A message ending in "…" is compared up to there.
BRANCHES = {
    "root-app-is-a-component": ("unique_component_names", [("argocd.yaml", "rootApp: eco2-root", "rootApp: auth")], (),
                                [(("argocd", "rootApp"), "'auth' is also a component name")]),
    "root-project-missing": ("projects_and_namespaces_exist", [("argocd.yaml", "rootProject: eco2-bootstrap", "rootProject: bootstrap")],
                             (), [(("argocd", "rootProject"), "project 'bootstrap' is not in argocd.projects")]),
    "in-the-root-project": ("projects_and_namespaces_exist", [("services.yaml", AUTH_PLACEMENT, AUTH_PLACEMENT + "    project: eco2-bootstrap\n")],
                            (), [(("services", "auth", "project"), "project 'eco2-bootstrap' is the root project, which may only manage Applications")]),
    "platform-project": ("projects_and_namespaces_exist", [("platform.yaml", "  project: platform\n", "  project: platfrom\n")], (),
                         [(("platform", "project"), "project 'platfrom' is not in argocd.projects (did you mean 'platform'?)")]),
    "namespace-missing": ("projects_and_namespaces_exist", [("services.yaml", AUTH_PLACEMENT, AUTH_PLACEMENT + "    namespace: datum\n")], (),
                          # 'datum' is 0.67 like 'data': below the 0.75 a "did you mean" needs
                          [(("services", "auth", "namespace"), f"namespace 'datum' is not in platform.namespaces ({NS})")]),
    "node-exporter-namespace": ("projects_and_namespaces_exist", [("infra.yaml", "namespace: monitoring-node", "namespace: monitoring-nodes")], (),
                                [(("infra", "monitoring", "nodeExporter", "namespace"),
                                  "namespace 'monitoring-nodes' is not in platform.namespaces (did you mean 'monitoring-node'?)")]),
    "self-dependency": ("dependencies_exist", [("services.yaml", "    dependsOn: [postgresql, redis]\n    delivery: {strategy: rolling}\n\n  userinfo",
                                                "    dependsOn: [postgresql, redis, auth]\n    delivery: {strategy: rolling}\n\n  userinfo")], (),
                        [(("services", "auth", "dependsOn", 2), "a component cannot depend on itself")]),
    "secret-key-missing": ("secrets_exist", [("services.yaml", "{secret: jwt-secret, key: secret-key}", "{secret: jwt-secret, key: secret-keys}")], (),
                           [(("services", "auth", "secretEnv", "JWT_SECRET_KEY", "key"),
                             "secret 'jwt-secret' has no key 'secret-keys' (did you mean 'secret-key'?)")]),
    "infra-credentials-keys": ("secrets_exist", [("secrets.yaml", "keys: [username, password]\n  redis", "keys: [password]\n  redis")],
                               ("infra",), [(("infra", "rabbitmq", "credentialsSecret"), "secret 'rabbitmq-credentials' has no key 'username' (known: password)")]),
    "infra-credentials-namespace": ("secrets_exist", [("secrets.yaml", "namespaces: [api, workers, data]\n    keys: [password]",
                                                       "namespaces: [api, workers]\n    keys: [password]")], ("infra",),
                                    [(("infra", "redis", "credentialsSecret"),
                                      "secret 'redis-credentials' is not declared in namespace 'data' (declared in: api, workers)")]),
    "grafana-admin-key": ("secrets_exist", [("secrets.yaml", "keys: [admin-user, admin-password]", "keys: [admin-password]")], (),
                          [(("infra", "monitoring", "grafana", "adminUserKey"), "secret 'grafana-admin' has no key 'admin-user' …")]),
    "secret-namespace-unknown": ("secrets_exist", [("secrets.yaml", "namespaces: [api]\n    keys: [secret-key]", "namespaces: [api, payments]\n    keys: [secret-key]")],
                                 (), [(("secrets", "jwt-secret", "namespaces", 1), "namespace 'payments' is not in platform.namespaces")]),
    "broker-not-rabbitmq": ("messaging_references", [("messaging.yaml", "broker: rabbitmq", "broker: redis")], ("messaging",),
                            [(("messaging", "broker"), "'redis' is not a rabbitmq component in infra")]),
    "broker-missing": ("messaging_references", [("messaging.yaml", "broker: rabbitmq", "broker: rabbit")], ("messaging",),
                       [(("messaging", "broker"), "'rabbit' is not a rabbitmq component in infra")]),
    "dead-letter-queue-missing": ("messaging_references", [("messaging.yaml", "deadLetterQueue: q.dlq", "deadLetterQueue: q.dead")], (),
                                  [(("messaging", "deadLetterQueue"), "queue 'q.dead' is not in messaging.queues"),
                                   (("messaging", "queues", "q.dlq", "deadLetter"),
                                    "every queue but q.dead must dead-letter (rejected and expired tasks would vanish)")]),
    "binding-exchange": ("messaging_references", [("messaging.yaml", '{exchange: tasks, routingKey: "*.low.*"}', '{exchange: taskz, routingKey: "*.low.*"}')],
                         (), [(("messaging", "queues", "q.bulk", "binding", "exchange"),
                               "exchange 'taskz' is not in messaging.exchanges (did you mean 'tasks'?)")]),
    "dead-letter-exchange": ("messaging_references", [("messaging.yaml", "maxLength: 500\n      deadLetter: {exchange: dlx", "maxLength: 500\n      deadLetter: {exchange: dlz")],
                             (), [(("messaging", "queues", "q.sched", "deadLetter", "exchange"),
                                   "exchange 'dlz' is not in messaging.exchanges (known: dlx, tasks)")]),
    "no-dead-letter": ("messaging_references", [("messaging.yaml", "maxLength: 500\n      deadLetter: {exchange: dlx, routingKey: dlq}\n", "maxLength: 500\n")], (),
                       [(("messaging", "queues", "q.sched", "deadLetter"), "every queue but q.dlq must dead-letter (rejected and expired tasks would vanish)")]),
    "worker-without-broker": ("messaging_references", [("workers.yaml", "dependsOn: [rabbitmq, postgresql, redis]", "dependsOn: [postgresql, redis]")], (),
                              [(("workers", "storage-worker", "dependsOn"), "consumes queues of 'rabbitmq' but does not depend on it")]),
    "node-port-without-path": ("unique_routes", [("services.yaml", "    path: /api/v1/auth\n", "")], (),
                               [(("services", "auth", "nodePort"), "a nodePort is only for services behind the ingress (set path)")]),
    "default-steps-once": ("canaries", [("delivery.yaml", "- setWeight: 30", "- setWeight: 5")], (),
                           # waste and chat-llm both use the default steps: reported once, where they are written
                           [(("delivery", "canary", "steps", 2, "setWeight"), "5 does not rise above the previous weight 10")]),
    "own-steps": ("canaries", [("services.yaml", "delivery: {strategy: canary}\n\n  recycle-info",
                                "delivery: {strategy: canary, steps: [{setWeight: 1}, {setWeight: 0}, {setWeight: 99}, {setWeight: 99}]}\n\n  recycle-info")],
                  (), [(("services", "waste", "delivery", "steps", 1, "setWeight"), "0 is outside 1..99 (100% is the promotion after the last step)"),
                       (("services", "waste", "delivery", "steps", 3, "setWeight"), "99 does not rise above the previous weight 99")]),
    "own-steps-and-default": ("canaries", [("services.yaml", "delivery: {strategy: canary}\n\n  recycle-info",
                                            "delivery: {strategy: canary, steps: [{pause: 5m}]}\n\n  recycle-info"),
                                           ("delivery.yaml", "- setWeight: 50", "- setWeight: 100")], (),
                              [(("services", "waste", "delivery", "steps"), "a canary needs at least one setWeight step"),
                               (("delivery", "canary", "steps", 4, "setWeight"), "100 is outside 1..99 (100% is the promotion after the last step)")]),
    "canary-grpc": ("canaries", [("services.yaml", "delivery: {strategy: canary}\n\n  recycle-info", "delivery: {strategy: canary}\n    protocol: grpc\n\n  recycle-info")],
                    (), [(("services", "waste", "delivery", "strategy"),
                          "a canary needs an HTTP service behind the ingress (the ALB splits the traffic); this one has protocol grpc")]),
    "external-and-provided": ("capabilities_provided", [("platform.yaml", "  external:\n", "  external:\n    storageClasses: {gp3: the cloud}\n")], (),
                              [(("platform", "external", "storageClasses", "gp3"),
                                "storage class gp3 is declared external but aws-ebs-csi-driver provides it")]),
    "external-and-provided-kind": ("capabilities_provided", [("platform.yaml", "    apiVersions:\n", "    apiVersions:\n      argoproj.io/v1alpha1/Rollout: by hand\n")], (),
                                   [(("platform", "external", "apiVersions", "argoproj.io/v1alpha1/Rollout"),
                                     "custom resource argoproj.io/v1alpha1/Rollout is declared external but argo-rollouts provides it")]),
    "external-and-provided-metrics": ("capabilities_provided", [("platform.yaml", "  external:\n", "  external:\n    metricsApi: the cloud\n")], (),
                                      [(("platform", "external", "metricsApi"),
                                        "metrics API metrics.k8s.io is declared external but metrics-server provides it")]),
    "external-and-provided-ingress-class": ("capabilities_provided", [("platform.yaml", "  external:\n", "  external:\n    ingressClasses: {alb: the cloud}\n")],
                                            (), [(("platform", "external", "ingressClasses", "alb"),
                                                  "ingress class alb is declared external but aws-load-balancer-controller provides it")]),
    "selector-too-wide-by-the-nodes-labels": ("placement_fits_node", [("cluster.yaml", "labels: {workload: api, domain: userinfo}",
                                                                      "labels: {workload: api, domain: auth}")], ("services", "auth"),
                                              # no nodeSelector written: the node's labels are the selector, said at `node`
                                              [(("services", "auth", "placement", "node"), "node selector {'workload': 'api', "
                                                "'domain': 'auth'} also matches k8s-api-userinfo; pods could land off 'k8s-api-auth'")]),
    "taints-with-and-without-value": ("placement_fits_node", [
        ("cluster.yaml", REDIS_TAINT, REDIS_TAINT.replace("  k8s-monitoring:", "      - {key: dedicated, effect: NoExecute}\n"
                                                                             "      - {key: spot, effect: PreferNoSchedule}\n  k8s-monitoring:")),
        ("infra.yaml", "placement: {node: k8s-redis}", "placement: {node: k8s-redis, tolerations: []}")], (),
        [(("infra", "redis", "placement", "tolerations"), "does not tolerate taint node-role.kubernetes.io/infrastructure=true:"
                                                          "NoSchedule of node 'k8s-redis'; pods would stay Pending"),
         (("infra", "redis", "placement", "tolerations"), "does not tolerate taint dedicated:NoExecute of node 'k8s-redis'; pods "
                                                          "would stay Pending")]),  # PreferNoSchedule only prefers: no finding
    "cycle-through-an-implied-edge": ("acyclic_dependencies", [("infra.yaml", "    placement: {node: k8s-monitoring}\n",
                                                                "    placement: {node: k8s-monitoring}\n    dependsOn: [auth]\n")], (),
        # auth's ServiceMonitor and PrometheusRule need monitoring's CRDs: an edge nobody wrote, said at auth itself and why
        [(("infra", "monitoring", "dependsOn", 0), "dependency cycle: monitoring → auth → monitoring; this is one of its 2 edges, remove one"),
         (("services", "auth"), "dependency cycle: auth → monitoring → auth (provides PrometheusRule, ServiceMonitor, implied); this is "
                                "one of its 2 edges, remove one"),
         (("infra", "monitoring", "dependsOn", 0), "dependency cycle: monitoring → auth → postgresql → monitoring; this is one of its 3 "
                                                   "edges, remove one"),
         (("services", "auth", "dependsOn", 0), "dependency cycle: auth → postgresql → monitoring → auth; this is one of its 3 edges, "
                                                "remove one"),
         (("infra", "postgresql"), "dependency cycle: postgresql → monitoring → auth → postgresql (provides PrometheusRule, "
                                   "ServiceMonitor, implied); this is one of its 3 edges, remove one"),
         (("infra", "monitoring", "dependsOn", 0), "dependency cycle: monitoring → auth → redis → monitoring; this is one of its 3 "
                                                   "edges, remove one"),
         (("services", "auth", "dependsOn", 1), "dependency cycle: auth → redis → monitoring → auth; this is one of its 3 edges, "
                                                "remove one"),
         (("infra", "redis"), "dependency cycle: redis → monitoring → auth → redis (provides PrometheusRule, ServiceMonitor, "
                              "implied); this is one of its 3 edges, remove one")]),
    "grafana-admin-password-key": ("secrets_exist", [("secrets.yaml", "keys: [admin-user, admin-password]", "keys: [admin-user]")], (),
                                   [(("infra", "monitoring", "grafana", "adminPasswordKey"),
                                     "secret 'grafana-admin' has no key 'admin-password' (known: admin-user)")]),
    "grafana-admin-secret-undeclared": ("secrets_exist", [("infra.yaml", "adminSecret: grafana-admin", "adminSecret: grafana-admins")], (),
                                        [(("infra", "monitoring", "grafana", "adminSecret"),
                                          "secret 'grafana-admins' is not declared in secrets (did you mean 'grafana-admin'?)")] * 2),
    "selector-partly-matching": ("placement_fits_node", [("workers.yaml", "placement: {node: k8s-worker-ai}",
                                                          "placement: {node: k8s-worker-ai, nodeSelector: {workload: worker-ai, gpu: 'true'}}")],
                                 (), [(("workers", "ai-worker", "placement", "nodeSelector"),  # only the labels that differ
                                       "node selector {'gpu': 'true'} does not match node 'k8s-worker-ai' (its labels: "
                                       "{'workload': 'worker-ai'})")]),
    "unknown-node-then-an-untolerated-taint": ("placement_fits_node", [
        ("services.yaml", AUTH_PLACEMENT, "    placement: {node: k8s-api-nowhere}\n"),
        ("infra.yaml", "placement: {node: k8s-redis}", "placement: {node: k8s-redis, tolerations: []}")], (),
        # the unknown node is nodes_exist's to report; the placements after it are still checked
        [(("infra", "redis", "placement", "tolerations"), "does not tolerate taint node-role.kubernetes.io/infrastructure=true:"
                                                          "NoSchedule of node 'k8s-redis'; pods would stay Pending")]),
    "redis-maxmemory-at-the-limit": ("kind_rules", [("infra.yaml", "maxmemory: 1Gi", "maxmemory: 2Gi")], (),
                                     [(("infra", "redis", "maxmemory"),
                                       "maxmemory 2Gi must stay below the memory limit 2Gi (the OOM killer would strike first)")]),
    "redis-maxmemory-below": ("kind_rules", [("infra.yaml", "maxmemory: 1Gi", "maxmemory: 2047Mi")], (), []),
}


@pytest.mark.parametrize("case", sorted(BRANCHES))
def test_rule_branch(case, model_dir):
    name, edits, prefix, expected = BRANCHES[case]
    for file, old, new in edits:
        edit(model_dir / file, old, new)
    model = load(model_dir, run_checks=False).model
    got = [(f.loc, f.message) for f in RULES[name](model) if f.loc[:len(prefix)] == prefix]
    assert len(got) == len(expected), got
    for (loc, message), (want_loc, want) in zip(got, expected):
        assert loc == want_loc, got
        assert message.startswith(want[:-1]) if want.endswith("…") else message == want, got


def test_a_database_without_any_postgresql_component_says_none(eco2):
    without = eco2.model_copy(update={"infra": {k: v for k, v in eco2.infra.items() if k != "postgresql"}})
    found = [(f.loc, f.message) for f in checks.databases_have_a_server(without)]
    assert found[0] == (("services", "auth", "database"),
                        "uses database 'auth' but dependsOn names no PostgreSQL component (PostgreSQL components: none)")


def test_workers_without_a_messaging_section(model_dir):
    (model_dir / "messaging.yaml").unlink()
    model = load(model_dir, run_checks=False).model
    assert model.messaging is None
    assert [(f.loc, f.message) for f in checks.messaging_references(model)] == [
        (("workers", name, "queues"), "workers consume queues, but the model has no messaging section") for name in model.workers]
    assert list(checks.queues_have_consumers(model)) == []
