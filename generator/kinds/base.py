"""What a kind of infra or controller component declares about itself, in its own module (generator/kinds/<kind>.py).

A kind is the `type:` of an entry of `infra:` or `platform.controllers:`. Its module holds everything that is
particular to it: the model class of its entries, the chart that renders it (a local chart under charts/ with the
values class its values.schema.json is generated from, or an upstream chart the entry's `chart:` pins), the function
from (plan, component) to its Helm values, and, where they apply, what dependents connect to, what it provides to the
cluster, the volumes and Secrets it asks for, fields its chart generates at sync, and rules of its own. Everything
else (the Application, placement, sync waves, NetworkPolicies from declared dependencies, validation) is generic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:
    from ..errors import Finding
    from ..model.model import Model, Storage
    from ..plan.plan import Plan
    from ..capability import Capability
    from ..plan.resolve import Component

INFRA, CONTROLLERS = "infra", "controllers"  # the model section a kind's entries are written in
# Webhook CA bundles that are not in git: patched into the webhook configurations at run time or made anew by helm
# at every render (genCA); an ignoreDifferences jq path.
CA_BUNDLES = ".webhooks[]?.clientConfig.caBundle"
SecretRef = tuple[tuple, str, str, "tuple | None"]  # (loc, secret, key, where the key is written, if it is)


def own_storage(spec: Any, loc: tuple) -> list[tuple[tuple, Storage]]:
    """The one volume of an entry with a `storage:` field."""
    return [(loc + ("storage",), spec.storage)]


def no_storage(spec: Any, loc: tuple) -> list[tuple[tuple, Storage]]:
    return []


def credentials(*keys: str) -> Callable[[str, Any], list[SecretRef]]:
    """The Secret an entry's `credentialsSecret` names must hold these keys."""
    def refs(name: str, spec: Any) -> list[SecretRef]:
        return [(("infra", name, "credentialsSecret"), spec.credentials_secret, key, None) for key in keys]
    return refs


@dataclass(frozen=True)
class Kind:
    name: str
    """The entries' `type:`, and Component.kind."""
    section: str
    """INFRA or CONTROLLERS."""
    model: type
    """The pydantic class of an entry (its `type` field is Literal[name]); the model's union takes it from here."""
    values: Callable[[Plan, Component], Any]
    """The Helm values: an instance of values_model for a local chart, a dict for an upstream one."""
    chart: str | None = None
    """Its local chart under charts/; None: an upstream chart, which the entry's `chart:` names and pins."""
    values_model: type | None = None
    """A local chart's values class: `render` writes the chart's values.schema.json from it."""
    api_kinds: tuple[str, ...] = ()
    """group/version/Kind of every API its chart installs at the pinned version; validation compares them with the
    CustomResourceDefinitions the chart really hydrates."""
    single: bool = False
    """At most one of this kind per environment."""
    endpoint: Callable[[Any], tuple[tuple[int, ...], tuple[int, ...]]] | None = None
    """(client ports, metrics ports) of the Service dependents connect to; None: nothing connects to it."""
    connection_env: Callable[[str, Any, Any], dict[str, str]] | None = None
    """(host, entry, dependent workload) -> the environment variables a dependent gets to reach it."""
    storages: Callable[[Any, tuple], list[tuple[tuple, Storage]]] = no_storage
    """(entry, loc) -> (loc of each storage field, its Storage)."""
    provides: Callable[[Model, Any], list[Capability]] = lambda model, spec: []
    """Capabilities beyond its api_kinds (storage classes, the ingress class, the metrics API)."""
    namespaces: Callable[[Any], set[str]] = lambda spec: set()
    """Namespaces its Application writes into besides the entry's own."""
    namespace_fields: Callable[[Any, tuple], list[tuple[tuple, str]]] = lambda spec, loc: []
    """(loc, namespace) of fields besides `namespace` that name a namespace of platform.namespaces."""
    secrets: Callable[[str, Any], list[SecretRef]] = lambda name, spec: []
    """The Secrets (and their keys) an entry names, each declared in the entry's namespace."""
    generated: Callable[[str, Any], list[dict[str, Any]]] = lambda name, spec: []
    """ignoreDifferences entries for fields its chart makes at render or run time."""
    checks: tuple[Callable[[Model, str, Any], Iterator[Finding]], ...] = ()
    """Rules of its own: (model, name, entry) -> findings."""
    stateful: bool = True
    """Holds data or cluster-wide state: deleting its Application must not delete its resources."""

    @property
    def upstream(self) -> bool:
        return self.chart is None

    @property
    def monitored(self) -> bool:
        """A local chart renders a ServiceMonitor and a PrometheusRule for it (it needs their CRDs)."""
        return self.chart is not None


def api_kinds(group_version: str, *kinds: str) -> tuple[str, ...]:
    return tuple(f"{group_version}/{k}" for k in kinds)
