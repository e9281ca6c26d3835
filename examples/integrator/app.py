"""An integrator's FastStream app: hears every card change and files requests on the bus.

What a third party writes to connect a CRM or a monitoring system to the desk, in one
file. It declares its own durable queue bound to `card.*.v1` on the desk's topic
exchange, validates every message with the desk's published contracts (the same
`desk_contracts` models the desk itself uses; the AsyncAPI document in docs/ describes
the same thing), and publishes a `request.received` that boards turns into a card.

    DESK_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ faststream run examples.integrator.app:app

Settings: DESK_AMQP_URL, DESK_BUS_NAMESPACE (empty in production; tests isolate with it),
INTEGRATOR_QUEUE (the queue's name; default `crm.cards`).
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

from desk_contracts import Envelope, make_envelope
from desk_contracts.events import CardCreated, Person, RequestReceived
from desk_contracts.topology import Topology
from faststream import FastStream, Logger
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.schemas.queue import QueueType

topology = Topology(os.environ.get("DESK_BUS_NAMESPACE", ""))
broker = RabbitBroker(os.environ.get("DESK_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
app = FastStream(broker)

events = RabbitExchange(topology.exchange, type=ExchangeType.TOPIC, durable=True)
cards = RabbitQueue(topology.name(os.environ.get("INTEGRATOR_QUEUE", "crm.cards")),
                    queue_type=QueueType.QUORUM, durable=True, routing_key="card.*.v1")
new_requests = broker.publisher(exchange=events, routing_key="request.received.v1",
                                persist=True, title="request.received.v1")

# what this app has seen, for a test (a real integrator would update its CRM here)
seen: list[Envelope] = []


@broker.subscriber(cards, events)
async def on_card(envelope: Envelope, logger: Logger) -> None:
    """Every card change; a `card.created` also carries the whole card."""
    seen.append(envelope)
    if envelope.type == "card.created":
        card = CardCreated.model_validate(envelope.payload).card
        logger.info("card %s created: %s", card.number, card.title)


async def file_request(service_id: str, email: str, subject: str, text: str) -> str:
    """Publish a new request, as the monitoring system would; returns its request id."""
    request_id = f"crm-{uuid.uuid4()}"
    payload = RequestReceived(request_id=request_id, channel="api", service_id=service_id,
                              requester=Person(email=email), subject=subject, text=text,
                              received_at=datetime.now(UTC))
    envelope = make_envelope(payload, account_id="default")
    await new_requests.publish(envelope.model_dump(mode="json"),
                               message_id=str(envelope.event_id),
                               correlation_id=envelope.correlation_id)
    return request_id
