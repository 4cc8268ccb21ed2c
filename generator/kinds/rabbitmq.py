"""rabbitmq: the message broker of messaging.broker (local chart charts/rabbitmq), its queues declared from the model."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field

from ..model.model import Model, Port, StatefulInfra, duration_seconds
from ..render import helmvalues as hv
from ..render.chartvalues import Common, InfraAlerts, Pos, Storage, Strict
from .base import INFRA, Kind, credentials, own_storage



class RabbitMQ(StatefulInfra):
    type: Literal["rabbitmq"]
    plugins: list[Annotated[str, Field(pattern=r"^rabbitmq_[a-z_]+$")]]
    amqp_port: Port = 5672
    management_port: Port = 15672
    metrics_port: Port = 15692


# ---------------------------------------------------------------- its chart's values


class RabbitExchange(Strict):
    """An entry of RabbitMQ's definitions.json (its field names are snake_case upstream)."""

    name: str
    vhost: str
    type: str
    durable: bool
    auto_delete: bool = Field(alias="auto_delete")
    internal: bool
    arguments: dict[str, Union[int, str]]


class RabbitQueue(Strict):
    name: str
    vhost: str
    durable: bool
    auto_delete: bool = Field(alias="auto_delete")
    arguments: dict[str, Union[int, str]]


class RabbitBinding(Strict):
    source: str
    vhost: str
    destination: str
    destination_type: Literal["queue", "exchange"] = Field(alias="destination_type")
    routing_key: str = Field(alias="routing_key")
    arguments: dict[str, Union[int, str]]


class RabbitDefinitions(Strict):
    vhosts: list[dict[str, str]]
    exchanges: list[RabbitExchange]
    queues: list[RabbitQueue]
    bindings: list[RabbitBinding]


class QueueAlert(Strict):
    queue: str
    ready_above: Pos


class RabbitAlerts(InfraAlerts):
    queues: list[QueueAlert]


class RabbitMQValues(Common):
    storage: Storage
    credentials_secret: str
    amqp_port: Port
    management_port: Port
    metrics_port: Port
    plugins: list[str]
    definitions: RabbitDefinitions
    alerts: RabbitAlerts


def definitions(model: Model) -> RabbitDefinitions:
    msg = model.messaging
    exchanges, queues, bindings = [], [], []
    if msg is not None:
        for name, ex in msg.exchanges.items():
            exchanges.append(RabbitExchange(name=name, vhost="/", type=ex.type, durable=ex.durable,
                                            auto_delete=False, internal=False, arguments={}))
        for name, q in msg.queues.items():
            args: dict[str, int | str] = {}
            if q.ttl:
                args["x-message-ttl"] = duration_seconds(q.ttl) * 1000
            if q.max_length:
                args["x-max-length"] = q.max_length
            if q.overflow:
                args["x-overflow"] = q.overflow
            if q.max_priority:
                args["x-max-priority"] = q.max_priority
            if q.dead_letter:
                args["x-dead-letter-exchange"] = q.dead_letter.exchange
                args["x-dead-letter-routing-key"] = q.dead_letter.routing_key
            queues.append(RabbitQueue(name=name, vhost="/", durable=True, auto_delete=False, arguments=dict(sorted(args.items()))))
            bindings.append(RabbitBinding(source=q.binding.exchange, vhost="/", destination=name, destination_type="queue",
                                          routing_key=q.binding.routing_key, arguments={}))
    return RabbitDefinitions(vhosts=[{"name": "/"}], exchanges=exchanges, queues=queues, bindings=bindings)


def values(plan: Any, comp: Any) -> RabbitMQValues:
    model = plan.model
    r: RabbitMQ = comp.spec
    mon = hv.monitoring_stack(plan)
    default_threshold = mon.thresholds.queue_ready if mon else 1000
    queue_alerts = []
    if model.messaging is not None:
        for name, q in model.messaging.queues.items():
            queue_alerts.append(QueueAlert(queue=name, ready_above=q.alert_above or default_threshold))
    return RabbitMQValues(
        **hv.infra_common(plan, comp, "message-queue"),
        amqp_port=r.amqp_port,
        management_port=r.management_port,
        metrics_port=r.metrics_port,
        plugins=list(r.plugins),
        definitions=definitions(model),
        alerts=RabbitAlerts(for_=hv.alert_for(plan), queues=queue_alerts),
    )


KIND = Kind(
    name="rabbitmq", section=INFRA, model=RabbitMQ, chart="rabbitmq", values_model=RabbitMQValues, values=values,
    endpoint=lambda r: ((r.amqp_port,), (r.metrics_port,)),
    connection_env=lambda host, r, workload: {"RABBITMQ_HOST": host, "RABBITMQ_PORT": str(r.amqp_port),
                                              "RABBITMQ_VHOST": "/"},
    storages=own_storage, secrets=credentials("username", "password"),
)
