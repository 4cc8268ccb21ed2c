"""charts/rabbitmq, charts/postgresql, charts/redis: the infra charts, rendered by the real helm with the
Eco² values (computed from values/ by the generator) and with every ci scenario."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import Rendered, schema_rejection, write_chart_values
from generator.helm import HelmError
from generator.plan import resolve
from generator.render import helmvalues

REPO = Path(__file__).resolve().parents[1]
CHARTS = ("rabbitmq", "postgresql", "redis")
NAMESPACE = {"rabbitmq": "messaging", "postgresql": "data", "redis": "data"}
# The non-root user and group of each official alpine image (docker-library Dockerfiles).
IMAGE_USER = {"rabbitmq": (100, 101), "postgresql": (70, 70), "redis": (999, 1000)}
CLIENT_PORT_NAME = {"rabbitmq": "amqp", "postgresql": "postgresql", "redis": "redis"}
SECRET_KEYS = {"rabbitmq": {"username", "password"}, "postgresql": {"username", "password"}, "redis": {"password"}}
SCENARIOS = [(chart, p) for chart in CHARTS for p in sorted((REPO / "charts" / chart / "ci").glob("*-values.yaml"))]


def _scenario_id(chart: str, path: Path) -> str:
    return f"{chart}-ci-{path.name.removesuffix('-values.yaml')}"


@dataclass(frozen=True)
class Render(Rendered):
    chart: str = ""

    @property
    def pod(self) -> dict[str, Any]:
        return self.one("StatefulSet")["spec"]["template"]

    def containers(self, init: bool = True) -> list[dict[str, Any]]:
        spec = self.pod["spec"]
        return spec["containers"] + (spec.get("initContainers", []) if init else [])

    def container(self, name: str) -> dict[str, Any]:
        return next(c for c in self.containers() if c["name"] == name)

    @property
    def config(self) -> dict[str, str]:
        return self.one("ConfigMap")["data"]


@pytest.fixture(scope="module")
def eco2(tmp_path_factory):
    """The Eco² model, and the values files the generator writes for its three infra components."""
    model, written = write_chart_values(tmp_path_factory.mktemp("eco2-values"), *CHARTS)
    files = {helmvalues.local_chart(comp): (comp.name, comp.namespace, path) for comp, path in written}
    assert {chart: ns for chart, (_, ns, _) in files.items()} == NAMESPACE
    return model, files


@pytest.fixture(scope="module")
def renders(helm, eco2) -> dict[str, Render]:
    """Every case rendered once: the Eco² components in their namespaces, and each ci scenario."""
    model, files = eco2
    kube, apis = model.cluster.kubernetes_version, resolve.api_versions(model)
    cases = {f"{chart}-eco2": (chart, release, ns, path) for chart, (release, ns, path) in files.items()}
    cases |= {_scenario_id(chart, p): (chart, chart, NAMESPACE[chart], p) for chart, p in SCENARIOS}
    return {case: Render(release, ns, yaml.safe_load(path.read_text()),
                         helm.template(REPO / "charts" / chart, release, ns, [path], kube, apis), chart)
            for case, (chart, release, ns, path) in cases.items()}


CASES = [f"{chart}-eco2" for chart in CHARTS] + [_scenario_id(chart, p) for chart, p in SCENARIOS]


@pytest.fixture(params=CASES)
def r(request, renders) -> Render:
    return renders[request.param]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _scenario_values(chart: str, name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "charts" / chart / "ci" / f"{name}-values.yaml").read_text())


# ---------------------------------------------------------------- chart-level


def test_each_chart_has_the_eco2_scenario_and_a_variant():
    for chart in CHARTS:
        names = [p.name for c, p in SCENARIOS if c == chart]
        assert "eco2-values.yaml" in names and len(names) >= 2, (chart, names)


def test_rendered_objects_are_valid_kubernetes(renders, validator):
    findings = [str(f) for case, r in renders.items() for f in validator.validate_stream(case, r.text)]
    assert findings == []


@pytest.mark.parametrize("chart, edit, helm_says", [
    ("rabbitmq", lambda v: v.update(credentialSecret=v.pop("credentialsSecret")),
     "at '': additional properties 'credentialSecret' not allowed"),
    ("rabbitmq", lambda v: v["alerts"]["queues"][0].update(readyAbov=5),
     "at '/alerts/queues/0': additional properties 'readyAbov' not allowed"),
    ("postgresql", lambda v: v["exporter"]["image"].update(tags="v1"),
     "at '/exporter/image': additional properties 'tags' not allowed"),
    ("postgresql", lambda v: v.update(databases=["Auth-DB"]), "at '/databases/0'"),
    ("redis", lambda v: v["storage"].update(storagClass=v["storage"].pop("storageClass")),
     "at '/storage': additional properties 'storagClass' not allowed"),
    ("redis", lambda v: v.update(maxmemory=v.pop("maxmemoryBytes")),
     "at '': additional properties 'maxmemory' not allowed"),
], ids=["rabbitmq-top-level-typo", "rabbitmq-typo-three-levels-deep", "postgresql-typo-two-levels-deep",
        "postgresql-database-name", "redis-typo-one-level-deep", "redis-top-level-typo"])
def test_misspelt_values_are_rejected_by_the_schema(helm, eco2, tmp_path, chart, edit, helm_says):
    release, ns, path = eco2[1][chart]
    assert helm_says in schema_rejection(helm, REPO / "charts" / chart, release, ns, path, edit, tmp_path)


# ---------------------------------------------------------------- every case: shape and safety


def test_objects_are_exactly_the_release_set(r):
    kinds = ("ConfigMap", "NetworkPolicy", "PodDisruptionBudget", "PrometheusRule", "Service", "ServiceAccount",
             "ServiceMonitor", "StatefulSet")
    assert r.objects() == {(kind, r.release) for kind in kinds}
    for doc in r.docs:
        assert "namespace" not in doc["metadata"], "the release namespace applies"
        assert doc["metadata"]["labels"]["app.kubernetes.io/instance"] == r.release
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == r.values["partOf"]


def test_no_secret_is_rendered_and_credentials_are_only_secret_refs(r):
    assert "Secret" not in {d["kind"] for d in r.docs}
    refs = []
    for c in r.containers():
        for env in c.get("env", []):
            if "valueFrom" in env:
                ref = env["valueFrom"]["secretKeyRef"]
                refs.append((ref["name"], ref["key"]))
            else:  # a plain value must not look like a credential
                assert not re.search(r"PASS|SECRET|TOKEN|AUTH|USER", env["name"]), env
                assert "@" not in env["value"], env  # no user:password@host connection strings
    assert refs and {name for name, _ in refs} == {r.values["credentialsSecret"]}
    assert {key for _, key in refs} == SECRET_KEYS[r.chart]
    # Nothing in the output carries a password: no password settings, no hashes, no userinfo in URLs.
    text = r.text
    assert not re.search(r"(?im)^\s*(requirepass|masterauth|default_pass|default_user)\b", text)
    assert not re.search(r"://[^/\s\"]+:[^/\s\"]+@", text)
    for key, value in r.config.items():
        if key.endswith((".json", ".conf")):
            settings = [line for line in value.splitlines() if not line.lstrip().startswith("#")]
            assert not any(re.search(r"pass|secret", line, re.I) for line in settings), key


def test_pod_security_is_restricted_and_every_container_has_resources(r):
    uid, gid = IMAGE_USER[r.chart]
    spec = r.pod["spec"]
    sc = spec["securityContext"]
    assert (sc["runAsNonRoot"], sc["runAsUser"], sc["runAsGroup"], sc["fsGroup"]) == (True, uid, gid, gid)
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == r.release
    assert r.one("ServiceAccount")["automountServiceAccountToken"] is False
    for c in r.containers():
        csc = c["securityContext"]
        assert csc["allowPrivilegeEscalation"] is False and csc["capabilities"] == {"drop": ["ALL"]}, c["name"]
        assert csc["readOnlyRootFilesystem"] is True, c["name"]
        for kind in ("requests", "limits"):
            assert set(c["resources"][kind]) == {"cpu", "memory"}, (c["name"], kind)
        assert "@sha256:" in c["image"] or ":" in c["image"].rsplit("/", 1)[-1], c["image"]
    for c in r.containers(init=False):
        assert "livenessProbe" in c, c["name"]
    main = r.containers(init=False)[0]
    # Only the server gates the pod's readiness: an exporter that fails must not take it out of its Service.
    assert [c["name"] for c in r.containers(init=False) if "readinessProbe" in c] == [main["name"]]
    assert main["resources"] == r.values["resources"]
    if "exporter" in r.values:
        assert r.container("exporter")["resources"] == r.values["exporter"]["resources"]


def test_placement_is_the_values(r):
    spec = r.pod["spec"]
    assert spec["nodeSelector"] == r.values["placement"]["nodeSelector"]
    assert spec["tolerations"] == r.values["placement"]["tolerations"]


def test_one_replica_with_a_volume_claim_from_the_values(r):
    sts = r.one("StatefulSet")
    selector = sts["spec"]["selector"]["matchLabels"]
    assert sts["spec"]["replicas"] == 1
    assert selector == {"app.kubernetes.io/name": r.release, "app.kubernetes.io/instance": r.release}
    assert _selects(selector, r.pod["metadata"]["labels"])
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    # Immutable after creation: only the (immutable) selector labels, never the version.
    assert claim["metadata"]["labels"] == selector
    storage = r.values["storage"]
    assert claim["spec"] == {"storageClassName": storage["storageClass"], "accessModes": [storage["accessMode"]],
                             "volumeMode": "Filesystem", "resources": {"requests": {"storage": storage["size"]}}}
    main = r.containers(init=False)[0]
    assert claim["metadata"]["name"] in {m["name"] for m in main["volumeMounts"]}
    pdb = r.one("PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"] == selector and pdb["maxUnavailable"] == 0


def test_the_service_selects_the_pods_and_targets_container_ports(r):
    svc = r.one("Service")
    assert svc["spec"]["type"] == "ClusterIP"
    assert r.one("StatefulSet")["spec"]["serviceName"] == svc["metadata"]["name"] == r.release
    assert svc["spec"]["selector"] == r.one("StatefulSet")["spec"]["selector"]["matchLabels"]
    assert _selects(svc["spec"]["selector"], r.pod["metadata"]["labels"])
    container_ports = {p["name"]: p["containerPort"] for c in r.containers(init=False) for p in c.get("ports", [])}
    assert {p["name"] for p in svc["spec"]["ports"]} == {CLIENT_PORT_NAME[r.chart], "metrics"}
    for port in svc["spec"]["ports"]:
        target = port["targetPort"]
        assert target in container_ports or target in container_ports.values(), port
        assert container_ports.get(target, target) == port["port"], port
    # The ServiceMonitor scrapes exactly this Service, on a port it has.
    monitor = r.one("ServiceMonitor")["spec"]
    assert _selects(monitor["selector"]["matchLabels"], svc["metadata"]["labels"])
    assert monitor["selector"]["matchLabels"] == svc["spec"]["selector"]
    assert [e["port"] for e in monitor["endpoints"]] == ["metrics"]
    assert monitor["endpoints"][0]["interval"] == r.values["serviceMonitor"]["interval"]


def test_network_policy_allows_exactly_the_values_rules(r):
    spec = r.one("NetworkPolicy")["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/instance": r.release}}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    want = [{"from": rule["peers"], "ports": rule["ports"]} for rule in r.values["networkPolicy"]["ingress"]]
    assert spec["ingress"] == want
    # Clients reach the client port, Prometheus the metrics port, nothing else.
    svc_ports = {p["port"] for p in r.one("Service")["spec"]["ports"]}
    assert {p["port"] for rule in spec["ingress"] for p in rule["ports"]} <= svc_ports


def test_a_config_change_restarts_the_pod(r):
    assert re.fullmatch(r"[0-9a-f]{64}", r.pod["metadata"]["annotations"]["checksum/config"])


def test_alerts_wait_for_the_values_duration_and_match_the_scraped_job(r):
    rules = [rule for group in r.one("PrometheusRule")["spec"]["groups"] for rule in group["rules"]]
    assert rules and all(rule["for"] == r.values["alerts"]["for"] for rule in rules)
    scope = f'job="{r.release}", namespace="{r.namespace}"'
    down = next(rule for rule in rules if rule["alert"].endswith("Down"))
    assert f"absent(up{{{scope}}})" in down["expr"] and f"up{{{scope}}} == 0" in down["expr"]
    assert down["labels"]["severity"] == "critical"


# ---------------------------------------------------------------- rabbitmq


@pytest.fixture
def rabbit(renders) -> Render:
    return renders["rabbitmq-eco2"]


def test_rabbitmq_definitions_are_exactly_the_models_five_queues(rabbit):
    definitions = json.loads(rabbit.config["definitions.json"])
    assert set(definitions) == {"vhosts", "exchanges", "queues", "bindings"}  # no users, no passwords
    assert definitions == rabbit.values["definitions"]
    queues = {q["name"]: q["arguments"] for q in definitions["queues"]}
    assert set(queues) == {"q.fast", "q.bulk", "q.external", "q.sched", "q.dlq"}
    # The product decisions, spelled out (eco2-spec.md, "RabbitMQ: exchanges and the 5 queues").
    dlx = {"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "dlq"}
    assert queues["q.fast"] == {**dlx, "x-message-ttl": 60000, "x-max-length": 5000, "x-overflow": "reject-publish",
                                "x-max-priority": 10}
    assert queues["q.bulk"] == {**dlx, "x-message-ttl": 3600000, "x-max-length": 1000, "x-overflow": "reject-publish"}
    assert queues["q.external"] == {**dlx, "x-message-ttl": 300000, "x-max-length": 2000,
                                    "x-overflow": "reject-publish", "x-max-priority": 10}
    assert queues["q.sched"] == {**dlx, "x-message-ttl": 3600000, "x-max-length": 500}
    assert queues["q.dlq"] == {"x-max-length": 10000, "x-overflow": "drop-head"}
    assert {(e["name"], e["type"]) for e in definitions["exchanges"]} == {("tasks", "topic"), ("dlx", "direct")}
    bindings = {(b["source"], b["destination"], b["routing_key"]) for b in definitions["bindings"]}
    assert bindings == {("tasks", "q.fast", "*.high.*"), ("tasks", "q.bulk", "*.low.*"),
                        ("tasks", "q.external", "external.#"), ("tasks", "q.sched", "sched.#"), ("dlx", "q.dlq", "dlq")}
    assert all(b["destination_type"] == "queue" for b in definitions["bindings"])


def test_rabbitmq_config_loads_the_file_the_init_container_writes(rabbit):
    conf = dict(line.split(" = ", 1) for line in rabbit.config["rabbitmq.conf"].splitlines()
                if line and not line.startswith("#"))
    v = rabbit.values
    assert conf["listeners.tcp.default"] == str(v["amqpPort"])
    assert conf["management.tcp.port"] == str(v["managementPort"])
    assert conf["prometheus.tcp.port"] == str(v["metricsPort"])
    assert conf["prometheus.return_per_object_metrics"] == "true"
    assert conf["total_memory_available_override_value"] == str(2 * 2**30)  # the 2Gi limit
    assert rabbit.config["enabled_plugins"].strip() == "[rabbitmq_management,rabbitmq_prometheus]."
    init = rabbit.container("definitions")
    assert [c["name"] for c in rabbit.pod["spec"]["initContainers"]] == ["definitions"]
    assert init["image"] == rabbit.container("rabbitmq")["image"]
    written = init["args"][1]
    assert conf["load_definitions"] == written
    assert init["args"][2:] == [vh["name"] for vh in v["definitions"]["vhosts"]]
    # Both containers mount the same memory-backed emptyDir where the file lives.
    out_dir = written.rsplit("/", 1)[0]
    for c in (init, rabbit.container("rabbitmq")):
        mount = next(m for m in c["volumeMounts"] if m["mountPath"] == out_dir)
        volume = next(vol for vol in rabbit.pod["spec"]["volumes"] if vol["name"] == mount["name"])
        assert volume["emptyDir"]["medium"] == "Memory"
    assert {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in init["env"]} == \
        {"RABBITMQ_USERNAME": "username", "RABBITMQ_PASSWORD": "password"}
    assert "env" not in rabbit.container("rabbitmq")  # the broker itself never sees the password


def test_rabbitmq_init_script_adds_the_user_with_full_permissions(rabbit, tmp_path):
    """Runs the script from the ConfigMap as the init container would, with an awkward password."""
    (tmp_path / "write-definitions.sh").write_text(rabbit.config["write-definitions.sh"])
    (tmp_path / "definitions.json").write_text(rabbit.config["definitions.json"])
    password = 'p"a\\ss wörd$`x'
    out = tmp_path / "out" / "definitions.json"
    out.parent.mkdir()
    env = {"PATH": "/usr/bin:/bin", "RABBITMQ_USERNAME": "eco2", "RABBITMQ_PASSWORD": password}
    proc = subprocess.run(["bash", str(tmp_path / "write-definitions.sh"), str(tmp_path / "definitions.json"),
                           str(out), "/", "batch"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    written = json.loads(out.read_text())
    assert written["users"] == [{"name": "eco2", "password": password, "tags": ["administrator"]}]
    assert written["permissions"] == [{"user": "eco2", "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}
                                      for vhost in ("/", "batch")]
    assert {k: written[k] for k in ("vhosts", "exchanges", "queues", "bindings")} == rabbit.values["definitions"]
    assert out.stat().st_mode & 0o077 == 0
    # A trailing newline (a Secret made with `echo`) is refused with a message, not imported.
    proc = subprocess.run(["bash", str(tmp_path / "write-definitions.sh"), str(tmp_path / "definitions.json"),
                           str(out), "/"], env={**env, "RABBITMQ_PASSWORD": "pw\n"}, capture_output=True, text=True)
    assert proc.returncode != 0 and "control character" in proc.stderr


def test_rabbitmq_alerts_per_queue_with_its_own_threshold(rabbit):
    rules = rabbit.one("PrometheusRule")["spec"]["groups"][0]["rules"]
    ready = {rule["labels"]["queue"]: rule["expr"] for rule in rules if rule["alert"] == "RabbitMQQueueReadyHigh"}
    assert set(ready) == {"q.fast", "q.bulk", "q.external", "q.sched", "q.dlq"}
    for q in rabbit.values["alerts"]["queues"]:
        assert f'queue="{q["queue"]}"' in ready[q["queue"]]
        assert ready[q["queue"]].endswith(f"> {q['readyAbove']}")
    assert ready["q.dlq"].endswith("> 100") and ready["q.fast"].endswith("> 1000")


def test_rabbitmq_without_management_or_queues(renders):
    r = renders["rabbitmq-ci-no-queues"]
    assert "management" not in r.config["rabbitmq.conf"]
    assert "management" not in {p["name"] for p in r.container("rabbitmq")["ports"]}
    assert json.loads(r.config["definitions.json"])["queues"] == []
    assert r.container("definitions")["args"][2:] == ["/", "batch"]
    assert "total_memory_available_override_value = 1610612736" in r.config["rabbitmq.conf"]  # 1536Mi
    rules = r.one("PrometheusRule")["spec"]["groups"][0]["rules"]
    assert [rule["alert"] for rule in rules] == ["RabbitMQDown"]


def test_rabbitmq_needs_the_prometheus_plugin(helm, eco2, tmp_path):
    model, files = eco2
    release, ns, path = files["rabbitmq"]
    values = yaml.safe_load(path.read_text())
    values["plugins"] = ["rabbitmq_management"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(values))
    with pytest.raises(HelmError, match="plugins must include rabbitmq_prometheus"):
        helm.template(REPO / "charts" / "rabbitmq", release, ns, [bad], model.cluster.kubernetes_version, [])


# ---------------------------------------------------------------- postgresql


def _created_databases(sql: str) -> list[str]:
    match = re.search(r"unnest\(ARRAY\[(.*?)\]::text\[\]\)", sql)
    return re.findall(r"'([a-z_][a-z0-9_]*)'", match[1]) if match else []


@pytest.mark.parametrize("case", ["postgresql-eco2", "postgresql-ci-eco2", "postgresql-ci-single-database"])
def test_postgresql_init_script_creates_exactly_the_values_databases(renders, case):
    r = renders[case]
    sql = r.config["databases.sql"]
    assert _created_databases(sql) == r.values["databases"]
    assert "CREATE DATABASE %I" in sql and "WHERE NOT EXISTS" in sql and sql.rstrip().endswith("\\gexec")
    statements = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
    assert "DROP" not in statements.upper()


def test_postgresql_eco2_has_one_database_per_service_that_uses_it(renders):
    assert renders["postgresql-eco2"].values["databases"] == \
        ["auth", "chat_llm", "location", "recycle_info", "userinfo", "waste"]
    assert _created_databases(renders["postgresql-ci-single-database"].config["databases.sql"]) == ["waste"]


def test_postgresql_runs_the_script_at_init_and_on_every_start(renders):
    r = renders["postgresql-eco2"]
    pg = r.container("postgresql")
    volumes = {v["name"]: v for v in r.pod["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in pg["volumeMounts"]}
    # /docker-entrypoint-initdb.d holds databases.sql only: the entrypoint runs every *.sh/*.sql there.
    initdb = volumes[mounts["/docker-entrypoint-initdb.d"]]["configMap"]
    assert initdb["items"] == [{"key": "databases.sql", "path": "databases.sql"}]
    hook = pg["lifecycle"]["postStart"]["exec"]["command"]
    script_dir = hook[-1].rsplit("/", 1)[0]
    assert volumes[mounts[script_dir]]["configMap"]["items"] == [{"key": "ensure-databases.sh", "path": "ensure-databases.sh"}]
    script = r.config["ensure-databases.sh"]
    assert "--file /docker-entrypoint-initdb.d/databases.sql" in script and "--host 127.0.0.1" in script
    proc = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_postgresql_container_env_probes_and_exporter(renders):
    r = renders["postgresql-ci-single-database"]
    pg = r.container("postgresql")
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in pg["env"]}
    secret = r.values["credentialsSecret"]
    assert env["POSTGRES_USER"] == {"secretKeyRef": {"name": secret, "key": "username"}}
    assert env["POSTGRES_PASSWORD"] == {"secretKeyRef": {"name": secret, "key": "password"}}
    data_mount = next(m["mountPath"] for m in pg["volumeMounts"] if m["name"] == "data")
    assert env["PGDATA"].startswith(data_mount + "/") and env["PGDATA"] != data_mount
    assert env["PGPORT"] == str(r.values["port"]) == "5433"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert "pg_isready" in " ".join(pg[probe]["exec"]["command"]) and "--port 5433" in pg[probe]["exec"]["command"][-1]
    exporter = r.container("exporter")
    xenv = {e["name"]: e.get("value", e.get("valueFrom")) for e in exporter["env"]}
    # The DSN names the server only; the login goes through libpq's variables (see postgresql.exporterEnv).
    assert xenv == {"DATA_SOURCE_NAME": "postgresql://127.0.0.1:5433/postgres?sslmode=disable",
                    "PGUSER": {"secretKeyRef": {"name": secret, "key": "username"}},
                    "PGPASSWORD": {"secretKeyRef": {"name": secret, "key": "password"}}}
    assert exporter["args"] == ["--web.listen-address=:9188"]
    assert exporter["image"] == f"{r.values['exporter']['image']['repository']}:{r.values['exporter']['image']['tag']}"


def test_postgresql_down_alert_covers_the_exporter_view(renders):
    (rule,) = renders["postgresql-eco2"].one("PrometheusRule")["spec"]["groups"][0]["rules"]
    assert rule["alert"] == "PostgreSQLDown"
    assert rule["expr"].startswith('pg_up{job="postgresql", namespace="data"} == 0 or ')


# ---------------------------------------------------------------- redis


def _redis_conf(r: Render) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in r.config["redis.conf"].splitlines() if line and not line.startswith("#"))


@pytest.mark.parametrize("case, databases", [("redis-eco2", "5"), ("redis-ci-cache-only", "8")])
def test_redis_config_persists_and_caps_memory_from_the_values(renders, case, databases):
    r = renders[case]
    conf = _redis_conf(r)
    assert conf["appendonly"] == "yes"
    assert conf["maxmemory"] == str(r.values["maxmemoryBytes"])
    assert conf["maxmemory-policy"] == r.values["maxmemoryPolicy"]
    assert conf["databases"] == databases == str(max(r.values["databases"].values()) + 1)
    assert conf["dir"] == next(m["mountPath"] for m in r.container("redis")["volumeMounts"] if m["name"] == "data")
    assert "requirepass" not in r.config["redis.conf"]


def test_redis_eco2_maxmemory_is_1gi_below_the_2gi_limit(renders):
    r = renders["redis-eco2"]
    assert _redis_conf(r)["maxmemory"] == str(2**30)
    assert r.values["resources"]["limits"]["memory"] == "2Gi"


def test_redis_password_comes_from_the_secret_through_env_expansion(renders):
    r = renders["redis-eco2"]
    redis = r.container("redis")
    assert redis["args"][-2:] == ["--requirepass", "$(REDIS_PASSWORD)"]
    assert redis["args"][1] == next(m["mountPath"] for m in redis["volumeMounts"] if m["name"] == "config") + "/redis.conf"
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in redis["env"]}
    assert env == {name: {"name": "redis-credentials", "key": "password"} for name in ("REDIS_PASSWORD", "REDISCLI_AUTH")}
    assert "redis-cli -p 6379 ping" in redis["livenessProbe"]["exec"]["command"][-1]
    assert "PONG" in redis["readinessProbe"]["exec"]["command"][-1]
    exporter = {e["name"]: e.get("value", e.get("valueFrom")) for e in r.container("exporter")["env"]}
    assert exporter == {"REDIS_ADDR": "redis://127.0.0.1:6379",
                        "REDIS_PASSWORD": {"secretKeyRef": {"name": "redis-credentials", "key": "password"}}}


def test_redis_alerts_down_and_memory_near_maxmemory(renders):
    rules = {rule["alert"]: rule for rule in renders["redis-eco2"].one("PrometheusRule")["spec"]["groups"][0]["rules"]}
    assert set(rules) == {"RedisDown", "RedisMemoryNearMax"}
    assert rules["RedisDown"]["expr"].startswith('redis_up{job="redis", namespace="data"} == 0 or ')
    assert 'redis_memory_used_bytes{job="redis", namespace="data"} / redis_memory_max_bytes{job="redis", namespace="data"} > 0.9' \
        in rules["RedisMemoryNearMax"]["expr"]


def test_redis_refuses_a_maxmemory_at_or_above_the_limit(helm, eco2, tmp_path):
    model, files = eco2
    release, ns, path = files["redis"]
    values = yaml.safe_load(path.read_text())
    values["maxmemoryBytes"] = 2 * 2**30  # the 2Gi limit itself
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(values))
    with pytest.raises(HelmError, match="maxmemoryBytes 2147483648 must stay below the container memory limit 2Gi"):
        helm.template(REPO / "charts" / "redis", release, ns, [bad], model.cluster.kubernetes_version, [])
