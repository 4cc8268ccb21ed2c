"""The topology and capacity page of each environment (rendered/<env>/README.md) and the `capacity` command.

Oracles: the real Mermaid parser (npm `mermaid`, pinned in tools/mermaid/), the raw dependsOn entries of values/, and
an independent sum over the committed pod specs and Node objects written here from the Kubernetes scheduling rules,
not from capacity.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run_cli
from generator.model import environments

ENVS = ("dev", "staging", "prod")
PAGES = [REPO / "rendered" / env / "README.md" for env in ENVS]


@pytest.fixture(scope="session")
def mermaid() -> Path:
    """The pinned Mermaid parser in .cache/mermaid (installed on first use; CI must have it, elsewhere it may skip)."""
    if not (shutil.which("node") and shutil.which("npm")):
        if os.environ.get("CI") == "true":
            pytest.fail("node and npm are needed for the Mermaid parser (tools/mermaid/install.sh)")
        pytest.skip("node and npm are needed for the Mermaid parser")
    proc = subprocess.run(["bash", str(REPO / "tools/mermaid/install.sh")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip())


def parse(mermaid: Path, *files: Path) -> tuple[int, list[dict]]:
    proc = subprocess.run(["node", str(mermaid / "parse.mjs"), *map(str, files)], capture_output=True, text=True,
                          timeout=120)
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()]


def graph(page: Path) -> str:
    text = page.read_text(encoding="utf-8")
    return re.search(r"^```mermaid\n(.*?)^```$", text, re.S | re.M)[1]


def test_every_page_parses_with_the_real_mermaid_parser(mermaid: Path, tmp_path: Path):
    code, results = parse(mermaid, *PAGES)
    assert code == 0 and [(r["ok"], r.get("type")) for r in results] == [(True, "flowchart-v2")] * 3, results
    # the oracle can fail: the same page with a broken arrow does not parse, and one without a graph is reported
    broken = tmp_path / "broken.md"
    broken.write_text(PAGES[-1].read_text(encoding="utf-8").replace(" -.-> ", ' -.-> "', 1), encoding="utf-8")
    empty = tmp_path / "empty.md"
    empty.write_text("# no graph\n", encoding="utf-8")
    code, results = parse(mermaid, broken, empty)
    assert code == 1 and [r["ok"] for r in results] == [False, False], results
    assert results[0]["error"].startswith("Parse error") and results[1]["error"] == "no mermaid block"


def test_the_graph_shows_every_component_once_and_every_declared_dependency_as_a_solid_arrow():
    """Against the raw model files: every component name is one box; solid arrows are exactly the dependsOn entries."""
    raw = {}
    for path in sorted((REPO / "values").glob("*.yaml")):
        raw.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    declared = {(dep, name) for section in ("services", "workers", "infra") for name, spec in raw[section].items()
                for dep in spec.get("dependsOn", [])}
    declared |= {(dep, name) for name, spec in raw["platform"]["controllers"].items() for dep in spec.get("dependsOn", [])}
    text = graph(REPO / "rendered" / "prod" / "README.md")
    boxes = dict(re.findall(r'^\s+(c\d+)\["([^<"]+)<br/>', text, re.M))
    names = sorted(raw["services"]) + sorted(raw["workers"]) + sorted(raw["infra"]) + sorted(raw["platform"]["controllers"])
    assert sorted(boxes.values()) == sorted(names + [raw["platform"]["app"]])
    solid = {(boxes[a], boxes[b]) for a, b in re.findall(r"^\s+(c\d+) --> (c\d+)$", text, re.M)}
    assert solid == declared and declared
    # each wave's subgraph holds boxes: "wave 0" first, holding the platform app alone
    first = re.search(r'subgraph w0\["wave 0"\]\n(.*?)\n\s+end', text, re.S)[1]
    assert [boxes[i] for i in re.findall(r"(c\d+)\[", first)] == [raw["platform"]["app"]]


# ---------------------------------------------------------------- the capacity numbers, summed independently


def _cpu(q) -> int:
    q = str(q)
    return int(q[:-1]) if q.endswith("m") else int(float(q) * 1000)


UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}


def _mem(q) -> int:
    q = str(q)
    for unit, factor in UNITS.items():
        if q.endswith(unit):
            return int(float(q[: -len(unit)]) * factor)
    return int(q)


def _requests(containers) -> tuple[int, int]:
    cpu = mem = 0
    for c in containers or []:
        r = (c.get("resources") or {}).get("requests") or {}
        cpu += _cpu(r.get("cpu", "0m"))
        mem += _mem(r.get("memory", "0"))
    return cpu, mem


def _pod(spec) -> tuple[int, int]:
    """Effective requests: the sum of the containers (plus restartable init containers), or the largest plain init
    container if that is more (https://kubernetes.io/docs/concepts/workloads/pods/init-containers/#resource-sharing-within-containers)."""
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    plain = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") != "Always"]
    cpu, mem = _requests(spec.get("containers"))
    scpu, smem = _requests(sidecars)
    icpu = max((_requests([c])[0] for c in plain), default=0)
    imem = max((_requests([c])[1] for c in plain), default=0)
    return max(cpu + scpu, icpu + scpu), max(mem + smem, imem + smem)


def _schedulable(spec, node) -> bool:
    # the labels every kubelet adds to its Node (https://kubernetes.io/docs/reference/labels-annotations-taints/);
    # Eco²'s instance types (t3, t3a, m5) are all x86-64
    labels = {"kubernetes.io/hostname": node["metadata"]["name"], "kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64", **node["metadata"]["labels"]}
    selector = spec.get("nodeSelector") or {}
    if any(labels.get(k) != str(v) for k, v in selector.items()):
        return False
    tolerations = spec.get("tolerations") or []
    for taint in node["spec"]["taints"]:
        if taint["effect"] not in ("NoSchedule", "NoExecute"):
            continue
        if not any(t.get("operator") == "Exists" and t.get("key") in (None, taint["key"]) or
                   t.get("key") == taint["key"] and str(t.get("value", "")) == str(taint.get("value", ""))
                   for t in tolerations if t.get("effect") in (None, taint["effect"])):
            return False
    return True


def independent_steady(env: str) -> tuple[dict[str, tuple[int, int]], set[str]]:
    """(node -> steady cpu, memory) from the committed pod specs; and the nodes holding pods prometheus-operator
    makes (their requests come from the operator's defaults, which this sum does not model)."""
    nodes = yaml.safe_load_all((REPO / "rendered" / env / "nodes.yaml").read_text())
    nodes = [n for n in nodes if n]
    total = {n["metadata"]["name"]: [0, 0] for n in nodes}
    operator_nodes: set[str] = set()
    docs = [d for p in sorted((REPO / "rendered" / env / "manifests").glob("*.yaml"))
            for d in yaml.safe_load_all(p.read_text()) if d]
    # A workload an HPA scales and that leaves spec.replicas out runs the HPA's minReplicas at rest.
    hpa_min = {(d["metadata"].get("namespace"), d["spec"]["scaleTargetRef"]["kind"], d["spec"]["scaleTargetRef"]["name"]):
               d["spec"].get("minReplicas", 1) for d in docs if d.get("kind") == "HorizontalPodAutoscaler"}
    for doc in docs:
        kind, spec, name = doc.get("kind"), doc.get("spec") or {}, doc["metadata"]["name"]
        if kind in ("Prometheus", "Alertmanager"):
            operator_nodes |= {n["metadata"]["name"] for n in nodes if _schedulable(spec, n)}
            continue
        if kind not in ("Deployment", "StatefulSet", "Rollout", "DaemonSet"):
            continue
        pod = spec["template"]["spec"]
        fit = [n["metadata"]["name"] for n in nodes if _schedulable(pod, n)]
        cpu, mem = _pod(pod)
        if kind == "DaemonSet":
            for node in fit:
                total[node][0] += cpu
                total[node][1] += mem
            continue
        assert len(fit) == 1, (kind, name, fit)  # every Eco² workload is pinned to one node
        replicas = spec["replicas"] if "replicas" in spec else hpa_min.get((doc["metadata"].get("namespace"), kind, name), 1)
        total[fit[0]][0] += replicas * cpu
        total[fit[0]][1] += replicas * mem
    return {k: (v[0], v[1]) for k, v in total.items()}, operator_nodes


def _parse_table(lines: list[str]) -> dict[str, dict[str, str]]:
    header = re.split(r"\s{2,}", lines[0].strip())
    return {cells[0]: dict(zip(header, cells)) for cells in (re.split(r"\s{2,}", l.strip()) for l in lines[1:])}


def _bytes(text: str) -> int:
    return _mem(text)


@pytest.mark.parametrize("env", ENVS)
def test_the_capacity_tables_steady_requests_equal_an_independent_sum_over_the_pod_specs(env: str):
    result = run_cli("capacity", "--env", env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{env}:"
    table = _parse_table([l[2:] for l in lines[1:]])
    expected, operator_nodes = independent_steady(env)
    assert sorted(table) == sorted(expected)
    compared = [n for n in expected if n not in operator_nodes]
    assert len(compared) == len(expected) - 1  # all but the monitoring node, where Prometheus and Alertmanager run
    for node in compared:
        cpu, mem = expected[node]
        assert (table[node]["CPU steady"], _bytes(table[node]["memory steady"])) == (f"{cpu}m", mem), node
    # the page shows the same table
    page = (REPO / "rendered" / env / "README.md").read_text(encoding="utf-8")
    for node in compared:
        row = next(l for l in page.splitlines() if l.startswith(f"| {node} |"))
        assert row.split(" | ")[2] == table[node]["CPU steady"]


def test_capacity_refuses_an_unknown_environment_and_a_tree_without_manifests(tmp_path: Path):
    result = run_cli("capacity", "--env", "qa")
    assert result.returncode == 2 and "no environment 'qa': the model has dev, staging, prod" in result.stderr
    root = tmp_path / "repo"
    shutil.copytree(REPO / "values", root / "values")
    result = run_cli("capacity", "--root", str(root))
    assert result.returncode == 2 and "rendered/dev/manifests/*.yaml not found: run `make render` first" in result.stderr


def test_headroom_is_allocatable_minus_peak_and_goes_negative_when_over():
    """On a model made to overflow: the table says by how much, before the capacity check's error."""
    from generator.render import overview
    from generator.validate.objects import Obj

    envs = environments.load(REPO / "values")
    model = envs["prod"].model
    pod = {"containers": [{"name": "x", "resources": {"requests": {"cpu": "1", "memory": "4Gi"}}}],
           "nodeSelector": dict(model.nodes["k8s-api-auth"].labels)}
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "big", "namespace": "api"},
           "spec": {"replicas": 2, "strategy": {"rollingUpdate": {"maxSurge": 0}}, "template": {"spec": pod}}}
    rows = {r["node"]: r for r in overview.rows([Obj("rendered/prod/manifests/auth.yaml", 0, doc, "auth", "api")], model)}
    auth = rows["k8s-api-auth"]
    assert auth["cpu_peak"] == 2000 and auth["cpu_headroom"] == auth["cpu_allocatable"] - 2000 < 0
    line = next(l for l in overview.text_table([Obj("rendered/prod/manifests/auth.yaml", 0, doc, "auth", "api")], model)
                if l.startswith("k8s-api-auth "))
    assert f"{auth['cpu_headroom']}m (" in line and "-" in line.split("(")[0]


def test_the_diff_shows_headroom_before_and_after_for_the_nodes_a_change_reaches(tmp_path: Path, monkeypatch):
    """waste's CPU request +5m: its node loses 5m per pod at peak. Peak pods from the model's own numbers: prod and
    staging run waste canary with HPA max 4 (4 + a full second set of 4), dev rolling with one replica (1 + surge 1)."""
    from conftest import edit

    monkeypatch.setenv("ECO2_CACHE", str(REPO / ".cache"))
    root = tmp_path / "repo"
    for top in ("values", "charts", "rendered", "argocd", "schema"):
        shutil.copytree(REPO / top, root / top, symlinks=True)
    for name in ("charts.lock", "schemas.lock"):
        shutil.copy(REPO / name, root / name)
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(git + args, check=True)
    edit(root / "values/services.yaml", "requests: {cpu: 200m, memory: 256Mi}", "requests: {cpu: 205m, memory: 256Mi}")
    raw = yaml.safe_load((root / "values/services.yaml").read_text())["services"]["waste"]
    assert raw["hpa"]["maxReplicas"] == 4 and raw["delivery"]["strategy"] == "canary"
    render = run_cli("render", "--root", str(root))
    assert render.returncode == 0, render.stderr
    result = run_cli("diff", "--base", "HEAD", "--root", str(root))
    assert result.returncode == 0, result.stderr
    lines = [l for l in result.stdout.splitlines() if l.startswith("capacity: ")]
    found = {}
    for line in lines:
        m = re.fullmatch(r"capacity: (\S+): CPU headroom (-?\d+)m \(\d+%\) → (-?\d+)m \(\d+%\)", line)
        assert m, line
        found[m[1]] = int(m[3]) - int(m[2])
    assert found == {"prod/k8s-api-waste": -5 * 8, "staging/k8s-api-canary": -5 * 8, "dev/k8s-apps": -5 * 2}, lines
