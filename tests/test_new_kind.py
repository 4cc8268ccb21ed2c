"""What a new kind of component takes: one module under generator/kinds/, its line in the registry, and its chart.

On a copy of the generator package with exactly those two files changed, and a copy of the repository with the
chart added and the model using the kind, the real CLI renders, hydrates (helm) and validates everything: the kind's
Application, values and chart schema, its manifests, the connection settings and NetworkPolicy rules of a service
that depends on it, and the model's JSON schema. The chart is a copy of the redis chart under another name, so the
kind's values class is redis's: the point is the wiring, which no other module of the package was told about.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO, copy_repo, edit
from generator.upstream import upstream
from generator.upstream.crds import resolve_crd_dir

KIND_MODULE = '''"""memcached: a second cache, rendered by charts/memcached (tests/test_new_kind.py)."""

from __future__ import annotations

from typing import Any, Literal

from .base import INFRA, Kind, credentials, own_storage
from .redis import Redis, RedisValues, values as redis_values


class Memcached(Redis):
    type: Literal["memcached"]


def connection_env(host: str, m: Memcached, workload: Any) -> dict[str, str]:
    return {"MEMCACHED_HOST": host, "MEMCACHED_PORT": str(m.port)}


KIND = Kind(name="memcached", section=INFRA, model=Memcached, chart="memcached", values_model=RedisValues,
            values=redis_values, endpoint=lambda m: ((m.port,), (m.exporter.port,)), connection_env=connection_env,
            storages=own_storage, secrets=credentials("password"))
'''

ENTRY = """  memcached:
    type: memcached
    namespace: data
    placement: {node: k8s-redis}
    image: {repository: docker.io/library/redis, tag: 7.4.5-alpine}
    resources:
      requests: {cpu: 100m, memory: 256Mi}
      limits: {cpu: 500m, memory: 512Mi}
    storage: {size: 1Gi, storageClass: gp3}
    credentialsSecret: redis-credentials
    maxmemory: 256Mi
    maxmemoryPolicy: allkeys-lru
    databases: {sessions: 0}
    exporter:
      image: {repository: docker.io/oliver006/redis_exporter, tag: v1.74.0}
      port: 9121
      resources:
        requests: {cpu: 50m, memory: 64Mi}
        limits: {cpu: 100m, memory: 128Mi}
"""


def _package_with_the_kind(dest: Path) -> Path:
    pkg = dest / "generator"
    shutil.copytree(REPO / "generator", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    for lock in ("charts.lock", "schemas.lock"):  # the pins the package reads beside itself
        shutil.copyfile(REPO / lock, dest / lock)
    (pkg / "kinds" / "memcached.py").write_text(KIND_MODULE, encoding="utf-8")
    registry = pkg / "kinds" / "registry.py"
    edit(registry, "    postgresql, rabbitmq, redis,\n)", "    memcached, postgresql, rabbitmq, redis,\n)")
    edit(registry, "argo_rollouts, aws_load_balancer_controller, aws_ebs_csi_driver, metrics_server)",
         "argo_rollouts, aws_load_balancer_controller, aws_ebs_csi_driver, metrics_server, memcached)")
    return dest


def _changed(copy: Path) -> set[str]:
    """Files of the package copy that differ from the repository's (or are new)."""
    out = set()
    for path in (copy / "generator").rglob("*.py"):
        rel = path.relative_to(copy)
        if not (REPO / rel).is_file() or (REPO / rel).read_bytes() != path.read_bytes():
            out.add(rel.as_posix())
    return out


def test_a_new_kind_is_one_module_a_registry_line_and_its_chart(tmp_path):
    pkg = _package_with_the_kind(tmp_path / "pkg")
    assert _changed(pkg) == {"generator/kinds/memcached.py", "generator/kinds/registry.py"}

    root = copy_repo(tmp_path / "repo")
    chart = root / "charts" / "memcached"
    shutil.copytree(root / "charts" / "redis", chart, symlinks=True)
    (chart / "values.schema.json").unlink()  # render writes it, from the kind's values class
    edit(chart / "Chart.yaml", "name: redis\n", "name: memcached\n")
    edit(root / "values" / "infra.yaml", "  redis:\n    type: redis\n", ENTRY + "  redis:\n    type: redis\n")
    for overlay, entry in (("dev", "  redis:\n"), ("staging", "  redis: {")):  # where each overlay places redis
        edit(root / "values" / "environments" / f"{overlay}.yaml", entry, "  memcached: {placement: {node: k8s-data}}\n" + entry)
    edit(root / "values" / "services.yaml", "    dependsOn: [postgresql, redis]\n    delivery: {strategy: rolling}\n\n  userinfo",
         "    dependsOn: [postgresql, redis, memcached]\n    delivery: {strategy: rolling}\n\n  userinfo")

    cache = tmp_path / "cache"
    cache.mkdir()
    if (REPO / ".cache" / "tools").is_dir():
        (cache / "tools").symlink_to(REPO / ".cache" / "tools")  # the pinned helm, if this machine fetched it
    # The upstream charts and CRD schemas where the repository's own package finds them (the copy sits elsewhere).
    charts = next(d for _, d in upstream.chart_dirs(None, REPO) if d.is_dir())
    env = {**os.environ, "PYTHONPATH": str(pkg), "ECO2_CACHE": str(cache), upstream.CHARTS_ENV: str(charts),
           upstream.CRDS_ENV: str(resolve_crd_dir(None, REPO))}
    done = subprocess.run([sys.executable, "-m", "generator", "render", "--root", str(root), "--env", "prod"],
                          cwd=pkg, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{pkg}/generator" in subprocess.run(
        [sys.executable, "-c", "import generator; print(generator.__file__)"], cwd=pkg, env=env,
        capture_output=True, text=True).stdout  # the copy ran, not the repository's package

    rendered = root / "rendered" / "prod"
    app = yaml.safe_load((rendered / "apps" / "memcached.yaml").read_text())
    assert app["spec"]["source"]["path"] == "charts/memcached"
    assert app["spec"]["destination"]["namespace"] == "data"
    manifests = list(yaml.safe_load_all((rendered / "manifests" / "memcached.yaml").read_text()))
    kinds_named = {(d["kind"], d["metadata"]["name"]) for d in manifests if d}
    assert ("StatefulSet", "memcached") in kinds_named and ("NetworkPolicy", "memcached") in kinds_named
    policy = next(d for d in manifests if d and d["kind"] == "NetworkPolicy")
    assert any("auth" in json.dumps(rule) for rule in policy["spec"]["ingress"]), policy  # its one client may connect

    auth = yaml.safe_load((rendered / "values" / "auth.yaml").read_text())
    env_of_auth = {e["name"]: e["value"] for e in auth["env"]}
    assert env_of_auth["MEMCACHED_HOST"] == "memcached.data.svc.cluster.local"
    assert env_of_auth["MEMCACHED_PORT"] == "6379"
    assert any(rule.get("why") == "uses memcached" for rule in auth["networkPolicy"]["egress"])

    schema = json.loads((chart / "values.schema.json").read_text())
    assert "maxmemoryBytes" in schema["properties"]
    model_schema = (root / "schema" / "values.schema.json").read_text()
    assert '"memcached"' in model_schema
