"""Notify as a real process with a real SMTP sink, fake Telegram and fake Slack servers.

Tests drive it the way the other services do: by publishing events on the real broker.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import aio_pika
import httpx
import pytest
from desk_contracts import Envelope, make_envelope
from desk_contracts.catalog import Localized, ServiceDefinition, ServiceTarget, StatusCategory
from desk_contracts.events import (
    CardCreated,
    CardSnapshot,
    CatalogServiceChanged,
    EventPayload,
    Person,
    RequestOrigin,
)
from desk_contracts.topology import Topology
from pymongo import MongoClient

from tests.support.fake_slack import FakeSlack
from tests.support.fake_telegram import FakeTelegram
from tests.support.mail import MailSink
from tests.support.stack import Stack, auth, cleanup, wait_until

TG_TOKEN = "123456:TEST-notify-token"
SLACK_TOKEN = "xoxb-notify-test"

SERVICES = {
    "problem": ServiceDefinition(
        id="problem", name=Localized(en="Something is broken", ru="Что-то сломалось"),
        language="en", target=ServiceTarget(board_id="support", column_id="queue", lane_id="l1"),
        auto_reply=Localized(en="We answer within one business day."),
        notify_on=(StatusCategory.IN_PROGRESS, StatusCategory.DONE)),
    "vopros": ServiceDefinition(
        id="vopros", name=Localized(en="Question", ru="Вопрос"), language="ru",
        target=ServiceTarget(board_id="support", column_id="queue", lane_id="l1"),
        auto_reply=Localized(en="We answer soon.", ru="Ответим в течение дня."),
        notify_on=(StatusCategory.DONE,)),
}


class Desk:
    """The notify process plus a publisher and a read view of its store."""

    def __init__(self, stack: Stack, mongo_url: str, amqp_url: str, mail: MailSink,
                 tg: FakeTelegram, slack: FakeSlack):
        self.stack = stack
        self.url = stack["notify"].url
        self.admin = httpx.Client(base_url=self.url, headers=auth(stack), timeout=20)
        self.amqp_url = amqp_url
        self.mail, self.tg, self.slack = mail, tg, slack
        self.mongo = MongoClient(mongo_url, tz_aware=True)
        self.db = self.mongo[f"{stack.namespace}_notify"]
        self._versions: dict[str, int] = {}

    def publish(self, *items: EventPayload | Envelope) -> list[Envelope]:
        envelopes = [i if isinstance(i, Envelope) else make_envelope(i, account_id="default")
                     for i in items]

        async def run() -> None:
            conn = await aio_pika.connect(self.amqp_url)
            async with conn:
                channel = await conn.channel(publisher_confirms=True)
                exchange = await channel.get_exchange(Topology(self.stack.namespace).exchange)
                for env in envelopes:
                    await exchange.publish(
                        aio_pika.Message(body=env.model_dump_json().encode(),
                                         content_type="application/json",
                                         message_id=str(env.event_id)),
                        routing_key=env.routing_key)

        asyncio.run(run())
        return envelopes

    def card(self, *, service: str = "problem", email: str | None = None,
             name: str | None = "Anna", chat_id: int | None = None, channel: str = "email",
             status: StatusCategory = StatusCategory.QUEUED, column: str = "queue",
             lane: str = "l1", board: str = "support", request_id: str | None = None,
             card_id: str | None = None, number: str | None = None,
             customer_fields: dict | None = None, title: str = "Mail does not sync"
             ) -> CardSnapshot:
        card_id = card_id or str(uuid.uuid4())
        version = self._versions[card_id] = self._versions.get(card_id, 0) + 1
        now = datetime.now(UTC)
        svc = SERVICES.get(service)
        return CardSnapshot(
            card_id=card_id, number=number or f"SD-{uuid.uuid4().int % 10**6}",
            version=version, title=title, service_id=service, board_id=board,
            column_id=column, lane_id=lane, status_category=status,
            customer_status=svc.status_name(status) if svc else str(status),
            priority="medium",
            requester=Person(email=email, name=name, telegram_chat_id=chat_id,
                             telegram_user_id=chat_id),
            channel=channel, request_id=request_id, customer_fields=customer_fields or {},
            created_at=now, updated_at=now)

    def next_version(self, card: CardSnapshot, **changes) -> CardSnapshot:
        version = self._versions[card.card_id] = self._versions[card.card_id] + 1
        return card.model_copy(update={"version": version, "updated_at": datetime.now(UTC),
                                       **changes})

    def create(self, card: CardSnapshot, request: RequestOrigin | None = None) -> Envelope:
        """boards' card.created; `request`: what it carries of the request it was made from."""
        return self.publish(CardCreated(card=card, request=request))[0]

    def deliveries(self, **query) -> list[dict]:
        return list(self.db["deliveries"].find(query))

    def wait_delivery(self, state: str, **query) -> list[dict]:
        return wait_until(lambda: [d for d in self.deliveries(**query) if d["status"] == state])


@pytest.fixture
def sink():
    """A mail sink of the test's own, for a dispatcher run inside the test."""
    with MailSink() as mail:
        yield mail


@pytest.fixture(scope="module")
def mail():
    with MailSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def tg():
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture(scope="module")
def slack():
    with FakeSlack(bot_token=SLACK_TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def desk(mongo_url, amqp_url, mail, tg, slack, tmp_path_factory):
    stack = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("notify"), smtp_port=mail.port,
                  extra={"notify": {
                      "NOTIFY_TELEGRAM__TOKEN": TG_TOKEN,
                      "NOTIFY_TELEGRAM__API_BASE": tg.base_url,
                      "NOTIFY_SLACK__BOT_TOKEN": SLACK_TOKEN,
                      "NOTIFY_SLACK__API_BASE": slack.api_base,
                      "NOTIFY_MAX_ATTEMPTS": "3",
                      "NOTIFY_RETRY_BASE_SECONDS": "0.1",
                  }})
    stack.start(("notify",))
    d = Desk(stack, mongo_url, amqp_url, mail, tg, slack)
    d.publish(*[CatalogServiceChanged(service=s, revision=1) for s in SERVICES.values()])
    wait_until(lambda: d.db["catalog"].count_documents({}) == len(SERVICES))
    yield d
    stack.stop()
    d.mongo.close()
    cleanup(mongo_url, amqp_url, stack.namespace)
