"""Node capacity from the rendered pods: what every container of every pod the cluster will run requests, per node.

Counted from the hydrated objects, never from the model's own estimates, so sidecars, init containers,
exporters, DaemonSets, hook Jobs and the pods prometheus-operator makes from a Prometheus or Alertmanager
resource are all in, exactly as the charts render them. Pods are counted at their peak: HPA maximum plus
maxSurge for a Deployment, a full second set for a canary (or blue-green) Rollout at promotion, one per node
for a DaemonSet. Pure functions, no I/O: validation feeds in the objects and reports the findings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

from pydantic import BaseModel

from ..errors import Finding, format_loc
from ..model.model import Model, Node, Resources, Taint, Toleration
from ..plan import resolve
from ..quantity import cpu_millis, format_bytes, kubernetes_quantity, memory_bytes
from .objects import Obj


@dataclass(frozen=True)
class PodLoad:
    """One workload's pods on one node: how many at peak, and what each requests."""

    app: str | None
    what: str  # "Deployment api/waste"
    node: str
    pods: int  # at peak
    cpu: int  # millicores requested per pod
    memory: int  # bytes requested per pod
    why: str  # how the peak count was reached: "HPA max 4 + canary 4 (full second set at promotion)"
    loc: tuple  # the model field that places the workload, () if its app is not a component
    source: str  # the rendered file of the object (Obj.source)
    index: int  # its document index in that file (Obj.index)
    steady: int | None = None  # pods at rest (replicas, no surge, HPA growth or canary); None: same as pods
    cpu_from: tuple[tuple, ...] = ()  # the model's requests fields whose sum is `cpu` (none when they do not add up)
    memory_from: tuple[tuple, ...] = ()

    @property
    def steady_pods(self) -> int:
        return self.pods if self.steady is None else self.steady


# ---------------------------------------------------------------- requests


def _amount(value: Any, strict, scale: int) -> int:
    """A quantity by the model's own parser, else the API server's wider syntax ("1.5Gi", "1e3", sub-milli units,
    which charts render; finer amounts round up, as it does); unreadable: 0 (schema validation reports it)."""
    text = str(value).strip()
    try:
        return strict(text)
    except ValueError:
        try:
            return math.ceil(kubernetes_quantity(text) * scale)
        except ValueError:
            return 0


def _cpu(value: Any) -> int:
    """Millicores."""
    return _amount(value, cpu_millis, 1000)


def _memory(value: Any) -> int:
    """Bytes."""
    return _amount(value, memory_bytes, 1)


def container_requests(container: dict[str, Any]) -> tuple[int, int]:
    """(millicores, bytes) one container requests; a resource it does not request counts 0 (policy reports that)."""
    req = ((container.get("resources") or {}).get("requests")) or {}
    return (_cpu(req["cpu"]) if req.get("cpu") is not None else 0,
            _memory(req["memory"]) if req.get("memory") is not None else 0)


def pod_requests(podspec: dict[str, Any]) -> tuple[int, int]:
    """The scheduler's effective request of a pod, per resource (k8s.io/component-helpers resource.PodRequests):

    max(sum of the containers + every native sidecar, the largest of each init container plus the sidecars
    started before it), plus the pod's RuntimeClass overhead. A native sidecar is an init container with
    restartPolicy: Always; it keeps running beside the containers, so it adds, where a plain init container
    only has to fit on its own.
    """
    out = []
    for resource in (0, 1):
        sidecars = 0
        init_peak = 0
        for c in podspec.get("initContainers") or []:
            amount = container_requests(c)[resource]
            if c.get("restartPolicy") == "Always":
                sidecars += amount
                init_peak = max(init_peak, sidecars)
            else:
                init_peak = max(init_peak, sidecars + amount)
        regular = sum(container_requests(c)[resource] for c in podspec.get("containers") or [])
        out.append(max(regular + sidecars, init_peak))
    overhead = podspec.get("overhead") or {}
    cpu = out[0] + (_cpu(overhead["cpu"]) if overhead.get("cpu") is not None else 0)
    memory = out[1] + (_memory(overhead["memory"]) if overhead.get("memory") is not None else 0)
    return cpu, memory


# ---------------------------------------------------------------- where a pod can run


def node_labels(name: str, node: Node) -> dict[str, str]:
    """The labels the scheduler sees: the model's, plus kubernetes.io/hostname, os and arch unless it sets them."""
    return resolve.node_labels(name, node)


def _expression(expr: dict[str, Any], labels: dict[str, str]) -> bool:
    key, op = expr.get("key"), expr.get("operator")
    values = [str(v) for v in expr.get("values") or []]
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and key in labels and len(values) == 1:
        try:
            have, bound = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def _term(term: dict[str, Any], name: str, labels: dict[str, str]) -> bool:
    """One nodeSelectorTerm: all its expressions (labels) and fields (metadata.name); an empty term matches nothing."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    return (all(_expression(e, labels) for e in exprs)
            and all(_expression(f, {"metadata.name": name}) for f in fields))


def _affinity(podspec: dict[str, Any], name: str, labels: dict[str, str]) -> bool:
    required = ((((podspec.get("affinity") or {}).get("nodeAffinity") or {})
                 .get("requiredDuringSchedulingIgnoredDuringExecution")) or {})
    terms = required.get("nodeSelectorTerms")
    if not required or terms is None:
        return True
    return any(_term(t or {}, name, labels) for t in terms)


def _toleration(t: dict[str, Any]) -> Toleration:
    """A pod's toleration as the model's Toleration (only the fields that decide; tolerationSeconds does not)."""
    value = t.get("value")
    return Toleration.model_construct(key=t.get("key") or None, operator=t.get("operator") or "Equal",
                                      value=None if value is None else str(value), effect=t.get("effect") or None)


def tolerates(tolerations: list[dict[str, Any]], taint: Taint) -> bool:
    return any(_toleration(t).tolerates(taint) for t in tolerations if isinstance(t, dict))


def fits(model: Model, podspec: dict[str, Any], seen: dict[str, list[str]] | None = None) -> list[str]:
    """The model's nodes (alphabetically) a pod with this spec can be scheduled on: its node selector matches
    the node's labels, a required node affinity term matches, and it tolerates every NoSchedule/NoExecute taint.
    `seen`: answers for this model so far, by the three fields that decide (a thousand pods share a few dozen)."""
    if seen is not None:
        key = repr((podspec.get("nodeSelector"), podspec.get("affinity"), podspec.get("tolerations")))
        if key not in seen:
            seen[key] = fits(model, podspec)
        return list(seen[key])
    selector = podspec.get("nodeSelector") or {}
    tolerations = podspec.get("tolerations") or []
    out = []
    for name in sorted(model.nodes):
        node = model.nodes[name]
        labels = node_labels(name, node)
        if (all(k in labels and labels[k] == str(v) for k, v in selector.items())
                and _affinity(podspec, name, labels)
                and all(tolerates(tolerations, t) for t in node.taints if t.effect in ("NoSchedule", "NoExecute"))):
            out.append(name)
    return out


# ---------------------------------------------------------------- pods prometheus-operator makes

# prometheus-operator's own defaults for the config-reloader sidecar and init container when its Deployment
# passes no --config-reloader-cpu-request / --config-reloader-memory-request: cmd/operator/main.go declares
# `defaultReloaderCPU = "10m"` and `defaultReloaderMemory = "50Mi"` and hands them to
# operator.DefaultConfig(defaultReloaderCPU, defaultReloaderMemory) (github.com/prometheus-operator/
# prometheus-operator, cmd/operator/main.go at 004fb32f and earlier releases alike). A flag value of "0"
# means no request at all.
RELOADER_DEFAULTS = {"cpu": "10m", "memory": "50Mi"}
_RELOADER_FLAGS = {"cpu": "--config-reloader-cpu-request", "memory": "--config-reloader-memory-request"}
_MAIN = {"Prometheus": "prometheus", "Alertmanager": "alertmanager"}
OPERATOR_KINDS = tuple(_MAIN)


def _flag(args: list[str], flag: str) -> str | None:
    """The value of a Go flag given as --flag=value or --flag value (single dash too)."""
    names = (flag, flag[1:])
    for i, arg in enumerate(args):
        for name in names:
            if arg.startswith(name + "="):
                return arg[len(name) + 1:]
            if arg == name and i + 1 < len(args):
                return args[i + 1]
    return None


def reloader_requests(objs: Iterable[Obj], app: str | None) -> dict[str, str]:
    """The requests prometheus-operator gives its config-reloader containers: from the flags of the operator
    Deployment of the same app (the container whose args set --prometheus-config-reloader=), else its defaults."""
    for o in objs:
        if o.kind != "Deployment" or o.app != app:
            continue
        pod = o.pod()
        for c in (pod[1].get("containers") or []) if pod else []:
            args = [str(a) for a in c.get("args") or []]
            if _flag(args, "--prometheus-config-reloader") is None:
                continue
            out = {}
            for resource, flag in _RELOADER_FLAGS.items():
                value = _flag(args, flag)
                value = RELOADER_DEFAULTS[resource] if value is None else value.strip()
                if value not in ("", "0"):
                    out[resource] = value
            return out
    return dict(RELOADER_DEFAULTS)


def _merge(base: list[dict[str, Any]], overrides: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """spec.containers / spec.initContainers of the custom resource, strategic-merged by name onto what the
    operator generates (requests merged key by key); containers it does not generate are added."""
    out = [dict(c) for c in base]
    for extra in overrides or []:
        if not isinstance(extra, dict):
            continue
        same = next((c for c in out if c.get("name") == extra.get("name")), None)
        if same is None:
            out.append(extra)
            continue
        resources = dict(same.get("resources") or {})
        for key, value in (extra.get("resources") or {}).items():
            resources[key] = {**(resources.get(key) or {}), **(value or {})} if isinstance(value, dict) else value
        same.update({k: v for k, v in extra.items() if k != "resources"}, resources=resources)
    return out


def operator_podspec(obj: Obj, reloader: dict[str, str]) -> dict[str, Any]:
    """The pod prometheus-operator creates from a Prometheus or Alertmanager: the main container with the
    resource's spec.resources, the config-reloader sidecar and the init-config-reloader init container (both
    with the operator's reloader requests), a Thanos sidecar if asked for, then the resource's own overrides."""
    spec = obj.doc.get("spec") or {}
    reloads = {"requests": dict(reloader)}
    containers = [{"name": _MAIN[obj.kind], "resources": spec.get("resources") or {}},
                  {"name": "config-reloader", "resources": reloads}]
    if obj.kind == "Prometheus" and isinstance(spec.get("thanos"), dict):
        containers.append({"name": "thanos-sidecar", "resources": spec["thanos"].get("resources") or {}})
    init = [{"name": "init-config-reloader", "resources": reloads}]
    podspec = {k: spec[k] for k in ("nodeSelector", "tolerations", "affinity") if k in spec}
    podspec["containers"] = _merge(containers, spec.get("containers") or [])
    podspec["initContainers"] = _merge(init, spec.get("initContainers") or [])
    return podspec


# ---------------------------------------------------------------- how many pods


def _int(value: Any, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _surge(value: Any, pods: int) -> int:
    """maxSurge as pods: an int, or a percentage of `pods` rounded up (as the Deployment controller does)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    text = str(value).strip()
    if text.endswith("%"):
        return resolve.surge_pods(text, pods) if text[:-1].isdigit() else 0
    return _int(text, 0)


def _hpas(objs: Iterable[Obj]) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(namespace, target kind, target name) -> (minReplicas, maxReplicas) of every HorizontalPodAutoscaler."""
    out = {}
    for h in objs:
        if h.kind != "HorizontalPodAutoscaler":
            continue
        spec = h.doc.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        out[(h.namespace, str(ref.get("kind")), str(ref.get("name")))] = (
            _int(spec.get("minReplicas"), 1), _int(spec.get("maxReplicas"), 1))
    return out


def peak(obj: Obj, hpas: dict[tuple[str, str, str], tuple[int, int]]) -> tuple[int, int, str]:
    """(peak pods, steady pods, why) of one non-DaemonSet workload."""
    spec = obj.doc.get("spec") or {}
    kind = obj.kind
    if kind == "Pod":
        return 1, 1, "1 (Pod)"
    if kind in ("Job", "CronJob"):
        job = ((spec.get("jobTemplate") or {}).get("spec") or {}) if kind == "CronJob" else spec
        n = _int(job.get("parallelism"), 1)
        if job.get("completions") is not None:
            n = min(n, _int(job.get("completions"), n))
        return n, n, f"parallelism {n} ({kind})"
    replicas = _int(spec.get("replicas"), 1)
    if kind in OPERATOR_KINDS:
        shards = _int(spec.get("shards"), 1) if kind == "Prometheus" else 1
        n = replicas * max(shards, 1)
        counted = f"replicas {replicas} × shards {shards}" if shards != 1 else f"replicas {replicas}"
        return n, n, f"{counted} ({kind}: a StatefulSet by prometheus-operator, no surge)"
    hpa = hpas.get((obj.namespace, kind, obj.name))
    if hpa:  # the HPA owns replicas: its minimum at rest, its maximum at peak
        steady, base, why = hpa[0], hpa[1], f"HPA max {hpa[1]}"
    else:
        steady, base, why = replicas, replicas, f"replicas {replicas}"
    if kind == "Rollout":
        strategy = spec.get("strategy") or {}
        if "blueGreen" in strategy:
            return base * 2, steady, f"{why} + preview {base} (full second set until the switch)"
        if "canary" in strategy:
            return base * 2, steady, f"{why} + canary {base} (full second set at promotion)"
        return base, steady, why
    if kind == "Deployment":
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            return base, steady, f"{why}, Recreate (no surge)"
        surge = _surge((strategy.get("rollingUpdate") or {}).get("maxSurge", "25%"), base)
        return base + surge, steady, f"{why} + maxSurge {surge}"
    if kind == "StatefulSet":
        return base, steady, f"{why} (StatefulSet, no surge)"
    return base, steady, f"{why} ({kind})"


def _daemon_pods(obj: Obj, nodes: int) -> tuple[int, str]:
    """Pods per node of a DaemonSet at peak: 2 while a surging rolling update overlaps old and new, else 1."""
    strategy = (obj.doc.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type") != "OnDelete":
        surge = _surge((strategy.get("rollingUpdate") or {}).get("maxSurge", 0), nodes)
        if surge > 0:
            return 2, f"1 per node + maxSurge {surge} (DaemonSet: old and new pod overlap)"
    return 1, "1 per node (DaemonSet)"


def _template(obj: Obj, objs: list[Obj]) -> dict[str, Any] | None:
    """The pod spec a workload runs; a Rollout with a workloadRef runs the referenced Deployment's template."""
    if obj.kind == "Rollout" and (obj.doc.get("spec") or {}).get("workloadRef"):
        ref = obj.doc["spec"]["workloadRef"]
        target = next((o for o in objs if o.kind == ref.get("kind", "Deployment") and o.name == ref.get("name")
                       and o.namespace == obj.namespace), None)
        pod = target.pod() if target is not None else None
        return pod[1] if pod else None
    pod = obj.pod()
    return pod[1] if pod else None


# ---------------------------------------------------------------- loads, table, findings


def loads(objs: list[Obj], model: Model) -> list[PodLoad]:
    """Every pod-running object of `objs` as the pods it puts on each model node, at peak."""
    comps = resolve.by_name(model)
    hpas = _hpas(objs)
    reloaders: dict[str | None, dict[str, str]] = {}
    seen: dict[str, list[str]] = {}
    out = []
    for obj in objs:
        if obj.kind in OPERATOR_KINDS:
            if obj.app not in reloaders:
                reloaders[obj.app] = reloader_requests(objs, obj.app)
            podspec = operator_podspec(obj, reloaders[obj.app])
        else:
            if obj.pod() is None:
                continue
            podspec = _template(obj, objs)
            if podspec is None:
                continue
        cpu, memory = pod_requests(podspec)
        comp = comps.get(obj.app) if obj.app is not None else None
        placement = getattr(comp.spec, "placement", None) if comp is not None else None
        nodes = fits(model, podspec, seen)
        if obj.kind == "DaemonSet":
            # Its pods run wherever they fit, whatever node the model places the component on.
            per_node, why = _daemon_pods(obj, len(nodes))
            loc = comp.loc if comp is not None else ()
            out += [PodLoad(obj.app, obj.shown, node, per_node, cpu, memory, why, loc, obj.source, obj.index, 1)
                    for node in nodes]
            continue
        if not nodes:
            continue  # nowhere to run: the placement checks report it
        node = placement.node if placement is not None and placement.node in nodes else nodes[0]
        loc = comp.loc + ("placement", "node") if placement is not None else (comp.loc if comp is not None else ())
        pods, steady, why = peak(obj, hpas)
        if pods <= 0:
            continue
        cpu_from, memory_from = requested_by(comp, cpu, memory)
        out.append(PodLoad(obj.app, obj.shown, node, pods, cpu, memory, why, loc, obj.source, obj.index, steady,
                           cpu_from, memory_from))
    return out


def _resource_fields(spec: Any, loc: tuple) -> list[tuple[tuple, Resources]]:
    """Every `resources` of a component's model object, nested ones too (beat, exporter, the monitoring parts)."""
    out: list[tuple[tuple, Resources]] = []
    if not isinstance(spec, BaseModel):
        return out
    for name, info in type(spec).model_fields.items():
        value, key = getattr(spec, name), info.alias or name
        if isinstance(value, Resources):
            out.append((loc + (key,), value))
        elif isinstance(value, BaseModel):
            out += _resource_fields(value, loc + (key,))
    return out


def requested_by(comp: resolve.Component | None, cpu: int, memory: int) -> tuple[tuple[tuple, ...], tuple[tuple, ...]]:
    """The model fields a pod's requests come from: one `resources` of its component, or two (a main container and
    its exporter), whose requests add up to exactly what the pod requests; () where none do (a chart's own pods)."""
    if comp is None:
        return (), ()
    fields = _resource_fields(comp.spec, comp.loc)

    def match(amount: int, dim: str, parse) -> tuple[tuple, ...]:
        if not amount:
            return ()
        single = [loc for loc, r in fields if parse(getattr(r.requests, dim)) == amount]
        if len(single) == 1:
            return (single[0] + ("requests", dim),)
        pairs = [(a, b) for i, (a, ra) in enumerate(fields) for b, rb in fields[i + 1:]
                 if parse(getattr(ra.requests, dim)) + parse(getattr(rb.requests, dim)) == amount]
        return (pairs[0][0] + ("requests", dim), pairs[0][1] + ("requests", dim)) if len(pairs) == 1 and not single else ()
    return match(cpu, "cpu", cpu_millis), match(memory, "memory", memory_bytes)


def reserve(model: Model, name: str) -> tuple[int, int]:
    """(millicores, bytes) kept free on a node: its own systemReserved, else the cluster's."""
    r = model.nodes[name].system_reserved or model.cluster.system_reserved
    return cpu_millis(r.cpu), memory_bytes(r.memory)


def table(objs: list[Obj], model: Model, computed: list[PodLoad] | None = None) -> list[dict[str, Any]]:
    """Per model node, in model order, as plain data: capacity, reserve, what is allocatable after the reserve,
    requests at steady state (replicas; no surge, HPA growth or canary) and at peak, and the loads behind them.
    `computed`: loads(objs, model) when the caller has it already."""
    per_node: dict[str, list[PodLoad]] = {name: [] for name in model.nodes}
    for load in loads(objs, model) if computed is None else computed:
        per_node.setdefault(load.node, []).append(load)
    rows = []
    for name, node in model.nodes.items():
        cpu_reserved, memory_reserved = reserve(model, name)
        ls = per_node[name]
        rows.append({
            "node": name,
            "cpu_capacity": node.cpu * 1000, "memory_capacity": memory_bytes(node.memory),
            "cpu_reserved": cpu_reserved, "memory_reserved": memory_reserved,
            "cpu_allocatable": node.cpu * 1000 - cpu_reserved, "memory_allocatable": memory_bytes(node.memory) - memory_reserved,
            "cpu_steady": sum(l.steady_pods * l.cpu for l in ls), "memory_steady": sum(l.steady_pods * l.memory for l in ls),
            "cpu_peak": sum(l.pods * l.cpu for l in ls), "memory_peak": sum(l.pods * l.memory for l in ls),
            "pods_steady": sum(l.steady_pods for l in ls), "pods_peak": sum(l.pods for l in ls),
            "loads": ls,
        })
    return rows


def contribution(load: PodLoad, requested: tuple[tuple, ...] = ()) -> str:
    """`<what> <pods>×<cpu>m/<memory> (<why>; placed by <model field>; requests from <model fields>)`."""
    placed = f"; placed by {format_loc(load.loc)}" if load.loc else ""
    if requested:
        placed += f"; requests from {' + '.join(format_loc(r) for r in requested)}"
    memory = format_bytes(load.memory) if load.memory else "0"
    return f"{load.what} {load.pods}×{load.cpu}m/{memory} ({load.why}{placed})"


def _parts(ls: list[PodLoad], per_pod, requested) -> str:
    shown = sorted((l for l in ls if per_pod(l) and l.pods), key=lambda l: (-l.pods * per_pod(l), l.what))
    return "; ".join(contribution(l, requested(l)) for l in shown)


@dataclass(frozen=True)
class Overcommit(Finding):
    """A node over its allocatable; `changed` is the model field of the one workload whose change (against the
    committed tree) pushed it over, () when none or several did."""

    changed: tuple = ()


def _count_field(comp: resolve.Component) -> tuple:
    """The model field a component's pod count comes from: its HPA maximum, else its replicas, else the component."""
    if getattr(comp.spec, "hpa", None) is not None:
        return comp.loc + ("hpa", "maxReplicas")
    return comp.loc + ("replicas",) if hasattr(comp.spec, "replicas") else comp.loc


def _grown(ls: list[PodLoad], before: dict[str, PodLoad], per_pod) -> list[tuple[PodLoad, PodLoad | None]]:
    """The loads that request more of a resource on this node than the committed tree's did (new ones included)."""
    def total(load: PodLoad | None) -> int:
        return load.pods * per_pod(load) if load is not None else 0
    return [(l, before.get(l.what)) for l in sorted(ls, key=lambda l: l.what) if total(l) > total(before.get(l.what))]


def _since(grown: list[tuple[PodLoad, PodLoad | None]], per_pod, show, requested,
           comps: dict[str, resolve.Component]) -> tuple[str, tuple]:
    """The sentence on what the change did to the node, and the one model field to point at (or ())."""
    if not grown:
        return " (no pod on it requests more than in the committed tree)", ()
    parts = []
    for now, was in grown:
        earlier = f"{was.pods}×{show(per_pod(was))}" if was else "not on this node"
        parts.append(f"{now.what}: {earlier} -> {now.pods}×{show(per_pod(now))}")
    changed: tuple = ()
    now, was = grown[0]
    comp = comps.get(now.app) if now.app is not None else None
    if len(grown) == 1 and comp is not None:
        if was is None:  # new on this node: what places it
            changed = now.loc or comp.loc
        elif now.pods <= was.pods and requested(now):  # only each pod's requests grew, and a field gives them
            changed = requested(now)[0]
        elif per_pod(now) <= per_pod(was):  # only the pod count grew
            changed = _count_field(comp)
        else:  # both, or requests no field gives: the component
            changed = comp.loc
    return f"; grown since the committed tree: {'; '.join(parts)}", changed


def findings(objs: list[Obj], model: Model, before: list[Obj] | None = None,
             computed: list[PodLoad] | None = None) -> list[Finding]:
    """A node whose peak requests plus its system reserve exceed it, with every contribution, largest first.
    Given the committed tree's objects (`before`), it also says which workloads grew on the node and, where one
    did, points at its model field (Overcommit.changed): the line whose edit pushed the node over.
    `computed`: loads(objs, model) when the caller has it already."""
    out: list[Finding] = []
    earlier: dict[str, dict[str, PodLoad]] = {}
    if before is not None:
        for load in loads(before, model):
            earlier.setdefault(load.node, {})[load.what] = load
    comps = resolve.by_name(model)

    def found(name: str, dim: str, text: str, ls: list[PodLoad], per_pod, show, requested) -> Finding:
        if before is None:
            return Finding(("nodes", name, dim), text)
        said, changed = _since(_grown(ls, earlier.get(name, {}), per_pod), per_pod, show, requested, comps)
        return Overcommit(("nodes", name, dim), text + said, changed)

    for row in table(objs, model, computed):
        name, ls = row["node"], row["loads"]
        r = model.nodes[name].system_reserved or model.cluster.system_reserved
        if row["cpu_peak"] > row["cpu_allocatable"]:
            out.append(found(name, "cpu",
                             f"peak CPU requests {row['cpu_peak']}m of the rendered pods exceed the "
                             f"{row['cpu_allocatable']}m left after the system reserve of {r.cpu}: "
                             f"{_parts(ls, lambda l: l.cpu, lambda l: l.cpu_from)}",
                             ls, lambda l: l.cpu, lambda v: f"{v}m", lambda l: l.cpu_from))
        if row["memory_peak"] > row["memory_allocatable"]:
            out.append(found(name, "memory",
                             f"peak memory requests {format_bytes(row['memory_peak'])} of the rendered pods exceed "
                             f"the {format_bytes(row['memory_allocatable'])} left after the system reserve of "
                             f"{r.memory}: {_parts(ls, lambda l: l.memory, lambda l: l.memory_from)}",
                             ls, lambda l: l.memory, lambda v: format_bytes(v) if v else "0", lambda l: l.memory_from))
    return out
