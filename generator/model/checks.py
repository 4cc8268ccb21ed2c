"""Rules that span objects of the model: references, placement, capacity, routing, canaries, graphs.

Each rule is a function from the model to findings; a finding names the field it concerns. The
loader turns findings into file:line:col problems.
"""

from __future__ import annotations

import difflib
from typing import Callable, Iterator

from .. import kinds
from ..errors import Finding
from ..kinds.kube_prometheus_stack import KIND as MONITORING
from ..kinds.postgresql import KIND as POSTGRESQL
from ..kinds.rabbitmq import RabbitMQ
from ..plan import resolve
from .model import CanaryPolicy, Model

Rule = Callable[[Model], Iterator[Finding]]


def run(model: Model) -> list[Finding]:
    return [finding for check in RULES for finding in check(model)]


def _names(items) -> str:
    return ", ".join(sorted(items)) or "none"


def _hint(value: str, known) -> str:
    """'did you mean ...' for a near miss, else the list of what exists."""
    close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.75)
    return f"did you mean {close[0]!r}?" if close else f"known: {_names(known)}"


# ---------------------------------------------------------------- names


def unique_component_names(model: Model) -> Iterator[Finding]:
    """Every component becomes an Application named after it: names must not repeat across sections."""
    seen: dict[str, tuple] = {}
    for comp in resolve.components(model):
        if comp.name in seen:
            first = ".".join(str(p) for p in seen[comp.name])
            yield Finding(comp.loc, f"component name {comp.name!r} is already used by {first}")
        else:
            seen[comp.name] = comp.loc
    if model.argocd.root_app in seen:
        yield Finding(("argocd", "rootApp"), f"{model.argocd.root_app!r} is also a component name")


# ---------------------------------------------------------------- references


def nodes_exist(model: Model) -> Iterator[Finding]:
    for loc, placement in resolve.placements(model):
        if placement.node not in model.nodes:
            yield Finding(loc + ("node",), f"node {placement.node!r} is not in nodes ({_hint(placement.node, model.nodes)})")


def projects_and_namespaces_exist(model: Model) -> Iterator[Finding]:
    projects = model.argocd.projects
    if model.argocd.root_project not in projects:
        yield Finding(("argocd", "rootProject"), f"project {model.argocd.root_project!r} is not in argocd.projects")
    for comp in resolve.components(model):
        loc = ("platform", "project") if comp.kind == resolve.PLATFORM else comp.loc + ("project",)
        if comp.project not in projects:
            yield Finding(loc, f"project {comp.project!r} is not in argocd.projects ({_hint(comp.project, projects)})")
        elif comp.project == model.argocd.root_project:
            yield Finding(loc, f"project {comp.project!r} is the root project, which may only manage Applications")
        if comp.namespace is not None and comp.namespace not in model.platform.namespaces:
            yield Finding(comp.loc + ("namespace",),
                          f"namespace {comp.namespace!r} is not in platform.namespaces ({_hint(comp.namespace, model.platform.namespaces)})")
        kind = kinds.of(comp.kind)
        for loc, ns in kind.namespace_fields(comp.spec, comp.loc) if kind else []:
            if ns not in model.platform.namespaces:
                yield Finding(loc, f"namespace {ns!r} is not in platform.namespaces ({_hint(ns, model.platform.namespaces)})")


def dependencies_exist(model: Model) -> Iterator[Finding]:
    known = resolve.by_name(model)
    for comp in resolve.components(model):
        for i, dep in enumerate(getattr(comp.spec, "depends_on", [])):
            if dep not in known:
                yield Finding(comp.loc + ("dependsOn", i), f"{dep!r} is not a component ({_hint(dep, known)})")
            elif dep == comp.name:
                yield Finding(comp.loc + ("dependsOn", i), "a component cannot depend on itself")


def _secret_ref(model: Model, loc: tuple, secret: str, key: str | None, namespace: str,
                key_loc: tuple | None = None) -> Iterator[Finding]:
    """The Secret `secret` (written at loc) is declared in `namespace` with `key` (written at key_loc, or implied)."""
    declared = model.secrets.get(secret)
    if declared is None:
        yield Finding(loc, f"secret {secret!r} is not declared in secrets ({_hint(secret, model.secrets)})")
        return
    if namespace not in declared.namespaces:
        yield Finding(loc, f"secret {secret!r} is not declared in namespace {namespace!r} "
                           f"(declared in: {_names(declared.namespaces)})")
    if key is not None and key not in declared.keys:
        yield Finding(key_loc or loc, f"secret {secret!r} has no key {key!r} ({_hint(key, declared.keys)})")


def secrets_exist(model: Model) -> Iterator[Finding]:
    for _, loc, wl in resolve.workloads(model):
        for env, ref in wl.secret_env.items():
            yield from _secret_ref(model, loc + ("secretEnv", env, "secret"), ref.secret, ref.key, wl.namespace,
                                   loc + ("secretEnv", env, "key"))
    for name, infra in model.infra.items():
        kind = kinds.of(infra.type)
        for loc, secret, key, key_loc in kind.secrets(name, infra) if kind else []:
            yield from _secret_ref(model, loc, secret, key, infra.namespace, key_loc)
    for name, secret in model.secrets.items():
        for i, ns in enumerate(secret.namespaces):
            if ns not in model.platform.namespaces:
                yield Finding(("secrets", name, "namespaces", i), f"namespace {ns!r} is not in platform.namespaces")


def databases_have_a_server(model: Model) -> Iterator[Finding]:
    servers = {c.name for c in resolve.of_kind(model, POSTGRESQL.name)}
    for _, loc, wl in resolve.workloads(model):
        if wl.database is not None and not servers & set(wl.depends_on):
            yield Finding(loc + ("database",), f"uses database {wl.database!r} but dependsOn names no PostgreSQL "
                                               f"component (PostgreSQL components: {_names(servers)})")


def messaging_references(model: Model) -> Iterator[Finding]:
    msg = model.messaging
    if msg is None:
        for name in model.workers:
            yield Finding(("workers", name, "queues"), "workers consume queues, but the model has no messaging section")
        return
    broker = model.infra.get(msg.broker)
    if not isinstance(broker, RabbitMQ):
        yield Finding(("messaging", "broker"), f"{msg.broker!r} is not a rabbitmq component in infra")
    if msg.dead_letter_queue not in msg.queues:
        yield Finding(("messaging", "deadLetterQueue"), f"queue {msg.dead_letter_queue!r} is not in messaging.queues")
    for qname, queue in msg.queues.items():
        for field, binding in (("binding", queue.binding), ("deadLetter", queue.dead_letter)):
            if binding is not None and binding.exchange not in msg.exchanges:
                yield Finding(("messaging", "queues", qname, field, "exchange"),
                              f"exchange {binding.exchange!r} is not in messaging.exchanges ({_hint(binding.exchange, msg.exchanges)})")
        if qname != msg.dead_letter_queue and queue.dead_letter is None:
            yield Finding(("messaging", "queues", qname, "deadLetter"),
                          f"every queue but {msg.dead_letter_queue} must dead-letter (rejected and expired tasks would vanish)")
    for name, worker in model.workers.items():
        for i, queue in enumerate(worker.queues):
            if queue not in msg.queues:
                yield Finding(("workers", name, "queues", i), f"queue {queue!r} is not in messaging.queues ({_hint(queue, msg.queues)})")
        if msg.broker not in worker.depends_on:
            yield Finding(("workers", name, "dependsOn"), f"consumes queues of {msg.broker!r} but does not depend on it")


def queues_have_consumers(model: Model) -> Iterator[Finding]:
    if model.messaging is None:
        return
    consumed = {q for w in model.workers.values() for q in w.queues}
    for qname in model.messaging.queues:
        if qname != model.messaging.dead_letter_queue and qname not in consumed:
            yield Finding(("messaging", "queues", qname), "no worker consumes this queue; its messages would pile up until they expire")


# ---------------------------------------------------------------- placement and capacity


def placement_fits_node(model: Model) -> Iterator[Finding]:
    matching: dict[tuple, list[str]] = {}  # selector -> the nodes it selects (a thousand placements, a few selectors)
    for loc, placement in resolve.placements(model):
        node = model.nodes.get(placement.node)
        if node is None:
            continue  # reported by nodes_exist
        selector = resolve.node_selector(model, placement)
        where = loc + (("nodeSelector",) if placement.node_selector is not None else ("node",))
        if not resolve.selects(selector, node):
            missing = {k: v for k, v in selector.items() if node.labels.get(k) != v}
            yield Finding(where, f"node selector {missing} does not match node {placement.node!r} (its labels: {dict(node.labels)})")
        else:
            key = tuple(sorted(selector.items()))
            if key not in matching:
                matching[key] = [n for n, other in model.nodes.items() if resolve.selects(selector, other)]
            others = [n for n in matching[key] if n != placement.node]
            if others:
                yield Finding(where, f"node selector {selector} also matches {_names(others)}; pods could land off {placement.node!r}")
        tols = resolve.tolerations(model, placement)
        for taint in node.taints:
            if taint.effect != "PreferNoSchedule" and not any(t.tolerates(taint) for t in tols):
                shown = f"{taint.key}={taint.value}:{taint.effect}" if taint.value else f"{taint.key}:{taint.effect}"
                # only written tolerations can miss a taint: by default a placement tolerates its node's taints
                yield Finding(loc + ("tolerations",), f"does not tolerate taint {shown} of node {placement.node!r}; pods would "
                                                     "stay Pending")


# Capacity is counted from the rendered pods after hydration (capacity.py, reported by validation), so
# what the charts really request, sidecars and DaemonSets included, is what has to fit.


# ---------------------------------------------------------------- routing


def unique_routes(model: Model) -> Iterator[Finding]:
    paths: dict[str, str] = {}
    ports: dict[int, str] = {}
    for name, svc in model.services.items():
        if svc.path is not None:
            if svc.path in paths:
                yield Finding(("services", name, "path"), f"path {svc.path} is already routed to {paths[svc.path]}")
            paths.setdefault(svc.path, name)
        if svc.node_port is not None:
            if svc.node_port in ports:
                yield Finding(("services", name, "nodePort"), f"nodePort {svc.node_port} is already used by {ports[svc.node_port]}")
            ports.setdefault(svc.node_port, name)
        if svc.node_port is not None and svc.path is None:
            yield Finding(("services", name, "nodePort"), "a nodePort is only for services behind the ingress (set path)")


# ---------------------------------------------------------------- delivery


def canaries(model: Model) -> Iterator[Finding]:
    checked_default = False
    for name, svc in model.services.items():
        policy = resolve.delivery(model, svc)
        if not isinstance(policy, CanaryPolicy):
            continue
        loc = ("services", name, "delivery")
        if svc.path is None or svc.protocol != "http":
            yield Finding(loc + ("strategy",), "a canary needs an HTTP service behind the ingress (the ALB splits the "
                                               "traffic); this one has " + ("no path" if svc.path is None else f"protocol {svc.protocol}"))
        own_steps = svc.delivery.steps is not None
        if own_steps or not checked_default:
            steps_loc = loc + ("steps",) if own_steps else ("delivery", "canary", "steps")
            yield from _canary_steps(policy.steps, steps_loc)
            checked_default = checked_default or not own_steps
        if policy.analysis is None:
            yield Finding(loc, "a canary needs an analysis (delivery.canary.analysis or its own); without one a bad "
                               "version is promoted on time alone")
        if policy.analysis is not None and not resolve.of_kind(model, MONITORING.name):
            yield Finding(loc + ("strategy",), "the canary analysis queries Prometheus, but infra has no kube-prometheus-stack")


def _canary_steps(steps, loc) -> Iterator[Finding]:
    weights = [(i, s.set_weight) for i, s in enumerate(steps) if s.set_weight is not None]
    if not weights:
        yield Finding(loc, "a canary needs at least one setWeight step")
    previous = 0
    for i, weight in weights:
        if not 1 <= weight <= 99:
            yield Finding(loc + (i, "setWeight"), f"{weight} is outside 1..99 (100% is the promotion after the last step)")
        elif weight <= previous:
            yield Finding(loc + (i, "setWeight"), f"{weight} does not rise above the previous weight {previous}")
        previous = max(previous, weight)


# ---------------------------------------------------------------- graph


_HOW = {
    resolve.CRD: "add the component that installs it (kube-prometheus-stack in infra, argo-rollouts in "
                 "platform.controllers, ...) or declare it in platform.external.apiVersions with who provides it",
    resolve.STORAGE_CLASS: "list it under the storageClasses of an aws-ebs-csi-driver in platform.controllers, "
                           "or declare it in platform.external.storageClasses with who provides it",
    resolve.INGRESS_CLASS: "add an aws-load-balancer-controller to platform.controllers, or declare it in "
                           "platform.external.ingressClasses with who provides it",
    resolve.METRICS_API: "add a metrics-server to platform.controllers, or set platform.external.metricsApi "
                         "to who provides it",
}


def _external_loc(cap: tuple) -> tuple:
    """Where platform.external declares a capability (the entry to delete)."""
    field = {resolve.CRD: "apiVersions", resolve.STORAGE_CLASS: "storageClasses", resolve.INGRESS_CLASS: "ingressClasses"}
    if cap[0] in field:
        return ("platform", "external", field[cap[0]], cap[1])
    return ("platform", "external", "metricsApi")


def capabilities_provided(model: Model) -> Iterator[Finding]:
    """Every capability a component uses (CRD kinds, storage and ingress classes, the metrics API) has exactly one provider."""
    found = resolve.providers(model)
    outside = resolve.external(model)
    for cap, names in sorted(found.items()):
        if len(names) > 1:
            yield Finding(resolve.by_name(model)[names[1]].loc, f"{cap[0]} {cap[1]} is provided by both "
                                                                 f"{names[0]} and {names[1]}; keep one")
        if cap in outside:
            yield Finding(_external_loc(cap), f"{cap[0]} {cap[1]} is declared external but {names[0]} provides it")
    reported: set[tuple] = set()
    for comp in resolve.components(model):
        for cap, loc in resolve.needs(model, comp):
            if cap in found or cap in outside or (cap, loc) in reported:
                continue
            reported.add((cap, loc))
            yield Finding(loc, f"uses {cap[0]} {cap[1]!r}, which no component provides: {_HOW[cap[0]]}")


def acyclic_dependencies(model: Model) -> Iterator[Finding]:
    known = resolve.by_name(model)
    graph = {c.name: [d for d, _ in resolve.dependencies(model, c) if d in known and d != c.name] for c in known.values()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> Iterator[Finding]:
        state[node] = 1
        stack.append(node)
        for dep in graph[node]:
            if state.get(dep) == 1:  # a back edge: each is met once, so each cycle it closes is said once
                ring = stack[stack.index(dep):]
                # Any edge may be the mistake: say it at each, read from there (a → b → … → a).
                for i, a in enumerate(ring):
                    b = ring[(i + 1) % len(ring)]
                    declared = getattr(known[a].spec, "depends_on", [])
                    at = known[a].loc + (("dependsOn", declared.index(b)) if b in declared else ())
                    how = "" if b in declared else f" ({dict(resolve.dependencies(model, known[a]))[b]}, implied)"
                    yield Finding(at, f"dependency cycle: {' → '.join(ring[i:] + ring[:i] + [a])}{how}; "
                                      f"this is one of its {len(ring)} edges, remove one")
            elif dep not in state:
                yield from visit(dep)
        stack.pop()
        state[node] = 2

    for name in graph:
        if name not in state:
            yield from visit(name)


# ---------------------------------------------------------------- infra details


def kind_rules(model: Model) -> Iterator[Finding]:
    """The rules a kind of component declares for its own entries (generator/kinds/), in the registry's order."""
    for comp in resolve.components(model):
        kind = kinds.of(comp.kind)
        for rule in kind.checks if kind else ():
            yield from rule(model, comp.name, comp.spec)


def single_of_a_kind(model: Model) -> Iterator[Finding]:
    for kind in kinds.KINDS:
        if kind.single:
            found = resolve.of_kind(model, kind.name)
            for extra in found[1:]:
                yield Finding(extra.loc, f"only one {kind.name} component is supported (first: {found[0].name})")


# Every rule, in the order it runs. A list rather than a registering decorator: mutmut (make mutation) does not
# mutate decorated functions. tests/test_checks.py fails when a rule is left out.
RULES: list[Rule] = [
    unique_component_names,
    nodes_exist,
    projects_and_namespaces_exist,
    dependencies_exist,
    secrets_exist,
    databases_have_a_server,
    messaging_references,
    queues_have_consumers,
    placement_fits_node,
    unique_routes,
    canaries,
    capabilities_provided,
    acyclic_dependencies,
    kind_rules,
    single_of_a_kind,
]
