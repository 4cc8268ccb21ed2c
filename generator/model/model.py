"""The typed cluster model: what may be written in values/, and nothing else.

Every class forbids unknown keys, is frozen, and is strict (no "2" for 2). Field names are
camelCase in YAML. Rules that need more than one field of one object live here as validators;
rules that span objects (references, capacity, graphs) live in `checks.py`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetCoreSchemaHandler, model_validator
from pydantic.alias_generators import to_camel

from ..quantity import cpu_millis, memory_bytes

# ---------------------------------------------------------------- scalar types

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DURATION = re.compile(r"^([0-9]+)(s|m|h)$")
_DURATION_FACTOR = {"s": 1, "m": 60, "h": 3600}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_SHA_TAG = re.compile(r"^sha-[0-9a-f]{7,64}$")
_VERSION_TAG = re.compile(r"^v?[0-9]+\.[0-9]+(\.[0-9]+)?([-+._][A-Za-z0-9._-]+)?$")
MOVING_TAGS = frozenset({"latest", "stable", "main", "master", "edge", "dev", "develop", "nightly", "head"})


def _dns_label(value: str) -> str:
    if len(value) > 63 or not DNS1123_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a DNS-1123 label (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return value


def _cpu(value: str) -> str:
    cpu_millis(value)
    return value


def _memory(value: str) -> str:
    memory_bytes(value)
    return value


def duration_seconds(value: str) -> int:
    match = _DURATION.fullmatch(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 5m or 1h)")
    return int(match.group(1)) * _DURATION_FACTOR[match.group(2)]


def _duration(value: str) -> str:
    duration_seconds(value)
    return value


def _env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid environment variable name")
    return value


def _label_key(value: str) -> str:
    if len(value.split("/")[-1]) > 63 or not _LABEL_KEY.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid label key")
    return value


def _label_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid label value")
    return value


def _path(value: str) -> str:
    if not value.startswith("/") or " " in value or (len(value) > 1 and value.endswith("/")):
        raise ValueError(f"{value!r} is not a path prefix (start with '/', no trailing '/', no spaces)")
    return value


def _percent_or_int(value: int | str) -> int | str:
    if isinstance(value, str) and not re.fullmatch(r"^[0-9]{1,3}%$", value):
        raise ValueError(f"{value!r} is neither a count nor a percentage like '25%'")
    return value


def _tag(value: str) -> str:
    if len(value) > 128:
        raise ValueError(f"tag of {len(value)} characters is longer than the 128 OCI allows")
    if value.lower() in MOVING_TAGS:
        raise ValueError(f"tag {value!r} moves; use an immutable tag (v1.2.3, sha-<hex>) or a digest")
    if not (_SHA_TAG.fullmatch(value) or _VERSION_TAG.fullmatch(value)):
        raise ValueError(
            f"tag {value!r} is not immutable: use a full version (v1.2.3, 16.10, 3.13.7-management), "
            "a build tag sha-<hex>, or a digest"
        )
    return value


def _digest(value: str) -> str:
    if not _DIGEST.fullmatch(value):
        raise ValueError(f"{value!r} is not a digest (sha256: followed by 64 hex digits)")
    return value


Name = Annotated[str, AfterValidator(_dns_label)]
IN_CLUSTER = "https://kubernetes.default.svc"  # the API server of the cluster Argo CD runs in
Cpu = Annotated[str, AfterValidator(_cpu)]
Memory = Annotated[str, AfterValidator(_memory)]
Duration = Annotated[str, AfterValidator(_duration)]
EnvName = Annotated[str, AfterValidator(_env_name)]
LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, AfterValidator(_label_value)]
PathPrefix = Annotated[str, AfterValidator(_path)]
IntOrPercent = Annotated[Union[int, str], AfterValidator(_percent_or_int)]
Port = Annotated[int, Field(ge=1, le=65535)]
NodePort = Annotated[int, Field(ge=30000, le=32767)]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
DbName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]
QueueName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9._-]{0,62}$")]


class FieldError(ValueError):
    """A model validator's error that belongs to one field (or a field below it, by YAML key): the loader
    gives it that field's position instead of the enclosing object's."""

    def __init__(self, loc: tuple[str, ...], message: str):
        super().__init__(message)
        self.loc = loc


# A release field: its value is what a release changes (an image, an upstream chart's version), so `promote` copies it
# from one environment to the next and `envs` shows where environments differ. Every other field belongs to the
# environment (replicas, resources, nodes, hosts, storage, delivery) and stays as each environment writes it.
PROMOTABLE = "x-eco2-promotable"
Release = Field(json_schema_extra={PROMOTABLE: True})


class Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


# ---------------------------------------------------------------- shared pieces


class Image(Strict):
    """A container image pinned by an immutable tag, a digest, or both."""

    repository: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._/-]*[a-z0-9]$")]
    tag: Annotated[str, AfterValidator(_tag)] | None = None
    digest: Annotated[str, AfterValidator(_digest)] | None = None

    @model_validator(mode="after")
    def _pinned(self) -> Image:
        if self.tag is None and self.digest is None:
            raise ValueError("an image needs a tag or a digest (an untagged image means 'latest')")
        return self

    @property
    def ref(self) -> str:
        ref = self.repository
        if self.tag:
            ref += f":{self.tag}"
        if self.digest:
            ref += f"@{self.digest}"
        return ref


class ResourceAmounts(Strict):
    cpu: Cpu
    memory: Memory


class Resources(Strict):
    requests: ResourceAmounts
    limits: ResourceAmounts

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        if cpu_millis(self.requests.cpu) > cpu_millis(self.limits.cpu):
            raise FieldError(("requests", "cpu"), f"cpu request {self.requests.cpu} is above its limit {self.limits.cpu}")
        if memory_bytes(self.requests.memory) > memory_bytes(self.limits.memory):
            raise FieldError(("requests", "memory"),
                             f"memory request {self.requests.memory} is above its limit {self.limits.memory}")
        return self


class Taint(Strict):
    key: LabelKey
    value: LabelValue | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class Toleration(Strict):
    key: LabelKey | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: LabelValue | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None

    def tolerates(self, taint: Taint) -> bool:
        """Kubernetes' own rule (k8s.io/api/core/v1 Toleration.ToleratesTaint)."""
        if self.effect is not None and self.effect != taint.effect:
            return False
        if self.key is not None and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return (self.value or "") == (taint.value or "")


class Probe(Strict):
    """Exactly one of `path` (HTTP GET), `command` (exec) or `tcp`."""

    path: PathPrefix | None = None
    command: list[str] | None = None
    tcp: bool = False
    port: Port | None = None
    """Defaults to the workload's main port."""
    initial_delay_seconds: NonNegativeInt = 0
    period_seconds: PositiveInt = 10
    timeout_seconds: PositiveInt = 1
    failure_threshold: PositiveInt = 3

    @model_validator(mode="after")
    def _one_kind(self) -> Probe:
        kinds = [k for k, on in (("path", self.path is not None), ("command", self.command is not None), ("tcp", self.tcp)) if on]
        if len(kinds) != 1:
            raise ValueError(f"a probe needs exactly one of path, command or tcp (got {', '.join(kinds) or 'none'})")
        if self.timeout_seconds > self.period_seconds:
            raise FieldError(("timeoutSeconds",),
                             f"timeoutSeconds {self.timeout_seconds} is longer than periodSeconds {self.period_seconds}")
        return self


class Probes(Strict):
    liveness: Probe
    readiness: Probe


class SecretKeyRef(Strict):
    secret: Name
    key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$")]


class Storage(Strict):
    size: Memory
    storage_class: Name
    access_mode: Literal["ReadWriteOnce", "ReadWriteOncePod"] = "ReadWriteOnce"


class UpstreamChart(Strict):
    """A chart from a Helm repository, pinned to one version."""

    repo_url: str = Field(alias="repoURL", pattern=r"^https://")
    name: Name
    version: Annotated[str, Field(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")]


class Placement(Strict):
    """Where a workload runs. The node selector and tolerations are derived from the node unless given."""

    node: Name
    node_selector: dict[LabelKey, LabelValue] | None = None
    tolerations: list[Toleration] | None = None


# ---------------------------------------------------------------- cluster and nodes


class SystemReserve(Strict):
    cpu: Cpu
    memory: Memory


class Cluster(Strict):
    name: Name
    environment: Name
    kubernetes_version: Annotated[str, Field(pattern=r"^1\.[0-9]{2}$")]
    region: str
    domain: Annotated[str, Field(pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,}$")]
    repo_url: str = Field(alias="repoURL", pattern=r"^(https://|git@|ssh://)")
    target_revision: Annotated[str, Field(min_length=1)]
    pod_cidr: Annotated[str, Field(alias="podCIDR", pattern=r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$")]
    system_reserved: SystemReserve
    """Kept free on every node for kubelet, the container runtime and Calico; a node may raise it."""
    server: Annotated[str, Field(pattern=r"^https://[^\s/]+(/\S*)?$")] = IN_CLUSTER
    """The Kubernetes API server Argo CD deploys this environment to (the default: the cluster Argo CD runs in)."""


class Node(Strict):
    tier: Literal["control-plane", "api", "worker", "infra"]
    instance_type: str
    cpu: PositiveInt
    """vCPUs."""
    memory: Memory
    labels: dict[LabelKey, LabelValue]
    taints: list[Taint] = []
    system_reserved: SystemReserve | None = None


# ---------------------------------------------------------------- delivery


class CanaryStep(Strict):
    """Exactly one of setWeight or pause."""

    set_weight: int | None = None
    pause: Duration | None = None

    @model_validator(mode="after")
    def _one(self) -> CanaryStep:
        if (self.set_weight is None) == (self.pause is None):
            raise ValueError("a canary step is either setWeight or pause, not both and not neither")
        return self


class Analysis(Strict):
    template: Name
    interval: Duration
    success_threshold: Annotated[float, Field(gt=0, le=1)]
    failure_limit: NonNegativeInt
    window: Duration = "2m"
    """Range of the PromQL rate()."""


class RollingPolicy(Strict):
    max_surge: IntOrPercent
    max_unavailable: IntOrPercent
    min_ready_seconds: NonNegativeInt


class CanaryPolicy(Strict):
    steps: list[CanaryStep]
    analysis: Analysis | None = None
    scale_down_delay_seconds: NonNegativeInt = 30


class Delivery(Strict):
    rolling: RollingPolicy
    canary: CanaryPolicy


class RollingOverride(Strict):
    strategy: Literal["rolling"]
    max_surge: IntOrPercent | None = None
    max_unavailable: IntOrPercent | None = None
    min_ready_seconds: NonNegativeInt | None = None


class CanaryOverride(Strict):
    strategy: Literal["canary"]
    steps: list[CanaryStep] | None = None
    analysis: Analysis | None = None
    scale_down_delay_seconds: NonNegativeInt | None = None


DeliveryChoice = Annotated[Union[RollingOverride, CanaryOverride], Field(discriminator="strategy")]


# ---------------------------------------------------------------- workloads


class Hpa(Strict):
    min_replicas: PositiveInt
    max_replicas: PositiveInt
    target_cpu_utilization: Annotated[int, Field(ge=1, le=100)]

    @model_validator(mode="after")
    def _range(self) -> Hpa:
        if self.min_replicas > self.max_replicas:
            raise FieldError(("minReplicas",), f"minReplicas {self.min_replicas} is above maxReplicas {self.max_replicas}")
        return self


class Workload(Strict):
    image: Annotated[Image, Release]
    placement: Placement
    replicas: NonNegativeInt
    resources: Resources
    env: dict[EnvName, str] = {}
    secret_env: dict[EnvName, SecretKeyRef] = {}
    depends_on: list[Name] = []
    database: DbName | None = None
    """PostgreSQL database this workload uses; PostgreSQL creates one per name."""
    internet_egress: bool = False
    """Needs HTTPS to outside the cluster (external APIs, S3); otherwise egress stays inside."""
    namespace: Name
    project: Name


class ServiceDefaults(Strict):
    port: Port
    probes: Probes
    metrics_path: PathPrefix = "/metrics"


class ApiService(Workload):
    path: PathPrefix | None = None
    """Path prefix on the shared ALB; none means the service is internal only."""
    protocol: Literal["http", "grpc"] = "http"
    port: Port | None = None
    node_port: NodePort | None = None
    probes: Probes | None = None
    hpa: Hpa | None = None
    delivery: DeliveryChoice = RollingOverride(strategy="rolling")
    namespace: Name = "api"
    project: Name = "apis"

    @model_validator(mode="after")
    def _replicas_in_hpa_range(self) -> ApiService:
        if self.hpa and not self.hpa.min_replicas <= self.replicas <= self.hpa.max_replicas:
            raise FieldError(("replicas",),
                             f"replicas {self.replicas} is outside the HPA range {self.hpa.min_replicas}..{self.hpa.max_replicas}")
        return self


class Wal(Strict):
    """Worker-local SQLite database in WAL mode, synced to PostgreSQL in batches."""

    path: Annotated[str, Field(pattern=r"^/[^ ]+\.db$")]
    storage: Storage
    sync_interval: Duration


class Beat(Strict):
    """The Celery beat scheduler: one replica, Recreate, on the worker's node."""

    resources: Resources


class Worker(Workload):
    app: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:]*$")]
    """Celery application (celery -A)."""
    queues: Annotated[list[QueueName], Field(min_length=1)]
    pool: Literal["prefork", "eventlet", "gevent", "threads", "solo"]
    concurrency: PositiveInt
    wal: Wal
    beat: Beat | None = None
    metrics_port: Port = 9090
    probes: Probes
    termination_grace_period_seconds: PositiveInt = 60
    namespace: Name = "workers"
    project: Name = "workers"


# ---------------------------------------------------------------- messaging


class Exchange(Strict):
    type: Literal["topic", "direct", "fanout", "headers"]
    durable: bool = True


class QueueBinding(Strict):
    exchange: Name
    routing_key: Annotated[str, Field(min_length=1)]


class Queue(Strict):
    binding: QueueBinding
    ttl: Duration | None = None
    max_length: PositiveInt | None = None
    overflow: Literal["drop-head", "reject-publish", "reject-publish-dlx"] | None = None
    max_priority: Annotated[int, Field(ge=1, le=255)] | None = None
    dead_letter: QueueBinding | None = None
    """Where rejected and expired messages go."""
    alert_above: PositiveInt | None = None
    """Alert when more messages than this are ready (defaults to the monitoring threshold)."""


class Messaging(Strict):
    broker: Name
    """The RabbitMQ component that hosts these exchanges and queues."""
    dead_letter_queue: QueueName
    """The queue that collects dead letters; the only queue allowed to have no consumer."""
    exchanges: dict[Name, Exchange]
    queues: dict[QueueName, Queue]


# ---------------------------------------------------------------- infra


class Exporter(Strict):
    image: Annotated[Image, Release]
    resources: Resources
    port: Port


class Infra(Strict):
    namespace: Name
    placement: Placement
    depends_on: list[Name] = []
    project: Name = "data"


class StatefulInfra(Infra):
    image: Annotated[Image, Release]
    resources: Resources
    storage: Storage
    credentials_secret: Name


# The kinds of infra component (rabbitmq, postgresql, redis, kube-prometheus-stack) are in generator/kinds/.

class KindUnion:
    """The union of the model classes of every kind of one section, told apart by `type`: resolved from the registry
    (generator/kinds/) when pydantic first builds the schema of the model, because every kind module builds on the
    classes of this one (the classes that hold a union defer their schema with defer_build). Code that walks the
    model's types (the loader's "did you mean") asks union() for it."""

    def __init__(self, section: str):
        self.section = section

    def union(self) -> Any:
        from ..kinds import registry  # noqa: PLC0415  (see the docstring)

        classes = tuple(k.model for k in registry.in_section(self.section))
        return Annotated[Union[classes], Field(discriminator="type")]  # type: ignore[valid-type]

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return handler.generate_schema(self.union())


InfraComponent = Annotated[object, KindUnion("infra")]
ControllerComponent = Annotated[object, KindUnion("controllers")]



# ---------------------------------------------------------------- platform


class NamespaceSpec(Strict):
    pod_security: Literal["restricted", "baseline", "privileged"]
    default_deny: bool
    """Deny all ingress and egress not allowed by a workload's own NetworkPolicy."""


class IngressSettings(Strict):
    class_name: Name
    group: Name
    scheme: Literal["internet-facing", "internal"]
    target_type: Literal["instance", "ip"]
    listen_ports: list[Port]
    ssl_redirect: Port | None = None
    healthcheck_path: PathPrefix


class Controller(Strict):
    """A cluster controller from an upstream chart; platform controllers run on the master."""

    namespace: Name
    chart: Annotated[UpstreamChart, Release]
    placement: Placement
    replicas: PositiveInt = 1
    resources: Resources
    """Requests and limits of the controller's main container."""
    depends_on: list[Name] = []
    project: Name = "platform"


# The kinds of controller (argo-rollouts, aws-load-balancer-controller, aws-ebs-csi-driver, metrics-server) are in
# generator/kinds/ (ControllerComponent above).


ApiKind = Annotated[str, Field(pattern=r"^([a-z0-9.-]+/)?v[0-9a-z]+/[A-Z][A-Za-z0-9]*$")]


class ExternalCapabilities(Strict):
    """What the cluster has from outside this model, and who provides it (one sentence each)."""

    api_versions: dict[ApiKind, Annotated[str, Field(min_length=3)]] = {}
    """Custom resource kinds as group/version/Kind, e.g. argoproj.io/v1alpha1/Application: Argo CD (bootstrap)."""
    storage_classes: dict[Name, Annotated[str, Field(min_length=3)]] = {}
    ingress_classes: dict[Name, Annotated[str, Field(min_length=3)]] = {}
    metrics_api: Annotated[str, Field(min_length=3)] | None = None


class Project(Strict):
    description: str
    cluster_resources: list[Annotated[str, Field(pattern=r"^([a-z0-9.-]*/)?[A-Z][A-Za-z]+$")]] = []
    """Cluster-scoped kinds the project may create, as group/Kind ('' group for core: '/Namespace')."""


class ArgoCD(Strict):
    namespace: Name
    name_prefix: Annotated[str, Field(pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?-)?$", max_length=20)] = ""
    """Put before the name of every Application and AppProject of this environment, so that the environments one
    Argo CD manages never share a name ('staging-' gives staging-waste). Helm release names stay the component's."""
    root_project: Name
    root_app: Name
    projects: dict[Name, Project]
    revision_history_limit: PositiveInt = 10
    retry_limit: PositiveInt = 5
    retry_backoff: Duration = "5s"
    retry_backoff_factor: PositiveInt = 2
    retry_backoff_max: Duration = "3m"


class Platform(Strict):
    model_config = ConfigDict(defer_build=True)  # its controllers' union comes from the kinds (KindUnion)

    app: Name = "platform"
    """The Application that creates namespaces and their default-deny policies."""
    destination_namespace: Name = "default"
    project: Name = "platform"
    namespaces: dict[Name, NamespaceSpec]
    ingress: IngressSettings
    controllers: dict[Name, ControllerComponent]
    external: ExternalCapabilities = ExternalCapabilities()
    """Capabilities provided outside this model; everything else a rendered object uses needs a component."""


class ExternalSecret(Strict):
    """A Secret created outside this repository (by a person or a secret manager); never rendered."""

    description: str
    namespaces: Annotated[list[Name], Field(min_length=1)]
    keys: Annotated[list[Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$")]], Field(min_length=1)]


class Waiver(Strict):
    """Accept one validation finding for one object, on the record: the reason is printed on every run."""

    check: Annotated[str, Field(pattern=r"^[a-z]+(\.[a-z-]+)+$")]
    """The check's id as printed in brackets, e.g. policy.probes."""
    object: Annotated[str, Field(pattern=r"^[A-Za-z]+/([a-z0-9.-]+/)?[a-z0-9.-]+$")]
    """Kind/namespace/name (or Kind/name for cluster-scoped objects), e.g. StatefulSet/data/postgresql."""
    reason: Annotated[str, Field(min_length=10)]


# ---------------------------------------------------------------- the whole model

SECTIONS = (
    "environments", "cluster", "nodes", "argocd", "platform", "delivery", "serviceDefaults", "services",
    "workers", "messaging", "infra", "secrets", "waivers",
)


class Model(Strict):
    """The whole platform. Each top-level key lives in exactly one file of values/."""

    model_config = ConfigDict(defer_build=True)  # the unions of infra and controllers come from the kinds (KindUnion)

    environments: list[Name] = []
    """The environments, in promotion order (a release reaches the first, then each next one); each is the base
    model merged with values/environments/<env>.yaml, if there is one (environments.py). Empty: one environment,
    the base as written, named by cluster.environment."""
    cluster: Cluster
    nodes: dict[Name, Node]
    argocd: ArgoCD
    platform: Platform
    delivery: Delivery
    service_defaults: ServiceDefaults
    services: dict[Name, ApiService] = {}
    workers: dict[Name, Worker] = {}
    messaging: Messaging | None = None
    infra: dict[Name, InfraComponent] = {}
    secrets: dict[Name, ExternalSecret] = {}
    waivers: list[Waiver] = []
