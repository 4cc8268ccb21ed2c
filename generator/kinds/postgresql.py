"""postgresql: the database server (local chart charts/postgresql); its databases are those its clients declare."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ..model.model import Exporter, Port, StatefulInfra
from ..render import helmvalues as hv
from ..render.chartvalues import Common, Exporter as ExporterValues, InfraAlerts, Storage
from .base import INFRA, Kind, credentials, own_storage


class PostgreSQL(StatefulInfra):
    type: Literal["postgresql"]
    port: Port = 5432
    exporter: Exporter


class PostgreSQLValues(Common):
    storage: Storage
    credentials_secret: str
    port: Port
    databases: list[Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")]]
    exporter: ExporterValues
    alerts: InfraAlerts


def values(plan: Any, comp: Any) -> PostgreSQLValues:
    model = plan.model
    p: PostgreSQL = comp.spec
    clients = [model.services.get(c) or model.workers[c] for c in plan.clients.get(comp.name, ())]
    databases = sorted({wl.database for wl in clients if wl.database})
    return PostgreSQLValues(
        **hv.infra_common(plan, comp, "database"),
        port=p.port,
        databases=databases,
        exporter=hv.exporter(p.exporter),
        alerts=InfraAlerts(for_=hv.alert_for(plan)),
    )


def connection_env(host: str, p: PostgreSQL, workload: Any) -> dict[str, str]:
    env = {"DATABASE_HOST": host, "DATABASE_PORT": str(p.port)}
    if workload.database:
        env["DATABASE_NAME"] = workload.database
    return env


KIND = Kind(
    name="postgresql", section=INFRA, model=PostgreSQL, chart="postgresql", values_model=PostgreSQLValues,
    values=values, single=True, endpoint=lambda p: ((p.port,), (p.exporter.port,)), connection_env=connection_env,
    storages=own_storage, secrets=credentials("username", "password"),
)
