"""The plan: every fact derived from one environment's checked model, computed once, read by every later stage.

    load + check (loader, environments, checks)  ->  plan (this module)  ->  render (render, applications,
    helmvalues)  ->  hydrate  ->  validate  ->  review (overview, orphans)  ->  write (output)

The rules live in resolve.py (pure functions of the model, which the checks also run on models that may still be
wrong); a Plan applies them once to a model that passed its checks and freezes the results: the components and
where each is defined, its dependencies and why, its sync wave, the namespaces its Application writes to, the
delivery policy of each service, the API versions helm and Argo CD are pinned to, and the file layout. Renderers
take (plan, component) and read derived facts here instead of re-deriving them from the raw model.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping, Union

from typing import TYPE_CHECKING

from ..kinds.kube_prometheus_stack import KIND as MONITORING
from ..layout import Layout
from ..model.model import CanaryPolicy, Model, RollingPolicy
from . import resolve

if TYPE_CHECKING:  # resolve may be importing the model, whose kinds import the values helpers, which import this
    from ..capability import Capability
    from .resolve import Component

Policy = Union[RollingPolicy, CanaryPolicy]


@dataclass(frozen=True, eq=False)
class Plan:
    model: Model
    layout: Layout
    components: tuple[Component, ...]  # in model order: platform, controllers, infra, workers, services
    by_name: Mapping[str, Component]
    dependencies: Mapping[str, tuple[tuple[str, str], ...]]  # component -> (dependency, why), sorted by dependency
    waves: Mapping[str, int]  # component -> sync wave: 0 without dependencies, else one more than its latest one
    namespaces: Mapping[str, frozenset[str]]  # component -> every namespace its Application writes objects into
    providers: Mapping[Capability, tuple[str, ...]]  # capability -> the components that provide it
    delivery: Mapping[str, Policy]  # service -> its effective policy (the model's default with its overrides)
    api_versions: tuple[str, ...]  # what `helm template --api-versions` gets, as Argo CD passes them
    clients: Mapping[str, tuple[str, ...]]  # infra component -> the workloads that declare they use it, sorted
    monitoring: Component | None  # the monitoring stack (kube-prometheus-stack) that scrapes everything, if any

    @property
    def environment(self) -> str:
        return self.layout.environment

    def canary(self, comp: Component) -> bool:
        policy = self.delivery.get(comp.name) if comp.kind == resolve.API else None
        return isinstance(policy, CanaryPolicy)


def _waves(names: list[str], deps: Mapping[str, tuple[tuple[str, str], ...]]) -> dict[str, int]:
    known = set(names)
    out: dict[str, int] = {}
    # Iterative depth-first, so a long chain of dependsOn cannot exhaust the stack (the checks refused cycles).
    for start in names:
        stack = [start]
        while stack:
            name = stack[-1]
            if name in out:
                stack.pop()
                continue
            pending = [d for d, _ in deps[name] if d in known and d not in out]
            if pending:
                stack.extend(pending)
                continue
            out[name] = 1 + max((out[d] for d, _ in deps[name] if d in known), default=-1)
            stack.pop()
    return {name: out[name] for name in names}


def build(model: Model) -> Plan:
    """The plan of a checked model (InvalidModel was raised before this for a wrong one)."""
    comps = tuple(resolve.components(model))
    by_name = resolve.by_name(model)
    deps = {c.name: tuple(resolve.dependencies(model, c)) for c in comps}
    policies = {name: resolve.delivery(model, svc) for name, svc in model.services.items()}
    return Plan(
        model=model,
        layout=Layout(model.cluster.environment),
        components=comps,
        by_name=MappingProxyType(by_name),
        dependencies=MappingProxyType(deps),
        waves=MappingProxyType(_waves(list(by_name), deps)),
        namespaces=MappingProxyType({c.name: frozenset(resolve.namespaces(model, c)) for c in comps}),
        providers=MappingProxyType({cap: tuple(names) for cap, names in resolve.providers(model).items()}),
        delivery=MappingProxyType(policies),
        api_versions=tuple(resolve.api_versions(model)),
        clients=MappingProxyType({name: tuple(sorted(c for c, _, wl in resolve.workloads(model) if name in wl.depends_on))
                                  for name in model.infra}),
        monitoring=next((c for c in comps if c.kind == MONITORING.name), None),
    )
