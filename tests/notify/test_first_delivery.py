"""On an event's first delivery notify writes what it creates blind (inserts, no reads, no
upserts); when those records exist after all, the attempt fails on the duplicate key and
the redelivery takes the careful path. The customer still gets exactly one mail and
nothing is dead-lettered.

Notify as a process, the real broker, store and SMTP sink (tests/notify/conftest.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from desk_contracts import make_envelope
from desk_contracts.events import CardCreated, CardUpdated
from desk_contracts.topology import Topology
from desk_runtime.deadletters import list_dead

from tests.notify.conftest import Desk
from tests.support.metrics import sample_sum
from tests.support.stack import wait_until

pytestmark = pytest.mark.slow


def addr(tag: str) -> str:
    return f"{tag}.{uuid.uuid4().hex[:8]}@acme.example"


def retries(desk: Desk) -> float:
    return sample_sum(desk.url, "desk_bus_messages_consumed_total", event_type="card.created",
                      outcome="retried")


def dead_letters(desk: Desk, event_id: uuid.UUID) -> list[dict]:
    dead = asyncio.run(list_dead(desk.amqp_url, Topology(desk.stack.namespace),
                                 "notify.events", 1000))
    return [d for d in dead if d["message_id"] == str(event_id)]


def processed(desk: Desk, event_id: uuid.UUID) -> bool:
    return desk.db["processed_events"].count_documents(
        {"_id": {"$regex": f":{event_id}$"}}) == 1


def test_a_card_created_after_another_event_of_its_card_mails_once(desk: Desk):
    """The card copy exists (a card.updated of the same card came first, with its own
    event id): the blind insert of the card fails the first attempt, the redelivery
    keeps the newer snapshot, adds the mail thread and records the acknowledgment."""
    email = addr("early")
    card = desk.card(email=email)
    newer = desk.next_version(card, title="Mail does not sync at all")
    desk.publish(CardUpdated(card=newer, changed=("title",)))
    wait_until(lambda: desk.db["cards"].find_one({"_id": card.card_id}))
    before = retries(desk)

    created = desk.create(card)
    [ack] = desk.mail.wait_for(email)
    wait_until(lambda: processed(desk, created.event_id))
    assert ack["Subject"] == f"[{card.number}] Mail does not sync"
    assert retries(desk) - before >= 1  # the blind first attempt failed, as it should
    copy = desk.db["cards"].find_one({"_id": card.card_id})
    assert copy["version"] == newer.version and copy["snapshot"]["title"] == newer.title
    assert copy["thread"]["root"].endswith("@desk.localhost")
    time.sleep(1.0)  # a second mail would have gone out by now
    assert len(desk.mail.to(email)) == 1
    assert dead_letters(desk, created.event_id) == []


def test_a_card_created_whose_card_and_deliveries_exist_mails_nothing_more(desk: Desk):
    """The same card.created again after its processed-event record is gone (those are
    kept 30 days, deliveries 90): card copy and delivery both exist, the blind attempt
    fails, the careful one finds everything done. One mail in all, no dead letter."""
    email = addr("again")
    card = desk.card(email=email)
    [envelope] = desk.publish(make_envelope(CardCreated(card=card), account_id="default"))
    desk.mail.wait_for(email)
    wait_until(lambda: processed(desk, envelope.event_id))
    [delivery] = desk.wait_delivery("sent", card_id=card.card_id)
    before = retries(desk)

    desk.db["processed_events"].delete_many({"_id": {"$regex": f":{envelope.event_id}$"}})
    desk.publish(envelope)
    wait_until(lambda: processed(desk, envelope.event_id))
    assert retries(desk) - before >= 1
    time.sleep(1.0)
    assert len(desk.mail.to(email)) == 1
    [again] = desk.deliveries(card_id=card.card_id)
    assert again["_id"] == delivery["_id"] and again["status"] == "sent"
    assert dead_letters(desk, envelope.event_id) == []
