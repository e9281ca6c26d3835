"""The Telegram bot end to end against a local Bot API server speaking Telegram's real JSON.

Intake runs as a process in polling mode (then restarted in webhook mode) with boards;
FakeTelegram plays Telegram: it hands out updates, records what the bot sends and serves
files for getFile.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.intake.helpers import card, comments, outbox_events, wait_for_catalog
from tests.support.fake_telegram import FakeTelegram
from tests.support.stack import Stack, cleanup, wait_until

pytestmark = pytest.mark.slow
TOKEN = "123456:TEST-token"
SECRET = "hook-secret-42"
CHAT = 4242


@pytest.fixture(scope="module")
def tg():
    with FakeTelegram(token=TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def bot_desk(mongo_url, amqp_url, tg, tmp_path_factory):
    s = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("tg-stack"),
              extra={"intake": {"INTAKE_TELEGRAM__MODE": "polling",
                                "INTAKE_TELEGRAM__TOKEN": TOKEN,
                                "INTAKE_TELEGRAM__API_BASE": tg.base_url,
                                "INTAKE_TELEGRAM__POLL_TIMEOUT_SECONDS": "1"}})
    s.start(("boards", "intake"))
    wait_for_catalog(s)
    yield s
    s.stop()
    cleanup(mongo_url, amqp_url, s.namespace)


def said(tg: FakeTelegram, chat: int, count: int, timeout: float = 20) -> list[dict]:
    """Wait until the bot has sent `count` messages to `chat`; returns them all."""
    return wait_until(lambda: (m := tg.messages_to(chat)) and len(m) >= count and m,
                      timeout=timeout)


def buttons(message: dict) -> list[str]:
    return [b["callback_data"] for row in message.get("reply_markup", {})
            .get("inline_keyboard", []) for b in row]


@pytest.fixture(scope="module")
def created(bot_desk, tg):
    """A full dialog: /start → service → description → fields (one invalid, one conditional,
    a restart of intake in the middle) → the request and its number."""
    n = 0

    def step(update: dict) -> dict:
        nonlocal n
        n += 1
        tg.push_update(update)
        return said(tg, CHAT, n)[-1]

    menu = step(tg.message_update(CHAT, "/start"))
    assert "svc:problem" in buttons(menu)
    ask = step(tg.callback_update(CHAT, "svc:problem", message=menu))
    assert "Опишите обращение" in ask["text"]  # the user's Telegram language is Russian
    # the menu shows the choice and loses its buttons
    edit = wait_until(lambda: tg.calls("editMessageText"))[-1]
    assert int(edit["message_id"]) == menu["message_id"]
    assert edit["text"].endswith("→ Проблема / ошибка") and "reply_markup" not in edit
    tg.add_file("photo-big-1", b"\xff\xd8\xff\xe0fake-jpeg-bytes", "photos/file_7.jpg")
    ask = step(tg.message_update(CHAT, caption="Плоттер не печатает\nГорит красная лампа",
                                 photo="photo-big-1"))
    assert ask["text"].startswith("Система")
    assert buttons(ask) == ["opt:system:mail", "opt:system:crm", "opt:system:other"]
    bad = step(tg.message_update(CHAT, "banana"))
    assert "Система: must be one of" in bad["text"]
    ask = step(tg.callback_update(CHAT, "opt:system:other", message_id=ask["message_id"]))
    assert ask["text"].startswith("Какая система?")  # the conditional field now applies

    bot_desk["intake"].kill()  # the dialog lives in the store, not in the process
    bot_desk["intake"].start()

    ask = step(tg.message_update(CHAT, "HP DesignJet"))
    assert ask["text"].startswith("Сколько людей затронуто?") and "skip:impact" in buttons(ask)
    bad = step(tg.message_update(CHAT, "many"))
    assert "must be a number" in bad["text"]
    step(tg.message_update(CHAT, "3"))
    # "accepted" at once, then the number once the card exists (which may already be there)
    done, numbered = said(tg, CHAT, n + 1)[n - 1:n + 1]
    assert "принято" in done["text"]
    number = numbered["text"].split()[2]
    assert number.startswith("SD-")
    return {"number": number, "numbered": numbered, "count": n + 1}


def test_dialog_creates_the_request_with_fields_and_photo(bot_desk, created):
    c = card(bot_desk, created["number"])
    assert c["title"] == "Плоттер не печатает"
    assert c["requester"]["telegram_chat_id"] == CHAT
    assert c["channel"] == "telegram"
    assert c["fields"] == {"system": "other", "system_other": "HP DesignJet", "impact": 3}
    photos = c["attachments"]
    assert len(photos) == 1 and photos[0]["content_type"] == "image/jpeg"
    assert httpx.get(photos[0]["url"], timeout=10).content == b"\xff\xd8\xff\xe0fake-jpeg-bytes"


def test_my_lists_requests_with_status(bot_desk, tg, created):
    count = created["count"]
    tg.push_update(tg.message_update(CHAT, "/my"))
    reply = said(tg, CHAT, count + 1)[-1]
    assert created["number"] in reply["text"] and "Плоттер не печатает" in reply["text"]
    created["count"] = count + 1


def test_reply_with_document_becomes_a_comment(bot_desk, tg, created):
    tg.add_file("doc-1", b"%PDF-1.4 fake", "documents/file_9.pdf")
    tg.push_update(tg.message_update(
        CHAT, caption="Вот отчёт об ошибке", reply_to_message_id=created["numbered"]["message_id"],
        document={"file_id": "doc-1", "file_name": "report.pdf", "mime_type": "application/pdf",
                  "file_size": 13}))
    ack = said(tg, CHAT, created["count"] + 1)[-1]
    created["count"] += 1
    assert created["number"] in ack["text"]
    found = wait_until(lambda: [c for c in comments(bot_desk, created["number"])
                                if c.get("text") == "Вот отчёт об ошибке"])
    assert [a["filename"] for a in found[0]["attachments"]] == ["report.pdf"]
    assert found[0]["attachments"][0]["content_type"] == "application/pdf"
    # a reply to a message that names no request is refused with a clear answer
    tg.push_update(tg.message_update(CHAT, "and this?", reply_to_message_id=999_999))
    refusal = said(tg, CHAT, created["count"] + 1)[-1]
    created["count"] += 1
    assert "Не удалось понять" in refusal["text"]


def test_rating_button_publishes_request_rated_only_for_the_requester(bot_desk, tg, created,
                                                                      mongo_url):
    card_id = card(bot_desk, created["number"])["id"]
    tg.push_update(tg.callback_update(777, f"rate:{card_id}:1"))  # someone else's chat
    tg.push_update(tg.callback_update(CHAT, f"rate:{card_id}:5"))
    wanted = {"Эта кнопка оценки не для вас.", "Спасибо за оценку!"}
    wait_until(lambda: wanted <= {a.get("text") for a in tg.calls("answerCallbackQuery")})
    rated = wait_until(lambda: outbox_events(bot_desk, mongo_url, "request.rated.v1"))
    assert [(e["payload"]["card_id"], e["payload"]["rating"]) for e in rated] == [(card_id, 5)]


def test_reply_to_a_message_notify_sent_becomes_a_comment(bot_desk, tg, created, amqp_url):
    """Notify sends with the same bot and reports `notification.sent` (message_id
    `tg:<chat>:<message id>`); a reply to that message lands on its card."""
    import asyncio
    import uuid

    import aio_pika
    from desk_contracts import make_envelope
    from desk_contracts.events import NotificationSent
    from desk_contracts.topology import Topology

    card_id = card(bot_desk, created["number"])["id"]
    notify_message_id = 880_001
    env = make_envelope(NotificationSent(
        notification_id=str(uuid.uuid4()), cause_event_id=str(uuid.uuid4()),
        channel="telegram", recipient=str(CHAT), kind="status_changed", card_id=card_id,
        message_id=f"tg:{CHAT}:{notify_message_id}"), account_id="default")

    async def publish() -> None:
        conn = await aio_pika.connect(amqp_url)
        async with conn:
            channel = await conn.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(Topology(bot_desk.namespace).exchange)
            await exchange.publish(aio_pika.Message(body=env.model_dump_json().encode()),
                                   routing_key=env.routing_key)
    asyncio.run(publish())

    def placed() -> bool:
        # until intake has taken notification.sent in, the bot cannot place the reply
        tg.push_update(tg.message_update(CHAT, "Спасибо, работает",
                                         reply_to_message_id=notify_message_id))
        created["count"] += 1
        return said(tg, CHAT, created["count"])[-1]["text"].startswith("Добавлено в SD-")
    wait_until(placed, timeout=20, interval=0.5)
    found = wait_until(lambda: [c for c in comments(bot_desk, created["number"])
                                if c.get("text") == "Спасибо, работает"])
    assert len(found) == 1


def test_webhook_mode_checks_the_secret_and_handles_updates_once(bot_desk, tg, created):
    intake = bot_desk["intake"]
    hook = f"{intake.url}/v1/telegram/webhook"
    intake.stop()
    intake.start(extra_env={"INTAKE_TELEGRAM__MODE": "webhook",
                            "INTAKE_TELEGRAM__WEBHOOK_SECRET": SECRET,
                            "INTAKE_TELEGRAM__WEBHOOK_URL": hook})
    wait_until(lambda: tg.webhook and tg.webhook["url"] == hook)
    assert tg.webhook["secret_token"] == SECRET
    update = tg.message_update(CHAT, "/my")
    for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess"}):
        r = httpx.post(hook, content=json.dumps(update), timeout=10,
                       headers={"Content-Type": "application/json", **headers})
        assert r.status_code == 403
    assert len(tg.messages_to(CHAT)) == created["count"]  # the refused update did nothing
    tg.push_update(update)  # Telegram delivers it to the webhook with the secret
    reply = said(tg, CHAT, created["count"] + 1)[-1]
    assert created["number"] in reply["text"]
    # Telegram redelivers an update it thinks failed: handled once
    r = httpx.post(hook, content=json.dumps(update), timeout=10,
                   headers={"Content-Type": "application/json",
                            "X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert r.status_code == 200
    assert len(tg.messages_to(CHAT)) == created["count"] + 1
    created["count"] += 1


def test_bot_waits_out_telegram_rate_limits(bot_desk, tg, created):
    tg.fail_next("sendMessage", times=1, retry_after=1)
    tg.push_update(tg.message_update(CHAT, "/help"))
    reply = said(tg, CHAT, created["count"] + 1)[-1]
    assert "/start" in reply["text"]
    created["count"] += 1


def test_api_rejects_invalid_fields_per_field(bot_desk):
    r = httpx.post(f"{bot_desk['intake'].url}/v1/requests", timeout=10, json={
        "service": "problem", "requester": {"email": "a@acme.example"}, "subject": "x",
        "fields": {"system": "other", "impact": "lots"}})
    assert r.status_code == 422
    assert r.json()["details"]["fields"] == {"system_other": "is required",
                                             "impact": "must be a number"}
