"""The values each local chart accepts: one pydantic model per chart, the source of its values.schema.json.

The renderers build these models from the cluster model, so a values file the generator writes is
valid by construction, and a misspelt value a person passes to a chart fails `helm template`.
Shapes that Kubernetes already defines (probes, tolerations, NetworkPolicy rules) keep Kubernetes'
field names so templates can emit them with `toYaml`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from ..model.model import Memory, Resources, Strict

Port = Annotated[int, Field(ge=1, le=65535)]
NonNeg = Annotated[int, Field(ge=0)]
Pos = Annotated[int, Field(ge=1)]


# ---------------------------------------------------------------- shared shapes


class ImageValues(Strict):
    repository: str
    tag: str | None = None
    digest: str | None = None
    pull_policy: Literal["IfNotPresent", "Always"] = "IfNotPresent"


class HttpGet(Strict):
    path: str
    port: Union[Port, str]


class ExecAction(Strict):
    command: list[str]


class TcpSocket(Strict):
    port: Union[Port, str]


class ProbeValues(Strict):
    """A Kubernetes Probe, restricted to what the model can express."""

    http_get: HttpGet | None = None
    exec: ExecAction | None = None
    tcp_socket: TcpSocket | None = None
    initial_delay_seconds: NonNeg
    period_seconds: Pos
    timeout_seconds: Pos
    failure_threshold: Pos


class ProbesValues(Strict):
    liveness: ProbeValues
    readiness: ProbeValues


class TolerationValues(Strict):
    key: str
    operator: Literal["Equal", "Exists"]
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class EnvVar(Strict):
    name: str
    value: str


class SecretEnvVar(Strict):
    name: str
    secret: str
    key: str


class MatchLabels(Strict):
    match_labels: dict[str, str]


class IpBlock(Strict):
    cidr: str
    except_: list[str] = Field([], alias="except")


class Peer(Strict):
    """A NetworkPolicy peer: namespace and/or pod selector, or an IP block."""

    namespace_selector: MatchLabels | None = None
    pod_selector: MatchLabels | None = None
    ip_block: IpBlock | None = None


class PolicyPort(Strict):
    port: Port
    protocol: Literal["TCP", "UDP"] = "TCP"


class PolicyRule(Strict):
    """Traffic to (egress) or from (ingress) these peers on these ports. No peers means any peer."""

    why: str
    peers: list[Peer]
    ports: list[PolicyPort]


class NetworkPolicyValues(Strict):
    ingress: list[PolicyRule]
    egress: list[PolicyRule]


class Placement(Strict):
    node_selector: dict[str, str]
    tolerations: list[TolerationValues]


class Storage(Strict):
    size: Memory
    storage_class: str
    access_mode: Literal["ReadWriteOnce", "ReadWriteOncePod"]


class ServiceMonitorValues(Strict):
    interval: str = "30s"
    scrape_timeout: str = "10s"


class Common(Strict):
    """Fields every local workload chart has."""

    part_of: str
    """app.kubernetes.io/part-of on every object."""
    component: str
    """app.kubernetes.io/component on every object."""
    image: ImageValues
    resources: Resources
    placement: Placement
    network_policy: NetworkPolicyValues
    service_monitor: ServiceMonitorValues


# ---------------------------------------------------------------- api


class ServiceValues(Strict):
    type: Literal["NodePort", "ClusterIP"]
    port: Port
    node_port: Annotated[int, Field(ge=30000, le=32767)] | None = None


class IngressValues(Strict):
    enabled: bool
    class_name: str
    host: str
    path: str
    annotations: dict[str, str]


class HpaValues(Strict):
    enabled: bool
    min_replicas: Pos
    max_replicas: Pos
    target_cpu_utilization: Annotated[int, Field(ge=1, le=100)]


class RollingValues(Strict):
    max_surge: Union[int, str]
    max_unavailable: Union[int, str]


class CanaryStepValues(Strict):
    """Exactly one of setWeight or pause (a duration), as an Argo Rollouts canary step."""

    model_config = {**Strict.model_config, "json_schema_extra": {"minProperties": 1, "maxProperties": 1}}

    set_weight: Annotated[int, Field(ge=1, le=99)] | None = None
    pause: str | None = None


class AnalysisValues(Strict):
    template_name: str
    interval: str
    success_threshold: Annotated[float, Field(gt=0, le=1)]
    failure_limit: NonNeg
    window: str
    prometheus_address: str
    starting_step: NonNeg = 1


class CanaryValues(Strict):
    steps: list[CanaryStepValues]
    scale_down_delay_seconds: NonNeg
    analysis: AnalysisValues | None = None
    """Background analysis of the canary pods; none means the steps alone decide."""


class ApiAlerts(Strict):
    error_ratio: Annotated[float, Field(gt=0, le=1)]
    latency_p95_seconds: float
    for_: str = Field(alias="for")


class ApiValues(Common):
    # The chart reads `rolling` for strategy rolling and `canary` for strategy canary: require the one
    # that applies and forbid the other, so a values file cannot carry a block the chart ignores.
    model_config = {**Strict.model_config, "json_schema_extra": {"allOf": [{
        "if": {"properties": {"strategy": {"const": "canary"}}},
        "then": {"required": ["canary"], "properties": {"rolling": False}},
        "else": {"required": ["rolling"], "properties": {"canary": False}},
    }]}}

    replicas: NonNeg
    port: Port
    metrics_path: str
    probes: ProbesValues
    env: list[EnvVar]
    secret_env: list[SecretEnvVar]
    service: ServiceValues
    ingress: IngressValues
    hpa: HpaValues
    pdb_min_available: NonNeg
    strategy: Literal["rolling", "canary"]
    min_ready_seconds: NonNeg
    rolling: RollingValues | None = None
    canary: CanaryValues | None = None
    alerts: ApiAlerts


# ---------------------------------------------------------------- worker


class CeleryValues(Strict):
    app: str
    queues: list[str]
    pool: Literal["prefork", "eventlet", "gevent", "threads", "solo"]
    concurrency: Pos
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class WalValues(Strict):
    path: str
    mount_path: str
    storage: Storage
    sync_interval_seconds: Pos


class BeatValues(Strict):
    enabled: bool
    resources: Resources | None = None


class WorkerAlerts(Strict):
    failure_ratio: float
    for_: str = Field(alias="for")


class WorkerValues(Common):
    replicas: NonNeg
    celery: CeleryValues
    wal: WalValues
    beat: BeatValues
    metrics_port: Port
    probes: ProbesValues
    env: list[EnvVar]
    secret_env: list[SecretEnvVar]
    termination_grace_period_seconds: Pos
    pdb_max_unavailable: Pos
    alerts: WorkerAlerts


# ---------------------------------------------------------------- infra


class Exporter(Strict):
    image: ImageValues
    resources: Resources
    port: Port


class InfraAlerts(Strict):
    for_: str = Field(alias="for")


# The values of each kind's local chart (rabbitmq, postgresql, redis) are in its module under generator/kinds/.


# ---------------------------------------------------------------- platform


class NamespaceValues(Strict):
    name: str
    pod_security: Literal["restricted", "baseline", "privileged"]
    default_deny: bool


class PlatformValues(Strict):
    part_of: str
    namespaces: list[NamespaceValues]
