"""The bus on FastStream: one RabbitBroker per service, the topology, publishers per event.

FastStream (on aio-pika's robust connection) owns the connection, reconnection and
re-subscription after a broker restart; this module only says what the bus looks like
(the exchange, each queue with its dead-letter route, a documented publisher per event
type) and how an envelope becomes an AMQP message. The same declarations feed the
AsyncAPI document (`desk_runtime.asyncapi`), so the document is the code.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Literal

from desk_contracts import Envelope
from desk_contracts.events import EVENTS
from desk_contracts.topology import PARTITION_HEADER, QUEUES, RETIRED_BINDINGS, QueueSpec, Topology
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.publisher import RabbitPublisher
from faststream.rabbit.schemas.queue import QueueType
from pydantic import create_model

from desk_runtime.logging import get_logger
from desk_runtime.metrics import BUS_OUT

log = get_logger(__name__)

CORRELATION_HEADER = "x-correlation-id"
# how long a stop lets the handlers in flight finish (FastStream's graceful timeout)
GRACEFUL_TIMEOUT = 20.0
# how long closing the connection may take after that (then it is abandoned)
CLOSE_TIMEOUT = 5.0
CAUSATION_HEADER = "x-causation-id"


def events_exchange(topology: Topology) -> RabbitExchange:
    return RabbitExchange(topology.exchange, type=ExchangeType.TOPIC, durable=True)


def dead_exchange(topology: Topology) -> RabbitExchange:
    return RabbitExchange(topology.dead_exchange, type=ExchangeType.DIRECT, durable=True)


def hash_exchange(topology: Topology, spec: QueueSpec) -> RabbitExchange:
    """The logical queue's consistent-hash exchange: card → partition."""
    return RabbitExchange(topology.hash_exchange(spec), type=ExchangeType.X_CONSISTENT_HASH,
                          durable=True, arguments={"hash-header": PARTITION_HEADER})


def event_queue(topology: Topology, spec: QueueSpec, index: int) -> RabbitQueue:
    """One partition of a service's queue: quorum, single active consumer, delivery limit
    and dead-letter route (shared by the partitions)."""
    return RabbitQueue(topology.partition(spec, index), queue_type=QueueType.QUORUM,
                       durable=True, arguments=topology.queue_arguments(spec))


def partition_key(payload: dict[str, Any], event_id: str) -> str:
    """What orders events: the card (or the request it becomes); else nothing.

    The publisher puts it in the `x-partition-key` header (which partition a message
    goes to) and the consumer orders its in-flight messages by it (one at a time per key).
    """
    card = payload.get("card")
    if isinstance(card, dict) and card.get("card_id"):
        return str(card["card_id"])
    for key in ("card_id", "request_id", "parent_id"):
        if payload.get(key):
            return str(payload[key])
    return event_id


def dead_queue(topology: Topology, spec: QueueSpec) -> RabbitQueue:
    return RabbitQueue(topology.dead_queue(spec), queue_type=QueueType.QUORUM, durable=True,
                       routing_key=topology.queue(spec))


def typed_envelope(type_: str, version: int) -> type[Envelope]:
    """The envelope of one event, for the AsyncAPI document: `payload` is that event's model."""
    cls = EVENTS[(type_, version)]
    name = "".join(p.capitalize() for p in type_.replace("_", ".").split(".")) + f"V{version}"
    return create_model(  # type: ignore[call-overload]
        name, __base__=Envelope, __doc__=cls.SUMMARY,
        type=(Literal[type_], ...), version=(Literal[version], ...), payload=(cls, ...),
    )


def envelope_headers(envelope: Envelope) -> dict[str, str]:
    return {CORRELATION_HEADER: envelope.correlation_id,
            CAUSATION_HEADER: envelope.causation_id or "",
            PARTITION_HEADER: partition_key(envelope.payload, str(envelope.event_id))}


def decode_envelope(body: bytes) -> Envelope:
    return Envelope.model_validate(json.loads(body))


def make_broker(url: str, service: str, *, middlewares: tuple = (),
                logger: Any = None) -> RabbitBroker:
    return RabbitBroker(
        url,
        client_properties={"connection_name": f"desk-{service}"},
        # the service starts (and says "not ready") while the broker is away; aio-pika's
        # robust connection keeps trying and restores channels, queues and consumers
        fail_fast=False,
        reconnect_interval=2.0,
        graceful_timeout=GRACEFUL_TIMEOUT,
        middlewares=middlewares,
        logger=logger,
        log_level=logging.DEBUG,
        app_id=f"desk-{service}",
        description="Service desk domain events (envelope + payload, routing key "
                    "`<type>.v<version>` on the `desk.events` topic exchange).",
    )


class Bus:
    """A service's broker, the exchange and one documented publisher per event type."""

    def __init__(self, url: str, topology: Topology, service: str, *, middlewares: tuple = (),
                 logger: Any = None):
        self.url = url
        self.topology = topology
        self.service = service
        self.broker = make_broker(url, service, middlewares=middlewares, logger=logger)
        self.exchange = events_exchange(topology)
        self.dead = dead_exchange(topology)
        self.publishers: dict[tuple[str, int], RabbitPublisher] = declare_publishers(
            self.broker, topology)
        self._started = False

    async def start(self) -> None:
        """Connect (retrying in the background if the broker is away) and declare the topology.

        Every service declares the whole topology, so an event published before its
        consumer first starts waits in that consumer's queue.
        """
        await self.broker.connect()
        await declare_topology(self.broker, self.topology)
        await self.broker.start()
        self._started = True

    async def close(self, grace: float | None = None) -> None:
        """Stop consuming and close the connection, within a bound.

        FastStream lets the handlers in flight finish for up to its graceful timeout
        (`GRACEFUL_TIMEOUT`, or `grace` when given: a stop with the store away gives them
        less, since none of them can commit); then the subscribers' consumers are
        cancelled and the channel and connection closed. Should that close hang (a broker
        that stopped answering without closing the socket), it is abandoned after
        `CLOSE_TIMEOUT` more seconds: the process is stopping, and the broker hands back
        what it had delivered and was not acknowledged when the socket goes.
        """
        if not (self._started or self.broker._connection is not None):
            return
        self._started = False
        wait = GRACEFUL_TIMEOUT if grace is None else max(0.0, grace)
        self.broker.config.broker_config.graceful_timeout = wait or None
        try:
            await asyncio.wait_for(self.broker.stop(), wait + CLOSE_TIMEOUT)
        except TimeoutError:
            log.warning("bus.close_timed_out", after=wait + CLOSE_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 (closing: a dead channel may refuse the cancel)
            log.warning("bus.close_failed", error=repr(exc)[:300])
        finally:
            self.broker.config.broker_config.graceful_timeout = GRACEFUL_TIMEOUT

    @property
    def connection(self):
        return self.broker._connection

    @property
    def ready(self) -> bool:
        conn = self.broker._connection
        return bool(self._started and conn is not None and not conn.is_closed
                    and conn.connected.is_set())

    async def publish(self, envelope: Envelope) -> None:
        """Publish and wait for the broker's confirm (raises if it is not confirmed)."""
        publisher = self.publishers.get((envelope.type, envelope.version))
        kwargs = dict(
            headers=envelope_headers(envelope), correlation_id=envelope.correlation_id,
            message_id=str(envelope.event_id), message_type=envelope.routing_key,
            timestamp=envelope.occurred_at, content_type="application/json",
        )
        body = envelope.model_dump_json().encode()
        if publisher is not None:
            await publisher.publish(body, **kwargs)
        else:  # a type this code does not know (relayed for a newer producer)
            await self.broker.publish(body, exchange=self.exchange,
                                      routing_key=envelope.routing_key, persist=True,
                                      mandatory=False, **kwargs)
        BUS_OUT.labels(self.service, envelope.type).inc()

    async def publish_raw(self, body: bytes, routing_key: str, headers: dict | None = None) -> None:
        """For tools and tests that must put arbitrary bytes on the bus (e.g. poison)."""
        await self.broker.publish(body, exchange=self.exchange, routing_key=routing_key,
                                  headers=headers or {}, persist=True, mandatory=False)

    async def dead_letter(self, body: bytes, queue_name: str, headers: dict,
                          content_type: str | None, message_id: str | None) -> None:
        """Route a message to `queue_name`'s dead-letter queue (confirmed)."""
        await self.broker.publish(body, exchange=self.dead, routing_key=queue_name,
                                  headers=headers, content_type=content_type,
                                  message_id=message_id, persist=True, mandatory=False)


def declare_publishers(broker: RabbitBroker, topology: Topology
                       ) -> dict[tuple[str, int], RabbitPublisher]:
    exchange = events_exchange(topology)
    return {
        (type_, version): broker.publisher(
            exchange=exchange, routing_key=f"{type_}.v{version}", persist=True,
            mandatory=False, title=f"{type_}.v{version}", description=cls.SUMMARY,
            schema=typed_envelope(type_, version),
        )
        for (type_, version), cls in sorted(EVENTS.items())
    }


async def declare_topology(broker: RabbitBroker, topology: Topology) -> None:
    """Declare the exchanges, every queue's partitions with its dead-letter queue, and the
    bindings: topic exchange → (the queue's routing keys) → its consistent-hash exchange
    → (weight 1 each) → its partitions.

    Objects are declared through the broker's robust channel, so aio-pika declares them
    again (with their bindings) after a reconnection to a broker that lost them.
    """
    exchange = await broker.declare_exchange(events_exchange(topology))
    dead = await broker.declare_exchange(dead_exchange(topology))
    for spec in QUEUES:
        spread = await broker.declare_exchange(hash_exchange(topology, spec))
        for index in range(topology.partitions):
            queue = await broker.declare_queue(event_queue(topology, spec, index))
            await queue.bind(spread, routing_key="1", robust=True)
        for key in spec.bindings:
            await spread.bind(exchange, routing_key=key, robust=True)
        for key in RETIRED_BINDINGS.get(spec.name, ()):
            await spread.unbind(exchange, routing_key=key)  # a no-op where it never was
        parked = await broker.declare_queue(dead_queue(topology, spec))
        await parked.bind(dead, routing_key=topology.queue(spec), robust=True)


async def delete_topology(channel, topology: Topology) -> None:
    """Remove a namespace's queues and exchanges (test clean-up; never on the default one)."""
    if not topology.namespace:
        raise ValueError("refusing to delete the production topology")
    for spec in QUEUES:
        for name in topology.partition_queues(spec):
            await channel.queue_delete(name)
        await channel.queue_delete(topology.dead_queue(spec))
        await channel.exchange_delete(topology.hash_exchange(spec))
    await channel.exchange_delete(topology.exchange)
    await channel.exchange_delete(topology.dead_exchange)
