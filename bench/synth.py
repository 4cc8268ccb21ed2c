"""Synthetic Eco² models with N API services, for the scale benchmark (bench/scale.py).

    python bench/synth.py N DEST            # writes DEST/values/ (a copy of values/, services and nodes replaced)

Starts from a copy of the repository's values/ and replaces `services` (values/services.yaml) and the API nodes
(values/cluster.yaml); the master, the worker and the infra nodes, the workers, infra, platform controllers and
everything else stay as they are. Service i's properties depend on i alone, so the model for N=100 is the first
100 services of the model for N=1000, and the output for a given N is byte-for-byte the same on every run.

The mix (i = 0 .. N-1):

| property | rule | share |
|---|---|---|
| canary (`delivery: {strategy: canary}`, path + nodePort on the ALB) | i % 4 == 0 | 1/4 |
| internal only (no path, no nodePort; rolling) | i % 8 == 3 | 1/8 |
| HPA (min 2, max 4; replicas 2) | i % 3 == 0 | 1/3 |
| "medium" size 200m/256Mi (limits 500m/512Mi), else 100m/128Mi (300m/256Mi) | i % 5 in (0, 3) | 2/5 |
| database `<name>` (adds a PostgreSQL database; depends on postgresql) | i % 2 == 0 | 1/2 |
| redis | i % 5 != 4 | 4/5 |
| rabbitmq (publishes Celery tasks: also depends on both workers, like `waste`) | i % 6 == 1 | 1/6 |
| internet egress + an external API key | i % 7 == 2 (kakao) / i % 7 == 5 (openai) | 2/7 |

Namespaces: `api` holds services 0..99, then one namespace per 100 services (`api-02`, `api-03`, ...), each
declared in platform.namespaces (restricted, default-deny) and added to every Secret declared in `api`.

Nodes are packed by the capacity rule generator/validate/capacity.py enforces after hydration: on each node the peak
requests of every pod placed on it (Deployment: replicas or HPA max + maxSurge; canary Rollout: twice replicas or
HPA max, the full second set at promotion), plus the DaemonSets every node runs (EBS CSI node plugin and
node-exporter: 80m / 184Mi measured, DAEMONSET_HEADROOM below keeps more), must fit in the node's capacity minus
the cluster's systemReserved. Services are placed in order, next-fit, on `k8s-api-NNN` nodes
(NODE_TYPE below); no existing node takes new load, so the master's and the infra nodes' load is unchanged.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MODELINE = "# yaml-language-server: $schema=../schema/values.schema.json\n"

# A c6a.2xlarge: 8 vCPU, 16 GiB (the packing is CPU-bound; memory ends up about 60 % used).
NODE_TYPE = {"instanceType": "c6a.2xlarge", "cpu": 8, "memory": "16Gi"}
NODE_CPU_M, NODE_MEMORY_MI = 8 * 1000, 16 * 1024
# Kept free per node for the DaemonSets (measured: ebs-csi-node 30m/120Mi + node-exporter 50m/64Mi).
DAEMONSET_HEADROOM = (150, 384)
FIRST_NODE_PORT = 30081  # the nodePort range is 30000-32767: 2,687 services behind the ALB at most from here
NAMESPACE_SIZE = 100

WORDS = ("auth", "user", "geo", "waste", "recycle", "chat", "billing", "catalog", "search", "notify", "media",
         "report", "reward", "point", "badge", "event", "feed", "route", "map", "photo")

SMALL = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "300m", "memory": "256Mi"}}
MEDIUM = {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}


def name_of(i: int) -> str:
    return f"{WORDS[i % len(WORDS)]}-{i:04d}"


def namespace_of(i: int) -> str:
    k = i // NAMESPACE_SIZE
    return "api" if k == 0 else f"api-{k + 1:02d}"


def service(i: int, node_port: int | None) -> dict:
    """Service i, without its placement."""
    name = name_of(i)
    canary = i % 4 == 0
    internal = not canary and i % 8 == 3
    size = MEDIUM if i % 5 in (0, 3) else SMALL
    svc: dict = {"image": {"repository": f"ghcr.io/eco2-team/{name}-api", "tag": "v0.6.0"}}
    if not internal:
        svc["path"] = f"/api/v1/{name}"
        svc["nodePort"] = node_port
    if namespace_of(i) != "api":
        svc["namespace"] = namespace_of(i)
    svc["placement"] = None  # filled in by pack()
    svc["replicas"] = 2
    if i % 3 == 0:
        svc["hpa"] = {"minReplicas": 2, "maxReplicas": 4, "targetCpuUtilization": 70}
    svc["resources"] = copy.deepcopy(size)
    deps: list[str] = []
    secret_env: dict = {}
    env: dict = {}
    if i % 2 == 0:
        svc["database"] = name.replace("-", "_")
        deps.append("postgresql")
        secret_env["DATABASE_USER"] = {"secret": "postgresql-credentials", "key": "username"}
        secret_env["DATABASE_PASSWORD"] = {"secret": "postgresql-credentials", "key": "password"}
    if i % 7 == 2:
        svc["internetEgress"] = True
        secret_env["KAKAO_API_KEY"] = {"secret": "kakao-api-key", "key": "api-key"}
    elif i % 7 == 5:
        svc["internetEgress"] = True
        secret_env["OPENAI_API_KEY"] = {"secret": "openai-api-key", "key": "api-key"}
    if i % 20 == 0:
        secret_env["JWT_SECRET_KEY"] = {"secret": "jwt-secret", "key": "secret-key"}
    if i % 5 != 4:
        deps.append("redis")
        secret_env["REDIS_PASSWORD"] = {"secret": "redis-credentials", "key": "password"}
    if i % 6 == 1:
        deps += ["rabbitmq", "storage-worker", "ai-worker"]
        env["CELERY_DEFAULT_EXCHANGE"] = "tasks"
        secret_env["RABBITMQ_USER"] = {"secret": "rabbitmq-credentials", "key": "username"}
        secret_env["RABBITMQ_PASSWORD"] = {"secret": "rabbitmq-credentials", "key": "password"}
    if env:
        svc["env"] = env
    if secret_env:
        svc["secretEnv"] = secret_env
    if deps:
        svc["dependsOn"] = deps
    svc["delivery"] = {"strategy": "canary" if canary else "rolling"}
    return svc


def _millis(cpu: str) -> int:
    return int(cpu[:-1]) if cpu.endswith("m") else int(float(cpu) * 1000)


def _mebibytes(memory: str) -> int:
    assert memory.endswith(("Mi", "Gi")), memory
    return int(memory[:-2]) * (1024 if memory.endswith("Gi") else 1)


def peak(svc: dict, max_surge: int) -> tuple[int, int]:
    """(millicores, MiB) the service's pods request at peak, as generator/validate/capacity.py counts them."""
    base = svc["hpa"]["maxReplicas"] if "hpa" in svc else svc["replicas"]
    pods = 2 * base if svc["delivery"]["strategy"] == "canary" else base + max_surge
    req = svc["resources"]["requests"]
    return pods * _millis(req["cpu"]), pods * _mebibytes(req["memory"])


def _reserve(cluster: dict) -> tuple[int, int]:
    r = cluster["systemReserved"]
    return _millis(r["cpu"]), _mebibytes(r["memory"])


def build(n: int, source: Path) -> dict[str, dict]:
    """The replaced sections: {file name: document} for cluster.yaml, services.yaml, platform.yaml, secrets.yaml."""
    docs = {f: yaml.safe_load((source / f).read_text(encoding="utf-8"))
            for f in ("cluster.yaml", "services.yaml", "platform.yaml", "secrets.yaml", "delivery.yaml")}
    surge = docs["delivery.yaml"]["delivery"]["rolling"]["maxSurge"]
    if not isinstance(surge, int):
        raise SystemExit(f"delivery.rolling.maxSurge {surge!r}: synth packs with an integer surge only")
    cluster = docs["cluster.yaml"]
    # One environment, prod's shape: the overlays (dev, staging) are written for Eco²'s own services and nodes.
    cluster.pop("environments", None)
    cluster["cluster"]["environment"] = "prod"
    old_api = {name for name, node in cluster["nodes"].items() if node["tier"] == "api"}
    nodes = {name: node for name, node in cluster["nodes"].items() if name not in old_api}
    reserve_cpu, reserve_mem = _reserve(cluster["cluster"])
    alloc_cpu = NODE_CPU_M - reserve_cpu - DAEMONSET_HEADROOM[0]
    alloc_mem = NODE_MEMORY_MI - reserve_mem - DAEMONSET_HEADROOM[1]

    services: dict[str, dict] = {}
    port = FIRST_NODE_PORT
    node_no, used_cpu, used_mem = 0, alloc_cpu + 1, 0  # forces a first node
    for i in range(n):
        name = name_of(i)
        assert name not in services and name not in nodes
        internal = i % 4 != 0 and i % 8 == 3
        svc = service(i, None if internal else port)
        if not internal:
            port += 1
        cpu, mem = peak(svc, surge)
        if cpu > alloc_cpu or mem > alloc_mem:
            raise SystemExit(f"{name}: peak {cpu}m/{mem}Mi does not fit one {NODE_TYPE['instanceType']}")
        if used_cpu + cpu > alloc_cpu or used_mem + mem > alloc_mem:  # next fit: open a new node
            node_no += 1
            used_cpu, used_mem = 0, 0
            node_name = f"k8s-api-{node_no:03d}"
            nodes[node_name] = {"tier": "api", **NODE_TYPE, "labels": {"workload": "api", "pool": f"api-{node_no:03d}"}}
        used_cpu += cpu
        used_mem += mem
        svc["placement"] = {"node": f"k8s-api-{node_no:03d}"}
        services[name] = svc
    if port - 1 > 32767:
        raise SystemExit(f"{n} services need nodePorts up to {port - 1}, past the 30000-32767 range")
    cluster["nodes"] = nodes
    docs["services.yaml"]["services"] = services

    namespaces = sorted({namespace_of(i) for i in range(n)} - {"api"})
    platform_ns = docs["platform.yaml"]["platform"]["namespaces"]
    for ns in namespaces:
        platform_ns[ns] = dict(platform_ns["api"])
    for secret in docs["secrets.yaml"]["secrets"].values():
        if "api" in secret["namespaces"]:
            secret["namespaces"] += namespaces
    del docs["delivery.yaml"]
    return docs


class _Dumper(yaml.SafeDumper):
    pass


def _flow_leaves(dumper: yaml.SafeDumper, data: dict):
    """Mappings of scalars in flow style ({cpu: 100m, memory: 128Mi}), like the hand-written values/."""
    flow = all(not isinstance(v, (dict, list)) for v in data.values()) and len(data) <= 4
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=flow)


def _flow_scalars(dumper: yaml.SafeDumper, data: list):
    """Lists of scalars in flow style ([postgresql, redis])."""
    flow = all(not isinstance(v, (dict, list)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(dict, _flow_leaves)
_Dumper.add_representer(list, _flow_scalars)


def dump(doc: dict, comment: str) -> str:
    return MODELINE + comment + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=200, allow_unicode=True)


def write(n: int, dest: Path, source: Path = REPO / "values") -> Path:
    """DEST/values: a copy of `source` with services, nodes (and the namespaces and Secrets they need) replaced."""
    values = dest / "values"
    if values.exists():
        shutil.rmtree(values)
    shutil.copytree(source, values, ignore=shutil.ignore_patterns("environments"))
    note = f"# Synthetic model from bench/synth.py with {n} API services; do not edit.\n"
    for name, doc in build(n, source).items():
        (values / name).write_text(dump(doc, note), encoding="utf-8")
    return values


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, help="number of API services")
    parser.add_argument("dest", type=Path, help="directory to write values/ into (created)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("n must be at least 1")
    values = write(args.n, args.dest)
    docs = build(args.n, REPO / "values")
    api_nodes = sum(1 for node in docs["cluster.yaml"]["nodes"].values() if node["tier"] == "api")
    print(f"{values}: {args.n} services on {api_nodes} API nodes "
          f"({len(docs['cluster.yaml']['nodes'])} nodes in all)", file=sys.stderr)


if __name__ == "__main__":
    main()
