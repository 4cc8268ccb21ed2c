"""Node capacity from the rendered pods: what every container of every pod the cluster will run requests, per node.

Counted from the hydrated objects, never from the model's own estimates, so sidecars, init containers,
exporters, DaemonSets, hook Jobs and the pods prometheus-operator makes from a Prometheus or Alertmanager
resource are all in, exactly as the charts render them. Pods are counted at their peak: HPA maximum plus
maxSurge for a Deployment, a full second set for a canary Rollout at promotion, one per node for a DaemonSet.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterator

from . import resolve
from .errors import Finding, format_loc
from .model import Model
from .objects import OPERATOR_PODS, Obj
from .quantity import cpu_millis, format_bytes, memory_bytes
from .references import fits


@dataclass(frozen=True)
class PodLoad:
    app: str | None
    what: str  # "Deployment api/waste"
    node: str
    pods: int  # at peak
    steady: int  # without surge, HPA growth or a canary's second set
    cpu: int  # millicores requested per pod
    memory: int  # bytes requested per pod
    why: str
    loc: tuple  # the model field that places the workload, () if none


def _requests(container: dict[str, Any]) -> tuple[int, int]:
    req = (container.get("resources") or {}).get("requests") or {}
    return (cpu_millis(str(req["cpu"])) if "cpu" in req else 0,
            memory_bytes(str(req["memory"])) if "memory" in req else 0)


def pod_requests(podspec: dict[str, Any]) -> tuple[int, int]:
    """The scheduler's effective request: the containers (and native sidecars) summed, or the largest init container."""
    cpu = mem = 0
    init_cpu = init_mem = 0
    for c in podspec.get("containers") or []:
        a, b = _requests(c)
        cpu, mem = cpu + a, mem + b
    for c in podspec.get("initContainers") or []:
        a, b = _requests(c)
        if c.get("restartPolicy") == "Always":  # a native sidecar runs beside the containers
            cpu, mem = cpu + a, mem + b
        else:
            init_cpu, init_mem = max(init_cpu, a), max(init_mem, b)
    return max(cpu, init_cpu), max(mem, init_mem)


def _surge(value: Any, replicas: int) -> int:
    return resolve.surge_pods(value if isinstance(value, int) else str(value), replicas)


def _peak(obj: Obj, hpas: dict[tuple[str, str, str], tuple[int, int]]) -> tuple[int, int, str]:
    """(peak pods, steady pods, why) of one workload."""
    spec = obj.doc.get("spec") or {}
    if obj.kind == "Pod":
        return 1, 1, "1 pod"
    if obj.kind in ("Job", "CronJob"):
        job = ((spec.get("jobTemplate") or {}).get("spec") or {}) if obj.kind == "CronJob" else spec
        n = int(job.get("parallelism", 1))
        return n, n, f"parallelism {n}"
    replicas = int(spec.get("replicas", 1))
    hpa = hpas.get((obj.kind, obj.namespace, obj.name))
    if hpa:  # the HPA owns replicas: its minimum at rest, its maximum at peak
        replicas, base, why = hpa[0], hpa[1], f"HPA max {hpa[1]}"
    else:
        base, why = replicas, f"{replicas} replicas"
    if obj.kind == "Rollout":
        return base * 2, replicas, f"{why} + {base} (canary: a full second set at promotion)"
    if obj.kind == "Deployment":
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            return base, replicas, f"{why}, Recreate"
        surge = _surge((strategy.get("rollingUpdate") or {}).get("maxSurge", "25%"), base)
        return base + surge, replicas, f"{why} + maxSurge {surge}"
    return base, replicas, f"{why} ({obj.kind}: no surge)"


def _reloader(objs: list[Obj], app: str | None) -> dict[str, Any]:
    """The config-reloader container the operator adds, with the requests its Deployment's flags give it."""
    req: dict[str, str] = {}
    for o in objs:
        pod = o.pod() if o.app == app and o.kind == "Deployment" else None
        for c in (pod[1].get("containers") or []) if pod else []:
            args = [str(a) for a in c.get("args") or []]
            if any(a.startswith("--prometheus-config-reloader=") for a in args):
                for a in args:
                    for flag, key in (("--config-reloader-cpu-request=", "cpu"), ("--config-reloader-memory-request=", "memory")):
                        if a.startswith(flag) and a[len(flag):] not in ("", "0"):
                            req[key] = a[len(flag):]
    return {"name": "config-reloader", "resources": {"requests": req}}


def loads(objs: list[Obj], model: Model) -> list[PodLoad]:
    comps = resolve.by_name(model)
    hpas = {}
    for h in objs:
        if h.kind == "HorizontalPodAutoscaler":
            spec = h.doc.get("spec") or {}
            ref = spec.get("scaleTargetRef") or {}
            hpas[(ref.get("kind"), h.namespace, ref.get("name"))] = (int(spec.get("minReplicas", 1)), int(spec.get("maxReplicas", 1)))
    out = []
    for obj in objs:
        pod = obj.pod()
        if pod is None:
            continue
        podspec = pod[1]
        if obj.kind in OPERATOR_PODS:
            # Both the sidecar and the init container get the reloader's requests; the init one never adds.
            podspec = {**podspec, "containers": [podspec["containers"][0], _reloader(objs, obj.app)]}
        cpu, mem = pod_requests(podspec)
        comp = comps.get(obj.app or "")
        placement = getattr(comp.spec, "placement", None) if comp else None
        loc = comp.loc + ("placement", "node") if placement is not None else (comp.loc if comp else ())
        nodes = fits(model, podspec)
        if obj.kind == "DaemonSet":
            for node in nodes:
                out.append(PodLoad(obj.app, f"{obj.kind} {obj.namespace}/{obj.name}", node, 1, 1, cpu, mem,
                                   "1 per node (DaemonSet)", loc))
            continue
        if not nodes:
            continue  # reported by ref.placement
        node = placement.node if placement is not None and placement.node in nodes else nodes[0]
        peak, steady, why = _peak(obj, hpas)
        out.append(PodLoad(obj.app, f"{obj.kind} {obj.namespace}/{obj.name}", node, peak, steady, cpu, mem, why, loc))
    return out


def _free(model: Model, name: str) -> tuple[int, int]:
    node = model.nodes[name]
    reserve = node.system_reserved or model.cluster.system_reserved
    return node.cpu * 1000 - cpu_millis(reserve.cpu), memory_bytes(node.memory) - memory_bytes(reserve.memory)


def table(objs: list[Obj], model: Model) -> list[dict[str, Any]]:
    """Per node: what is left after the system reserve, requests at steady state and at peak, and the pods."""
    per_node: dict[str, list[PodLoad]] = defaultdict(list)
    for load in loads(objs, model):
        per_node[load.node].append(load)
    rows = []
    for name in model.nodes:
        cpu_free, mem_free = _free(model, name)
        ls = per_node.get(name, [])
        rows.append({"node": name, "cpu_free": cpu_free, "memory_free": mem_free,
                     "cpu_steady": sum(l.steady * l.cpu for l in ls), "memory_steady": sum(l.steady * l.memory for l in ls),
                     "cpu_peak": sum(l.pods * l.cpu for l in ls), "memory_peak": sum(l.pods * l.memory for l in ls),
                     "loads": ls})
    return rows


def _part(load: PodLoad, per_pod: int, unit: str) -> str:
    amount = f"{per_pod}m" if unit == "cpu" else format_bytes(per_pod)
    placed = f"; placed by {format_loc(load.loc)}" if load.loc else ""
    return f"{load.what} {load.pods}×{amount} ({load.why}{placed})"


def findings(objs: list[Obj], model: Model) -> Iterator[Finding]:
    """A node whose peak requests plus its system reserve exceed it, with every contribution, largest first."""
    for row in table(objs, model):
        name, ls = row["node"], row["loads"]
        reserve = model.nodes[name].system_reserved or model.cluster.system_reserved
        if row["cpu_peak"] > row["cpu_free"]:
            parts = "; ".join(_part(l, l.cpu, "cpu") for l in sorted(ls, key=lambda l: -l.pods * l.cpu) if l.cpu)
            yield Finding(("nodes", name, "cpu"), f"peak CPU requests {row['cpu_peak']}m of the rendered pods exceed the "
                                                  f"{row['cpu_free']}m left after the system reserve of {reserve.cpu}: {parts}")
        if row["memory_peak"] > row["memory_free"]:
            parts = "; ".join(_part(l, l.memory, "memory") for l in sorted(ls, key=lambda l: -l.pods * l.memory) if l.memory)
            yield Finding(("nodes", name, "memory"), f"peak memory requests {format_bytes(row['memory_peak'])} of the rendered "
                                                     f"pods exceed the {format_bytes(row['memory_free'])} left after the "
                                                     f"system reserve of {reserve.memory}: {parts}")

