"""One real request through all five services, as separate processes on the real broker/store."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import aio_pika
import httpx
import pytest
from desk_contracts import make_envelope
from desk_contracts.events import Person, RequestReceived
from desk_contracts.reply_token import verify_reply_token
from desk_contracts.topology import Topology

from tests.support.metrics import sample_sum
from tests.support.stack import Stack, auth, card_for, mongo_find, sla_auth, wait_until

pytestmark = pytest.mark.slow


def submit(stack: Stack, **overrides) -> dict:
    body = {
        "service": "problem",
        "requester": {"email": f"anna.{uuid.uuid4().hex[:6]}@acme.example", "name": "Anna"},
        "subject": "Mail does not sync",
        "text": "Since this morning my mailbox does not update.",
        "fields": {"system": "mail", "impact": 3},
    } | overrides
    # intake may still be taking in the catalog right after start-up
    def post():
        r = httpx.post(f"{stack['intake'].url}/v1/requests", json=body, timeout=10)
        return r if r.status_code != 404 else None
    r = wait_until(post, timeout=20)
    assert r.status_code == 202, r.text
    return {"request_id": r.json()["request_id"], "email": body["requester"]["email"]}


def test_one_request_crosses_all_five_services(stack, mail, mongo_url):
    sent = submit(stack)

    # boards: a numbered card in the service's target board / column / lane
    card = card_for(stack, sent["request_id"])
    assert card["number"].startswith("SD-")
    assert (card["board_id"], card["column_id"], card["lane_id"]) == ("support", "queue", "l1")
    assert card["status_category"] == "queued"
    assert card["fields"] == {"system": "mail", "impact": 3}

    # intake learns the number too (an integration holding the admin token can poll it)
    status = wait_until(lambda: httpx.get(
        f"{stack['intake'].url}/v1/requests/{sent['request_id']}",
        headers=auth(stack)).json().get("number"))
    assert status == card["number"]

    # sla: the request's clock runs from the service's policy
    record = wait_until(lambda: (r := httpx.get(
        f"{stack['sla'].url}/v1/cards/{card['id']}/sla", headers=sla_auth(stack))
    ).status_code == 200 and r.json())
    assert record["policy"] == "standard"
    targets = {t["target"]: t for t in record["targets"]}
    assert {"first_response", "resolution"} <= set(targets)
    assert targets["first_response"]["state"] == "running"
    assert targets["first_response"]["deadline"] is not None
    # boards shows that deadline on the card from the start (time left on the board)
    shown = wait_until(lambda: (httpx.get(f"{stack['boards'].url}/v1/cards/{card['id']}",
                                          headers=auth(stack)).json().get("sla") or {})
                       .get("first_response"))
    assert shown["state"] == "running"
    # and every other clock the request started
    sla_shown = wait_until(lambda: (s := httpx.get(
        f"{stack['boards'].url}/v1/cards/{card['id']}", headers=auth(stack)).json()["sla"])
        .keys() >= {"first_response", "resolution"} and s)
    for target in ("first_response", "resolution"):
        assert abs(datetime.fromisoformat(sla_shown[target]["deadline"])
                   - datetime.fromisoformat(targets[target]["deadline"])
                   ).total_seconds() < 0.01

    # notify: an acknowledgment e-mail really went through SMTP
    [ack] = mail.wait_for(sent["email"])
    assert ack["Subject"] == f"[{card['number']}] Mail does not sync"
    assert ack["X-Desk-Origin"] == "notify"
    reply_to = ack["Reply-To"]
    local = reply_to.split("@")[0]
    assert local.startswith("problem+")
    token = local.split("+", 1)[1]
    assert verify_reply_token(token, stack.REPLY_SECRET.encode()) == card["number"]
    body = ack.get_body(("plain",)).get_content()
    assert card["number"] in body and "Anna" in body
    assert ack.get_body(("html",)) is not None

    # portal: the customer's read model shows it with its customer-facing status
    rows = wait_until(lambda: mongo_find(mongo_url, f"{stack.namespace}_portal", "requests",
                                         {"requester_email": sent["email"]}))
    assert rows[0]["number"] == card["number"]
    assert rows[0]["customer_status"] == "Queued"
    messages = wait_until(lambda: mongo_find(mongo_url, f"{stack.namespace}_portal", "messages",
                                             {"card_id": card["id"]}))
    assert messages[0]["text"] == "Since this morning my mailbox does not update."


def test_invalid_fields_get_a_422_per_field(stack):
    r = httpx.post(f"{stack['intake'].url}/v1/requests", json={
        "service": "problem", "requester": {"email": "bob@acme.example"},
        "subject": "x", "fields": {"system": "other", "impact": "many"},
    })
    assert r.status_code == 422
    assert r.json()["details"]["fields"] == {
        "system_other": "is required", "impact": "must be a number"}


def test_idempotency_key_makes_one_request(stack):
    key = str(uuid.uuid4())
    body = {"service": "question", "requester": {"email": "carl@acme.example"},
            "subject": "How do I?", "text": "?"}
    first = httpx.post(f"{stack['intake'].url}/v1/requests", json=body,
                       headers={"Idempotency-Key": key})
    second = httpx.post(f"{stack['intake'].url}/v1/requests", json=body,
                        headers={"Idempotency-Key": key})
    # the repeat gets the first answer, marked as a replay
    assert first.status_code == 202 and second.status_code == 202
    assert first.json()["request_id"] == second.json()["request_id"]
    assert second.headers["Idempotent-Replayed"] == "true"


async def _publish(amqp_url: str, namespace: str, body: bytes, routing_key: str) -> None:
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        channel = await conn.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(Topology(namespace).exchange)
        await exchange.publish(aio_pika.Message(body=body), routing_key=routing_key)


def _request_event(service: str = "question") -> tuple[bytes, str, str]:
    request_id = f"bus-{uuid.uuid4()}"
    env = make_envelope(RequestReceived(
        request_id=request_id, channel="api", service_id=service,
        requester=Person(email="dora@acme.example", name="Dora"), subject="Via the bus",
        text="Published by an integrator.", received_at=datetime.now(UTC),
    ), account_id="default")
    return env.model_dump_json().encode(), env.routing_key, request_id


def test_same_request_received_twice_yields_one_card(stack, amqp_url):
    body, key, request_id = _request_event()
    asyncio.run(_publish(amqp_url, stack.namespace, body, key))
    asyncio.run(_publish(amqp_url, stack.namespace, body, key))
    card = card_for(stack, request_id)
    # the positive signal: boards has taken the second copy and recognised it
    wait_until(lambda: sample_sum(stack["boards"].url, "desk_bus_messages_consumed_total",
                                  queue=f"{stack.namespace}.boards.requests",
                                  outcome="duplicate") >= 1)
    r = httpx.get(f"{stack['boards'].url}/v1/cards", params={"request_id": request_id},
                  headers=auth(stack))
    assert [c["number"] for c in r.json()["items"]] == [card["number"]]


def test_malformed_message_is_dead_lettered_counted_and_queue_keeps_flowing(stack, amqp_url):
    asyncio.run(_publish(amqp_url, stack.namespace, b"{not json", "request.received.v1"))
    wrong = json.dumps({"event_id": str(uuid.uuid4()), "type": "request.received", "version": 1,
                        "occurred_at": datetime.now(UTC).isoformat(), "account_id": "default",
                        "correlation_id": "c", "payload": {"request_id": "x"}}).encode()
    asyncio.run(_publish(amqp_url, stack.namespace, wrong, "request.received.v1"))
    body, key, request_id = _request_event()
    asyncio.run(_publish(amqp_url, stack.namespace, body, key))
    card_for(stack, request_id)  # the good one behind the poison is processed

    def dead_count() -> float:
        return sample_sum(stack["boards"].url, "desk_bus_dead_lettered_total",
                          queue=f"{stack.namespace}.boards.requests")
    assert wait_until(lambda: dead_count() >= 2)

    async def dead_letters() -> list[dict]:
        conn = await aio_pika.connect(amqp_url)
        async with conn:
            ch = await conn.channel()
            q = await ch.get_queue(f"{stack.namespace}.boards.requests.dead", ensure=False)
            out = []
            while (m := await q.get(fail=False, no_ack=False)) is not None:
                out.append({"body": m.body, "reason": m.headers.get("x-dead-reason")})
                await m.nack(requeue=True)
                if len(out) >= 2:
                    break
            return out
    dead = asyncio.run(dead_letters())
    assert {d["reason"] for d in dead} == {"malformed envelope", "invalid payload"}
    assert b"{not json" in [d["body"] for d in dead]
