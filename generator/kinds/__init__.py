"""Every kind of infra and controller component: one module each, which declares a base.Kind named KIND.

A new kind is a module here (its model class, values, chart and what else base.Kind lets it say), its entry in
registry.py (its import and its place in _MODULES), and its chart (charts/<chart>/ for a local one, with ci/
scenarios; an upstream one is pinned by the entries' `chart:` and ../shared/charts or `make charts`). The model's
`infra:` and `platform.controllers:` unions, the values and schema of every chart, the capabilities, the connection
settings and NetworkPolicies of dependents, the Applications' ignored fields and the model checks all read the
registry. Elsewhere a kind is named only for a role the model gives it: the broker of `messaging` (rabbitmq), the
server of `database:` (postgresql), the monitoring stack (kube-prometheus-stack), and metrics-server's aggregated
API.

Imports go one way: a kind module imports the model (and the values helpers); the model takes the union of the
kinds' classes from the registry only when pydantic first builds its schema (model.KindUnion).
"""

from __future__ import annotations

from .base import CONTROLLERS, INFRA, Kind
from .registry import KINDS, in_section, local_charts, of

__all__ = ["CONTROLLERS", "INFRA", "KINDS", "Kind", "in_section", "local_charts", "of"]
