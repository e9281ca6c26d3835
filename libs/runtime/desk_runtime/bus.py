"""The RabbitMQ connection: topology declaration and publishing with publisher confirms."""

from __future__ import annotations

import json

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from desk_contracts import Envelope
from desk_contracts.topology import QUEUES, Topology

from desk_runtime.metrics import BUS_OUT

CORRELATION_HEADER = "x-correlation-id"


def envelope_to_message(envelope: Envelope) -> aio_pika.Message:
    return aio_pika.Message(
        body=envelope.model_dump_json().encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(envelope.event_id),
        correlation_id=envelope.correlation_id,
        type=envelope.routing_key,
        timestamp=envelope.occurred_at,
        headers={CORRELATION_HEADER: envelope.correlation_id,
                 "x-causation-id": envelope.causation_id or ""},
    )


async def declare_topology(channel: AbstractChannel, topology: Topology) -> AbstractExchange:
    """Declare the exchange, every queue with its dead-letter queue, and the bindings."""
    exchange = await channel.declare_exchange(
        topology.exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    dead = await channel.declare_exchange(
        topology.dead_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    for spec in QUEUES:
        queue = await channel.declare_queue(
            topology.queue(spec), durable=True, arguments=topology.queue_arguments(spec)
        )
        for key in spec.bindings:
            await queue.bind(exchange, routing_key=key)
        dead_queue = await channel.declare_queue(
            topology.dead_queue(spec), durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dead_queue.bind(dead, routing_key=topology.queue(spec))
    return exchange


class Bus:
    """One robust connection per process; a confirming channel for publishing."""

    def __init__(self, url: str, topology: Topology, service: str):
        self.url = url
        self.topology = topology
        self.service = service
        self.connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._dead_exchange: AbstractExchange | None = None

    async def connect(self) -> None:
        self.connection = await aio_pika.connect_robust(
            self.url, client_properties={"connection_name": f"desk-{self.service}"}
        )
        self._publish_channel = await self.connection.channel(publisher_confirms=True)
        self._exchange = await declare_topology(self._publish_channel, self.topology)
        self._dead_exchange = await self._publish_channel.get_exchange(
            self.topology.dead_exchange, ensure=False
        )

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
            self.connection = None

    @property
    def ready(self) -> bool:
        return self.connection is not None and not self.connection.is_closed

    async def publish(self, envelope: Envelope) -> None:
        """Publish and wait for the broker's confirm (raises if it is not confirmed)."""
        assert self._exchange is not None, "Bus.connect() first"
        await self._exchange.publish(
            envelope_to_message(envelope), routing_key=envelope.routing_key, mandatory=False
        )
        BUS_OUT.labels(self.service, envelope.type).inc()

    async def publish_raw(self, body: bytes, routing_key: str, headers: dict | None = None) -> None:
        """For tools and tests that must put arbitrary bytes on the bus (e.g. poison)."""
        assert self._exchange is not None
        await self._exchange.publish(
            aio_pika.Message(body=body, headers=headers or {},
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=routing_key,
        )

    async def dead_letter(self, message: aio_pika.Message, queue_name: str) -> None:
        """Route a message to `queue_name`'s dead-letter queue (confirmed)."""
        assert self._dead_exchange is not None
        await self._dead_exchange.publish(message, routing_key=queue_name)

    async def channel(self, prefetch: int = 16) -> AbstractChannel:
        assert self.connection is not None
        ch = await self.connection.channel(publisher_confirms=True)
        await ch.set_qos(prefetch_count=prefetch)
        return ch


def decode_envelope(body: bytes) -> Envelope:
    return Envelope.model_validate(json.loads(body))


async def delete_topology(channel: AbstractChannel, topology: Topology) -> None:
    """Remove a namespace's queues and exchanges (test clean-up; never on the default one)."""
    if not topology.namespace:
        raise ValueError("refusing to delete the production topology")
    for spec in QUEUES:
        await channel.queue_delete(topology.queue(spec))
        await channel.queue_delete(topology.dead_queue(spec))
    await channel.exchange_delete(topology.exchange)
    await channel.exchange_delete(topology.dead_exchange)
