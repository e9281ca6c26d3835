"""Notify as a process: real SMTP (aiosmtpd), fake Telegram/Slack speaking their HTTP APIs."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import aio_pika
import httpx
import pytest
from desk_contracts.catalog import Localized, StatusCategory
from desk_contracts.events import (
    AddressBounced,
    AttachmentRef,
    Author,
    CardCreated,
    CardMoved,
    CatalogServiceChanged,
    CommentAdded,
    CustomerPreferencesChanged,
    RequestOrigin,
    SlaBreached,
    SlaCustomerReminder,
)
from desk_contracts.reply_token import verify_reply_token
from desk_contracts.signed_link import verify_link
from desk_contracts.topology import Topology

from tests.notify.conftest import SERVICES, Desk
from tests.support.fake_slack import POST_MESSAGE, WEBHOOK
from tests.support.infra import free_port
from tests.support.metrics import sample_sum
from tests.support.stack import Stack, wait_until

pytestmark = pytest.mark.slow


def addr(tag: str) -> str:
    return f"{tag}.{uuid.uuid4().hex[:8]}@acme.example"


def comment(card, *, visibility="public", kind="agent", text="Please restart the client.",
            attachments=()) -> CommentAdded:
    return CommentAdded(comment_id=str(uuid.uuid4()), card_id=card.card_id, number=card.number,
                        visibility=visibility, author=Author(kind=kind, id="a1", name="Boris"),
                        text=text if visibility == "public" else None, attachments=attachments,
                        created_at=datetime.now(UTC),
                        reply_id=f"reply-{uuid.uuid4()}" if kind == "customer" else None)


def move(desk: Desk, card, *, status, column, lane=None):
    moved = desk.next_version(card, status_category=status, column_id=column,
                              lane_id=lane or card.lane_id,
                              customer_status=str(status))
    desk.publish(CardMoved(card=moved, from_column_id=card.column_id,
                           from_lane_id=card.lane_id, from_category=card.status_category))
    return moved


def settle(desk: Desk, card_id: str) -> None:
    """Wait until nothing for this card is still queued (so absence checks mean something)."""
    wait_until(lambda: not [d for d in desk.deliveries(card_id=card_id)
                            if d["status"] in ("pending", "retrying")])


# --- e-mail to customers ----------------------------------------------------------------
def test_acknowledgment_mail_threads_signs_reply_to_and_has_both_parts(desk: Desk):
    email = addr("anna")
    request_id = f"r-{uuid.uuid4()}"
    card = desk.card(email=email, request_id=request_id)
    desk.create(card, RequestOrigin(received_at=datetime.now(UTC), text="Help",
                                    channel_ref="<CAF1234@mail.acme.example>"))
    [ack] = desk.mail.wait_for(email)
    assert ack["Subject"] == f"[{card.number}] Mail does not sync"
    assert ack["X-Desk-Origin"] == "notify" and ack["Auto-Submitted"] == "auto-generated"
    assert ack["In-Reply-To"] == "<CAF1234@mail.acme.example>"
    assert ack["References"] == "<CAF1234@mail.acme.example>"
    assert ack["Message-ID"].endswith("@desk.localhost>")
    local = ack["Reply-To"].split("@")[0]
    assert local.startswith("problem+")
    assert verify_reply_token(local.split("+", 1)[1], Stack.REPLY_SECRET.encode()) == card.number
    text = ack.get_body(("plain",)).get_content()
    html = ack.get_body(("html",)).get_content()
    assert "Hello Anna," in text and card.number in text
    assert "We answer within one business day." in text
    assert f"/requests/{card.card_id}" in text
    assert '<html lang="en">' in html and card.number in html


def test_service_language_is_used(desk: Desk):
    email = addr("ivan")
    card = desk.card(service="vopros", email=email, name="Иван", title="Не работает почта")
    desk.create(card)
    [ack] = desk.mail.wait_for(email)
    assert ack["Subject"] == f"[{card.number}] Не работает почта"
    text = ack.get_body(("plain",)).get_content()
    assert "Здравствуйте, Иван!" in text and "Мы получили ваше обращение" in text
    assert "Ответим в течение дня." in text
    assert '<html lang="ru">' in ack.get_body(("html",)).get_content()


def test_customers_hear_their_own_language_where_the_service_allows(desk: Desk):
    bilingual = SERVICES["problem"].model_copy(update={
        "id": "bilingual", "answer_in_customer_language": True,
        "auto_reply": Localized(en="We answer within one business day.",
                                ru="Ответим в течение рабочего дня.")})
    desk.publish(CatalogServiceChanged(service=bilingual, revision=1))
    wait_until(lambda: desk.db["catalog"].find_one({"_id": "bilingual"}))

    def ack(service: str, language: str) -> tuple[str, str]:
        email = addr(f"lang-{language}")
        card = desk.card(service=service, email=email, name="Иван").model_copy(
            update={"language": language})
        desk.create(card)
        [mail] = desk.mail.wait_for(email)
        return (mail.get_body(("plain",)).get_content(),
                mail.get_body(("html",)).get_content())

    # a Russian customer of an English service that answers in the customer's language
    text, html = ack("bilingual", "ru")
    assert "Мы получили ваше обращение" in text and "Ответим в течение рабочего дня." in text
    assert '<html lang="ru">' in html
    # German is not a language the desk speaks; nor is an unknown one: the service's English
    for language in ("de", "unknown"):
        text, _ = ack("bilingual", language)
        assert "We have received your request" in text
    # a service that keeps its own language for everyone
    text, _ = ack("problem", "ru")
    assert "We have received your request" in text and "Мы получили" not in text


def test_a_redelivered_event_sends_once(desk: Desk):
    email = addr("dup")
    card = desk.card(email=email)

    def duplicates() -> float:
        return sample_sum(desk.url, "desk_bus_messages_consumed_total", outcome="duplicate")
    before = duplicates()
    [env] = desk.publish(CardCreated(card=card))
    desk.publish(env, env)                               # the same event twice more
    desk.mail.wait_for(email)
    wait_until(lambda: duplicates() >= before + 2)
    settle(desk, card.card_id)
    assert len(desk.mail.to(email)) == 1


def test_internal_note_never_reaches_the_customer_and_replies_are_not_echoed(desk: Desk):
    email = addr("notes")
    card = desk.card(email=email, customer_fields={"system": "mail"})
    desk.create(card)
    desk.mail.wait_for(email)
    desk.publish(comment(card, visibility="internal"))
    desk.publish(comment(card, kind="customer", text="It still fails."))
    att = AttachmentRef(id="att1", filename="howto.pdf", content_type="application/pdf",
                        size=10, sha256="0" * 64, url="http://intake.example/v1/attachments/1")
    desk.publish(comment(card, text="Please restart the client.", attachments=(att,)))
    mails = desk.mail.wait_for(email, count=2)
    settle(desk, card.card_id)
    assert len(desk.mail.to(email)) == 2                 # ack + the public agent reply only
    reply = mails[1]
    text = reply.get_body(("plain",)).get_content()
    assert "Please restart the client." in text and "It still fails." not in text
    assert "howto.pdf: http://intake.example/v1/attachments/1" in text
    assert "system: mail" in text
    assert reply["Subject"] == f"Re: [{card.number}] Mail does not sync"
    assert reply["In-Reply-To"] == mails[0]["Message-ID"]
    assert mails[0]["Message-ID"] in reply["References"]
    assert sample_sum(desk.url, "desk_notify_skipped_total", reason="internal_note") >= 1


def test_status_changes_the_service_announces_and_a_rating_request_when_done(desk: Desk):
    email = addr("status")
    card = desk.card(email=email)
    desk.create(card)
    desk.mail.wait_for(email)
    card = move(desk, card, status=StatusCategory.IN_PROGRESS, column="work")
    [_, status_mail] = desk.mail.wait_for(email, count=2)
    assert "In progress" in status_mail["Subject"]
    assert "from “Queued” to “In progress”" in status_mail.get_body(("plain",)).get_content()
    card = move(desk, card, status=StatusCategory.IN_PROGRESS, column="review")  # same status
    card = move(desk, card, status=StatusCategory.PAUSED, column="hold")       # not announced
    card = move(desk, card, status=StatusCategory.DONE, column="done")
    mails = desk.mail.wait_for(email, count=3)
    settle(desk, card.card_id)
    assert len(desk.mail.to(email)) == 3   # done + rating request is one message
    rating = mails[2]
    assert rating["Subject"] == f"[{card.number}] Done — how did we do?"
    text = rating.get_body(("plain",)).get_content()
    urls = [line.split()[-1] for line in text.splitlines() if "/rate?score=" in line]
    assert len(urls) == 5
    for score, url in enumerate(urls, start=1):
        assert url.startswith(f"{desk.stack.url('portal')}/requests/{card.card_id}/rate?"
                              f"score={score}&t=")
        assert verify_link("rate", card.card_id, url.split("&t=")[1],
                           Stack.LINK_SECRET.encode())
    assert "/rate?score=5" in rating.get_body(("html",)).get_content()


def test_reminder_for_a_request_waiting_on_the_customer(desk: Desk):
    email = addr("remind")
    card = desk.card(email=email)
    desk.create(card)
    desk.mail.wait_for(email)
    desk.publish(SlaCustomerReminder(card_id=card.card_id, number=card.number,
                                     waiting_since=datetime.now(UTC) - timedelta(days=3),
                                     days_waiting=3,
                                     auto_close_at=datetime(2030, 1, 10, 12, tzinfo=UTC),
                                     service_id="problem"))
    [_, reminder] = desk.mail.wait_for(email, count=2)
    assert "waiting for your answer" in reminder["Subject"]
    assert "for 3 days." in reminder.get_body(("plain",)).get_content()
    assert "2030-01-10 12:00 UTC" in reminder.get_body(("plain",)).get_content()


def test_preferences_mute_a_kind(desk: Desk):
    email = addr("prefs")
    desk.publish(CustomerPreferencesChanged(email=email, channels={"rating_request": ()},
                                            changed_at=datetime.now(UTC)))
    wait_until(lambda: desk.db["preferences"].find_one({"_id": email}))
    card = desk.card(email=email)
    desk.create(card)
    desk.mail.wait_for(email)
    card = move(desk, card, status=StatusCategory.DONE, column="done")
    [_, only] = desk.mail.wait_for(email, count=2)
    settle(desk, card.card_id)
    assert len(desk.mail.to(email)) == 2
    assert only["Subject"] == f"[{card.number}] Done: Mail does not sync"   # no rating asked
    assert "/rate?" not in only.get_body(("plain",)).get_content()


def test_a_bounced_address_is_not_mailed_until_it_works_again(desk: Desk):
    email = addr("bounce")
    desk.publish(AddressBounced(email=email, reason="550 no such user", at=datetime.now(UTC)))
    wait_until(lambda: desk.db["suppressions"].find_one({"_id": email}))
    first = desk.card(email=email)
    desk.create(first)
    desk.wait_delivery("suppressed", card_id=first.card_id)
    assert desk.mail.to(email) == []
    listed = desk.admin.get("/v1/suppressions").json()["items"]
    assert {"email": email, "reason": "550 no such user"}.items() <= next(
        i for i in listed if i["email"] == email).items()
    # the customer writes again: the address works, and that very request is acknowledged
    second = desk.card(email=email, request_id=f"r-{uuid.uuid4()}")
    desk.create(second, RequestOrigin(received_at=datetime.now(UTC), text="hi"))
    wait_until(lambda: not desk.db["suppressions"].find_one({"_id": email})["active"])
    [mail] = desk.mail.wait_for(email)
    assert second.number in mail["Subject"]
    assert email not in [i["email"] for i in desk.admin.get("/v1/suppressions").json()["items"]]


def test_an_admin_can_clear_a_suppressed_address(desk: Desk):
    email = addr("fixed")
    desk.publish(AddressBounced(email=email, reason="552 mailbox full", at=datetime.now(UTC)))
    wait_until(lambda: desk.db["suppressions"].find_one({"_id": email}))
    assert desk.admin.delete(f"/v1/suppressions/{email}").status_code == 204
    assert desk.admin.delete(f"/v1/suppressions/{email}").status_code == 404
    card = desk.card(email=email)
    desk.create(card)
    assert card.number in desk.mail.wait_for(email)[0]["Subject"]


# --- Telegram ---------------------------------------------------------------------------
def test_telegram_requester_hears_in_telegram_with_rating_buttons_despite_429(desk: Desk):
    chat = 500_000 + uuid.uuid4().int % 100_000
    card = desk.card(email=None, name="Tg User", chat_id=chat, channel="telegram")
    desk.create(card)   # intake's bot tells the number in the dialog; notify stays quiet
    desk.tg.fail_next("sendMessage", times=1, retry_after=1)
    desk.publish(comment(card, text="Please restart the client."))
    [reply] = wait_until(lambda: desk.tg.sent_to(chat))
    assert card.number in reply["text"] and "Please restart the client." in reply["text"]
    assert "reply to this message" in reply["text"] and "e-mail" not in reply["text"]
    [delivery] = desk.deliveries(card_id=card.card_id, kind="agent_reply")
    assert delivery["deferrals"] >= 1 and delivery["attempts"] == 1   # the 429 was honoured
    card = move(desk, card, status=StatusCategory.DONE, column="done")
    [_, rating] = wait_until(lambda: (m := desk.tg.sent_to(chat)) and len(m) >= 2 and m)
    assert f"[{card.number}] Done" in rating["text"]
    assert "/rate?score=" not in rating["text"]      # stars are buttons here, not links
    buttons = rating["reply_markup"]["inline_keyboard"][0]
    assert [b["callback_data"] for b in buttons] == [
        f"rate:{card.card_id}:{s}" for s in range(1, 6)]
    settle(desk, card.card_id)
    assert len(desk.tg.sent_to(chat)) == 2                # done + rating is one message
    assert sample_sum(desk.url, "desk_notify_notifications_total", channel="telegram",
                      outcome="rate_limited") >= 1


def test_telegram_is_paced_per_chat(desk: Desk):
    chat = 600_000 + uuid.uuid4().int % 100_000
    card = desk.card(email=None, chat_id=chat, channel="telegram")
    desk.create(card)
    desk.publish(*[comment(card, text=f"Answer {i}") for i in range(3)])
    wait_until(lambda: len(desk.tg.sent_to(chat)) == 3, timeout=30)
    texts = [m["text"] for m in desk.tg.sent_to(chat)]
    assert all(any(f"Answer {i}" in t for t in texts) for i in range(3))
    # at most one message per second to one chat: the others were deferred, not dropped
    assert sum(d.get("deferrals", 0) for d in desk.deliveries(card_id=card.card_id)) >= 2


# --- agents: Slack and e-mail -------------------------------------------------------------
def put_route(desk: Desk, route_id: str, body: dict) -> dict:
    r = desk.admin.put(f"/v1/routes/{route_id}", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_agent_alerts_by_slack_webhook_bot_and_email(desk: Desk):
    board = f"b{uuid.uuid4().hex[:6]}"
    hook = desk.slack.webhook_url("support")
    put_route(desk, f"{board}-all", {"board_id": board, "channel": "slack_webhook",
                                     "webhook_url": hook,
                                     "events": ["new_request", "customer_reply",
                                                "sla_breached"]})
    put_route(desk, f"{board}-l2", {"board_id": board, "lane_id": "l2", "channel": "slack_bot",
                                    "slack_channel": "l2", "events": ["escalation"]})
    lead = addr("lead")
    put_route(desk, f"{board}-done", {"board_id": board, "column_id": "done",
                                      "channel": "email", "emails": [lead],
                                      "events": ["column_reached"], "language": "ru"})
    email = addr("cust")
    card = desk.card(email=email, board=board)
    desk.create(card)
    [new] = wait_until(lambda: desk.slack.webhook_posts(hook))
    assert f"New request {card.number}" in new["text"] and email in new["text"]
    desk.publish(comment(card, kind="customer", text="Any news? <!channel> <http://x|y>"))
    wait_until(lambda: len(desk.slack.webhook_posts(hook)) == 2)
    posted = desk.slack.webhook_posts(hook)[1]["text"]
    assert "Any news?" in posted
    # a customer cannot ping the channel or forge links through Slack's markup
    assert "<!channel>" not in posted and "&lt;!channel&gt; &lt;http://x|y&gt;" in posted
    desk.publish(SlaBreached(card_id=card.card_id, number=card.number, target="resolution",
                             deadline=datetime.now(UTC), at=datetime.now(UTC),
                             policy="standard"))
    wait_until(lambda: len(desk.slack.webhook_posts(hook)) == 3)
    assert "SLA breached" in desk.slack.webhook_posts(hook)[2]["text"]
    card = move(desk, card, status=StatusCategory.IN_PROGRESS, column="queue", lane="l2")
    [esc] = wait_until(lambda: desk.slack.channel_posts("l2"))
    assert f"Escalated to l2: {card.number}" in esc["text"]
    card = move(desk, card, status=StatusCategory.DONE, column="done", lane="l2")
    [alert] = desk.mail.wait_for(lead)
    assert alert["Subject"].startswith(f"{card.number} в колонке done")
    assert alert["Reply-To"] is None                       # agents do not reply into a request


def test_slack_429_is_honoured_and_a_limited_channel_does_not_stall_mail(desk: Desk):
    board = f"b{uuid.uuid4().hex[:6]}"
    hook = desk.slack.webhook_url("slow")
    put_route(desk, f"{board}-slow", {"board_id": board, "channel": "slack_webhook",
                                      "webhook_url": hook, "events": ["new_request"]})
    desk.slack.fail_next(WEBHOOK, times=1, retry_after=4)
    email = addr("fast")
    card = desk.card(email=email, board=board)
    started = time.monotonic()
    desk.create(card)
    desk.mail.wait_for(email)
    mail_at = time.monotonic()
    [post] = wait_until(lambda: desk.slack.webhook_posts(hook), timeout=30)
    assert card.number in post["text"]
    # Mail went out while Slack was still told to wait (the post came ≥4 s after the 429).
    slack_at = next(p["at"] for p in desk.slack.posts() if p["target"] in hook)
    assert mail_at < slack_at and mail_at - started < slack_at - started
    [delivery] = desk.wait_delivery("sent", card_id=card.card_id, channel="slack")
    assert delivery["attempts"] == 1 and delivery["deferrals"] >= 1


def test_failed_delivery_is_recorded_published_and_visible_to_admins(desk: Desk, amqp_url):
    tap = f"{desk.stack.namespace}.test.failed.{uuid.uuid4().hex[:6]}"

    async def declare():
        conn = await aio_pika.connect(amqp_url)
        async with conn:
            ch = await conn.channel()
            ex = await ch.get_exchange(Topology(desk.stack.namespace).exchange)
            q = await ch.declare_queue(tap, auto_delete=False)
            await q.bind(ex, "notification.failed.v1")

    async def drain():
        conn = await aio_pika.connect(amqp_url)
        async with conn:
            ch = await conn.channel()
            q = await ch.get_queue(tap)
            out = []
            while (m := await q.get(fail=False, no_ack=True)) is not None:
                out.append(json.loads(m.body))
            return out

    asyncio.run(declare())
    board = f"b{uuid.uuid4().hex[:6]}"
    hook = desk.slack.webhook_url("gone")
    desk.slack.revoke(hook)                                  # 404 no_service: permanent
    put_route(desk, f"{board}-gone", {"board_id": board, "channel": "slack_webhook",
                                      "webhook_url": hook, "events": ["new_request"]})
    put_route(desk, f"{board}-nochan", {"board_id": board, "channel": "slack_bot",
                                        "slack_channel": "no-such-channel",
                                        "events": ["new_request"]})
    card = desk.card(email=addr("x"), board=board)
    desk.create(card)
    failed = desk.wait_delivery("failed", card_id=card.card_id)
    wait_until(lambda: len(desk.wait_delivery("failed", card_id=card.card_id)) == 2)
    r = desk.admin.get("/v1/deliveries", params={"state": "failed", "card_id": card.card_id})
    assert r.status_code == 200
    items = r.json()["items"]
    assert {i["recipient"] for i in items} == {f"slack:{board}-gone", f"slack:{board}-nochan"}
    assert any("no_service" in i["last_error"] for i in items)
    assert any("channel_not_found" in i["last_error"] for i in items)
    assert all("webhook_url" not in json.dumps(i) for i in items)   # secrets stay inside
    seen: list[dict] = []
    events = wait_until(lambda: seen.extend(asyncio.run(drain())) or [
        e for e in seen if e["payload"]["card_id"] == card.card_id], timeout=20)
    assert events[0]["type"] == "notification.failed"
    assert {e["payload"]["notification_id"] for e in events} <= {d["_id"] for d in failed} | {
        i["id"] for i in items}
    assert sample_sum(desk.url, "desk_notify_notifications_total", channel="slack",
                      outcome="failed") >= 2
    # the admin fixes the cause and sends it again
    desk.slack.restore(hook)
    gone = next(i for i in items if i["recipient"] == f"slack:{board}-gone")
    assert desk.admin.post(f"/v1/deliveries/{gone['id']}/retry").status_code == 202
    [post] = wait_until(lambda: desk.slack.webhook_posts(hook))
    assert card.number in post["text"]
    wait_until(lambda: desk.db["deliveries"].find_one({"_id": gone["id"]})["status"] == "sent")
    assert desk.admin.post(f"/v1/deliveries/{gone['id']}/retry").status_code == 404  # not failed


def test_ratelimited_answers_spend_no_attempt(desk: Desk):
    board = f"b{uuid.uuid4().hex[:6]}"
    put_route(desk, f"{board}-busy", {"board_id": board, "channel": "slack_bot",
                                      "slack_channel": "alerts", "events": ["new_request"]})
    card = desk.card(email=addr("y"), board=board)
    # The Web API says "ratelimited" twice: deferred each time, never an attempt spent.
    desk.slack.fail_next(POST_MESSAGE, times=2, retry_after=1)
    desk.create(card)
    wait_until(lambda: [p for p in desk.slack.channel_posts("alerts") if card.number in
                        p["text"]], timeout=30)
    [delivery] = desk.wait_delivery("sent", card_id=card.card_id, channel="slack")
    assert delivery["attempts"] == 1 and delivery["deferrals"] >= 2


def test_transient_failures_are_retried_with_backoff_then_failed(desk: Desk):
    board = f"b{uuid.uuid4().hex[:6]}"
    dead = f"http://127.0.0.1:{free_port()}/services/T0/B0/nobody-listens"
    put_route(desk, f"{board}-down", {"board_id": board, "channel": "slack_webhook",
                                      "webhook_url": dead, "events": ["new_request"]})
    card = desk.card(email=addr("z"), board=board)
    desk.create(card)
    [failed] = desk.wait_delivery("failed", card_id=card.card_id)
    assert failed["attempts"] == 3                      # NOTIFY_MAX_ATTEMPTS in this stack
    assert "ConnectError" in failed["last_error"]
    assert sample_sum(desk.url, "desk_notify_notifications_total", channel="slack",
                      outcome="retried") >= 2


# --- admin API --------------------------------------------------------------------------
def test_admin_api_needs_the_token(desk: Desk):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        r = httpx.get(f"{desk.url}/v1/deliveries", headers=headers)
        assert r.status_code == 401, r.text
        r = httpx.put(f"{desk.url}/v1/templates/acknowledgment/en", headers=headers,
                      json={"subject": "x", "text": "y", "html": "z"})
        assert r.status_code == 401


def test_templates_are_editable_validated_and_used(desk: Desk):
    r = desk.admin.put("/v1/templates/acknowledgment/en", json={
        "subject": "{{ card.number }} ok", "text": "Hi {{ card.nmber }}", "html": "<p>x</p>"})
    assert r.status_code == 422 and r.json()["details"]["part"] == "text"
    r = desk.admin.put("/v1/templates/acknowledgment/en", json={
        "subject": "x", "text": "{{ ''.__class__.__mro__ }}", "html": "<p>x</p>"})
    assert r.status_code == 422
    assert sample_sum(desk.url, "desk_rejected_input_total", service="notify",
                      reason="invalid_template") >= 2
    r = desk.admin.put("/v1/templates/nonsense/en", json={
        "subject": "x", "text": "y", "html": "z"})
    assert r.status_code == 404
    r = desk.admin.put("/v1/templates/acknowledgment/en", json={
        "subject": "Got it: {{ card.number }}",
        "text": "Dear {{ customer_name }}, number {{ card.number }}.",
        "html": "<p>Dear {{ customer_name }}</p>"})
    assert r.status_code == 200, r.text
    assert r.json()["preview"]["subject"] == "Got it: SD-42"
    try:
        time.sleep(0.1)
        email = addr("tpl")
        card = desk.card(email=email, name="<b>Eve</b>")
        desk.create(card)
        [mail] = desk.mail.wait_for(email)
        assert mail["Subject"] == f"Got it: {card.number}"
        assert mail.get_body(("plain",)).get_content().startswith("Dear <b>Eve</b>, number")
        assert "<p>Dear &lt;b&gt;Eve&lt;/b&gt;</p>" in mail.get_body(("html",)).get_content()
        listed = desk.admin.get("/v1/templates").json()["items"]
        assert {(t["kind"], t["language"]) for t in listed if t["custom"]} == {
            ("acknowledgment", "en")}
    finally:
        assert desk.admin.delete("/v1/templates/acknowledgment/en").status_code == 204
    assert not desk.admin.get("/v1/templates/acknowledgment/en").json()["custom"]


def test_metrics_show_sends_and_queue_depth(desk: Desk):
    assert sample_sum(desk.url, "desk_notify_notifications_total", channel="email",
                      outcome="sent") >= 1
    assert sample_sum(desk.url, "desk_notify_send_seconds_count", channel="email") >= 1
    assert sample_sum(desk.url, "desk_notify_event_to_sent_seconds_count", channel="email") >= 1
    text = httpx.get(f"{desk.url}/metrics").text
    assert 'desk_notify_pending_deliveries{channel="email"}' in text


def test_events_redelivered_after_a_crash_send_nothing_twice(desk: Desk):
    """Last in this module: it kills notify (SIGKILL) and starts it again."""
    emails = [addr("crash") for _ in range(5)]
    cards = [desk.card(email=e) for e in emails]
    envelopes = desk.publish(*[CardCreated(card=c) for c in cards])
    for e in emails:
        desk.mail.wait_for(e)
    for c in cards:
        settle(desk, c.card_id)
    desk.stack["notify"].kill()
    desk.publish(*envelopes)                  # the broker hands them out again after a crash
    desk.stack["notify"].start()
    # a fresh event behind the redelivered ones proves they have all been consumed
    probe = addr("probe")
    desk.create(desk.card(email=probe))
    desk.mail.wait_for(probe)
    for c in cards:
        settle(desk, c.card_id)
    assert [len(desk.mail.to(e)) for e in emails] == [1] * 5
