"""redis: the cache and result backend (local chart charts/redis), its logical databases named in the model."""

from __future__ import annotations

from typing import Annotated, Any, Iterator, Literal

from pydantic import Field

from ..errors import Finding
from ..model.model import Exporter, Memory, Model, Port, StatefulInfra
from ..quantity import memory_bytes
from ..render import helmvalues as hv
from ..render.chartvalues import Common, Exporter as ExporterValues, InfraAlerts, Pos, Storage
from .base import INFRA, Kind, credentials, own_storage



class Redis(StatefulInfra):
    type: Literal["redis"]
    port: Port = 6379
    maxmemory: Memory
    maxmemory_policy: Literal["noeviction", "allkeys-lru", "volatile-lru", "allkeys-lfu", "volatile-lfu"]
    databases: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")], Annotated[int, Field(ge=0, le=15)]]
    """What each logical database index holds."""
    exporter: Exporter


class RedisValues(Common):
    storage: Storage
    credentials_secret: str
    port: Port
    maxmemory_bytes: Pos
    maxmemory_policy: str
    databases: dict[str, Annotated[int, Field(ge=0, le=15)]]
    exporter: ExporterValues
    alerts: InfraAlerts


def values(plan: Any, comp: Any) -> RedisValues:
    r: Redis = comp.spec
    return RedisValues(
        **hv.infra_common(plan, comp, "cache"),
        port=r.port,
        maxmemory_bytes=memory_bytes(r.maxmemory),
        maxmemory_policy=r.maxmemory_policy,
        databases=dict(sorted(r.databases.items(), key=lambda kv: kv[1])),
        exporter=hv.exporter(r.exporter),
        alerts=InfraAlerts(for_=hv.alert_for(plan)),
    )


def connection_env(host: str, r: Redis, workload: Any) -> dict[str, str]:
    env = {"REDIS_HOST": host, "REDIS_PORT": str(r.port)}
    for what, index in r.databases.items():
        env[f"REDIS_DB_{what.upper().replace('-', '_')}"] = str(index)
    return env


def memory_below_limit(model: Model, name: str, r: Redis) -> Iterator[Finding]:
    if memory_bytes(r.maxmemory) >= memory_bytes(r.resources.limits.memory):
        yield Finding(("infra", name, "maxmemory"), f"maxmemory {r.maxmemory} must stay below the memory limit "
                                                    f"{r.resources.limits.memory} (the OOM killer would strike first)")


def databases_unique(model: Model, name: str, r: Redis) -> Iterator[Finding]:
    seen: dict[int, str] = {}
    for what, index in r.databases.items():
        if index in seen:
            yield Finding(("infra", name, "databases", what), f"index {index} is already used by {seen[index]}")
        seen.setdefault(index, what)


KIND = Kind(
    name="redis", section=INFRA, model=Redis, chart="redis", values_model=RedisValues, values=values,
    endpoint=lambda r: ((r.port,), (r.exporter.port,)), connection_env=connection_env,
    storages=own_storage, secrets=credentials("password"), checks=(memory_below_limit, databases_unique),
)
