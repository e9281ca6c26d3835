"""E-mail through intake's SMTP listener: the corpus, threading, loops, dedupe, rejections."""

from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage
from email.utils import make_msgid

import httpx
import pytest

from tests.intake.conftest import MAX_MESSAGE_BYTES
from tests.intake.corpus_expectations import EXPECT, ORIGINALS, REPLIES, check
from tests.intake.helpers import (
    CORPUS,
    card,
    comments,
    corpus,
    inbound,
    knows_sent,
    new_tag,
    outbox_events,
    processed,
    processed_raw,
    request_number,
    smtp_send,
)
from tests.support.metrics import sample_sum
from tests.support.stack import auth, mta_auth, wait_until

pytestmark = pytest.mark.slow
PROBLEM = "problem@desk.localhost"


def deliver_corpus(stack, send, tag: str) -> tuple[dict[str, dict], dict[str, str]]:
    """Feed the whole corpus (originals, then replies once their cards exist) via `send`."""
    records: dict[str, dict] = {}
    for name in ORIGINALS:
        send(name, corpus(name, tag))
    for name in ORIGINALS:
        records[name] = processed_raw(stack, corpus(name, tag))
    cards = {}
    for name, rec in records.items():
        if rec["status"] == "request":
            number = request_number(stack, rec["request_id"])
            cards[name] = card(stack, number)["id"]
    for name in REPLIES:
        send(name, corpus(name, tag))
        records[name] = processed_raw(stack, corpus(name, tag))
    return records, cards


@pytest.fixture(scope="module")
def smtp_corpus(desk):
    tag = new_tag()
    return deliver_corpus(desk, lambda name, raw: smtp_send(desk, raw, PROBLEM), tag) + (tag,)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_corpus_message_via_smtp(smtp_corpus, name):
    records, cards, _ = smtp_corpus
    assert name in records, f"{name} was not recorded"
    check(name, records[name], cards)


def test_corpus_requests_and_replies_reach_the_board(desk, smtp_corpus):
    records, cards, _ = smtp_corpus
    koi8 = card(desk, cards["04-koi8r.eml"])
    assert koi8["title"] == "Не работает почта"
    assert koi8["requester"]["email"] == "ivan.petrov@acme.example"
    reply = records["13-reply-thunderbird-ru.eml"]
    texts = wait_until(lambda: [c["text"] for c in comments(desk, cards["04-koi8r.eml"])
                                if "Письма снова уходят" in (c.get("text") or "")])
    assert texts == [reply["text"]]
    # noise created nothing: no record became a request or card
    for name in ("14-out-of-office.eml", "15-dsn-bounce.eml", "19-newsletter-bulk.eml"):
        assert records[name].get("request_id") is None and records[name].get("card_id") is None


def test_attachments_are_downloadable_by_their_signed_link(desk, smtp_corpus):
    records, _, _ = smtp_corpus
    refs = {a["filename"]: a for a in records["08-attachments.eml"]["attachments"]}
    png = httpx.get(refs["error.png"]["url"], timeout=10)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert refs["error.png"]["sha256"] and refs["error.png"]["size"] == len(png.content)
    forged = refs["error.png"]["url"].split("?t=")[0] + "?t=4102444800.AAAAAAAAAAAAAAAAAAAAAAAA"
    assert httpx.get(forged, timeout=10).status_code == 403


def dsn(failed: str, original_message_id: str) -> bytes:
    """A Postfix-style delivery status notification about one of our mails."""
    return (CORPUS / "15-dsn-bounce.eml").read_bytes().replace(
        b"gone.user@acme.example", failed.encode()).replace(
        b"<bounce-orig-CORPUS@desk.localhost>", f"<{original_message_id}>".encode()).replace(
        b"15-CORPUS@mx.acme.example", make_msgid(domain="mx.acme.example").strip("<>").encode())


def test_bounce_of_our_mail_marks_the_address_failing(desk, sink, mongo_url):
    customer = f"{new_tag()}@acme.example"
    first = plain_mail(customer, "Phone line dead", "No dial tone.")
    smtp_send(desk, first.as_bytes(), PROBLEM)
    ack = sink.wait_for(customer)[0]
    # bounces come back to notify's envelope sender, desk@<inbound domain>
    raw = dsn(customer, str(ack["Message-ID"]).strip("<>"))
    smtp_send(desk, raw, "desk@desk.localhost", mail_from="")
    assert processed_raw(desk, raw)["status"] == "bounce"
    events = wait_until(lambda: [e for e in outbox_events(desk, mongo_url,
                                                          "customer.address_bounced.v1")
                                 if e["payload"]["email"] == customer])
    assert events[0]["payload"]["permanent"] is True
    assert "5.1.1" in events[0]["payload"]["reason"]


def test_forged_bounce_does_not_silence_a_customer(desk, mongo_url):
    victim = f"{new_tag()}@acme.example"
    raw = dsn(victim, "guessed-id@desk.localhost")
    smtp_send(desk, raw, "desk@desk.localhost", mail_from="")
    record = processed_raw(desk, raw)
    assert record["status"] == "bounce" and "not about mail we sent" in record["reason"]
    assert not [e for e in outbox_events(desk, mongo_url, "customer.address_bounced.v1")
                if e["payload"]["email"] == victim]


def test_mail_to_the_reply_only_address_that_is_no_reply_is_quarantined(desk):
    msg = plain_mail("lost@acme.example", "Hello?", "Is anyone there?", to="desk@desk.localhost")
    smtp_send(desk, msg.as_bytes(), "desk@desk.localhost")
    rec = processed(desk, msg["Message-ID"].strip("<>"))
    assert rec["status"] == "quarantined" and rec["reason"] == "unknown_service"


def test_quarantine_keeps_raw_bytes_and_counts(desk, smtp_corpus):
    records, _, tag = smtp_corpus
    r = httpx.get(f"{desk['intake'].url}/v1/quarantine", headers=auth(desk), timeout=10)
    assert r.status_code == 200
    items = {i["id"]: i for i in r.json()["items"]}
    garbage = items[records["17-garbage.eml"]["id"]]
    assert garbage["reason"] == "no_headers"
    raw = httpx.get(f"{desk['intake'].url}/v1/quarantine/{garbage['id']}/raw",
                    headers=auth(desk), timeout=10)
    assert raw.content == corpus("17-garbage.eml", tag)
    no_sender = items[records["16-malformed-no-sender.eml"]["id"]]
    assert no_sender["reason"] == "no_sender" and "undisclosed-sender" in no_sender["detail"]
    assert sample_sum(desk["intake"].url, "desk_intake_quarantined_total",
                      reason="no_sender") >= 1
    # the admin API is closed to anyone without the admin token
    assert httpx.get(f"{desk['intake'].url}/v1/quarantine", timeout=10).status_code == 401
    assert httpx.get(f"{desk['intake'].url}/v1/quarantine", timeout=10,
                     headers={"Authorization": "Bearer wrong"}).status_code == 401


def plain_mail(sender: str, subject: str, text: str, to: str = PROBLEM, **headers) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="acme.example")
    for k, v in headers.items():
        msg[k.replace("_", "-")] = v
    msg.set_content(text)
    return msg


def test_same_message_twice_creates_one_request(desk):
    msg = plain_mail("dup@acme.example", "Keyboard missing keys", "The Q key fell off.")
    smtp_send(desk, msg.as_bytes(), PROBLEM)
    smtp_send(desk, msg.as_bytes(), PROBLEM)  # the sending server retried
    mid = msg["Message-ID"].strip("<>")
    record = processed(desk, mid)
    r = httpx.post(f"{desk['intake'].url}/v1/inbound/email", content=msg.as_bytes(),
                   headers={"Content-Type": "message/rfc822", **mta_auth(desk)}, timeout=10)
    assert r.status_code == 202 and r.json()["accepted"][0]["duplicate"] is True
    assert len(inbound(desk, mid)) == 1
    number = request_number(desk, record["request_id"])
    matching = httpx.get(f"{desk['boards'].url}/v1/cards", params={"q": "Keyboard missing keys"},
                         headers=auth(desk), timeout=10).json()["items"]
    assert [c["number"] for c in matching] == [number]


def test_reply_to_acknowledgment_lands_on_the_same_card(desk, sink, mongo_url):
    customer = f"{new_tag()}@acme.example"
    first = plain_mail(customer, "Cannot open shared calendar", "It says access denied.")
    smtp_send(desk, first.as_bytes(), PROBLEM)
    record = processed(desk, first["Message-ID"].strip("<>"))
    number = request_number(desk, record["request_id"])
    ack = sink.wait_for(customer)[0]
    ack_raw = next(raw for rcpts, _, raw in sink.messages if customer in rcpts)
    assert ack["X-Desk-Origin"] and ack["Reply-To"].startswith("problem+")
    reply = plain_mail(customer, "Re: " + str(ack["Subject"]),
                       "It works in the browser, only Outlook fails.\n\n"
                       f"On Tue, 25 Nov 2026 at 10:00, Service desk wrote:\n> {number}\n",
                       to=str(ack["Reply-To"]), In_Reply_To=str(ack["Message-ID"]))
    smtp_send(desk, reply.as_bytes(), str(ack["Reply-To"]))
    rec = processed(desk, reply["Message-ID"].strip("<>"))
    assert rec["status"] == "reply" and rec["threading_reason"] == "reply_token"
    card_id = card(desk, number)["id"]
    assert rec["card_id"] == card_id
    texts = wait_until(lambda: [c["text"] for c in comments(desk, number)
                                if "only Outlook fails" in (c.get("text") or "")])
    assert texts == ["It works in the browser, only Outlook fails."]

    # a client that drops Reply-To writes to the service address: In-Reply-To still threads
    # (once intake has learnt the acknowledgment's Message-ID from notify)
    wait_until(lambda: knows_sent(desk, mongo_url, ack))
    plain = plain_mail(customer, "Re: " + str(ack["Subject"]), "Also on my phone.",
                       In_Reply_To=str(ack["Message-ID"]))
    smtp_send(desk, plain.as_bytes(), PROBLEM)
    rec = processed(desk, plain["Message-ID"].strip("<>"))
    assert (rec["status"], rec["threading_reason"], rec["card_id"]) == (
        "reply", "references", card_id)

    # an out-of-office answer to the same acknowledgment creates nothing
    ooo = plain_mail(customer, "Automatic reply: " + str(ack["Subject"]), "I am away.",
                     to=str(ack["Reply-To"]), In_Reply_To=str(ack["Message-ID"]),
                     Auto_Submitted="auto-replied")
    smtp_send(desk, ooo.as_bytes(), str(ack["Reply-To"]))
    assert processed(desk, ooo["Message-ID"].strip("<>"))["status"] == "ignored"
    # our own acknowledgment coming back (a misconfigured forward) creates nothing either
    smtp_send(desk, ack_raw, PROBLEM)
    own = processed(desk, str(ack["Message-ID"]).strip("<>"))
    assert own["status"] == "ignored" and own["reason"] == "own_mail"
    assert not [c for c in comments(desk, number) if "I am away" in (c.get("text") or "")]


def test_subject_token_only_threads_for_participants(desk):
    customer = f"{new_tag()}@acme.example"
    first = plain_mail(customer, "Projector in room 4 is dim", "Very dim.")
    smtp_send(desk, first.as_bytes(), PROBLEM)
    number = request_number(desk, processed(desk, first["Message-ID"].strip("<>"))["request_id"])
    stranger = plain_mail("mallory@evil.example", f"Re: [{number}] Projector", "Close it!")
    smtp_send(desk, stranger.as_bytes(), PROBLEM)
    rec = processed(desk, stranger["Message-ID"].strip("<>"))
    assert rec["status"] == "request"
    assert rec["threading_reason"] == f"new:subject_token_not_participant ({number})"
    own = plain_mail(customer, f"Re: [{number}] Projector", "Still dim today.")
    smtp_send(desk, own.as_bytes(), PROBLEM)
    rec = processed(desk, own["Message-ID"].strip("<>"))
    assert rec["status"] == "reply" and rec["threading_reason"] == "subject_token"
    assert rec["number"] == number


def test_forged_reply_token_does_not_attach(desk):
    first = plain_mail("victim@acme.example", "Salary question", "Confidential.")
    smtp_send(desk, first.as_bytes(), PROBLEM)
    number = request_number(desk, processed(desk, first["Message-ID"].strip("<>"))["request_id"])
    forged_to = f"problem+{number.lower()}-aaaaaaaaaa@desk.localhost"
    forged = plain_mail("mallory@evil.example", "Re: Salary question", "Injected.", to=forged_to)
    smtp_send(desk, forged.as_bytes(), forged_to)
    rec = processed(desk, forged["Message-ID"].strip("<>"))
    assert rec["status"] == "request" and rec["threading_reason"] == "new:invalid_reply_token"


def test_smtp_refuses_foreign_unknown_and_oversized(desk):
    msg = plain_mail("a@acme.example", "x", "y")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as foreign:
        smtp_send(desk, msg.as_bytes(), "someone@gmail.com")
    assert foreign.value.recipients["someone@gmail.com"][0] == 550
    with pytest.raises(smtplib.SMTPRecipientsRefused) as unknown:
        smtp_send(desk, msg.as_bytes(), "nosuchservice@desk.localhost")
    assert unknown.value.recipients["nosuchservice@desk.localhost"][0] == 550
    big = plain_mail("a@acme.example", "big", ("x" * 70 + "\n") * (MAX_MESSAGE_BYTES // 70 + 100))
    # smtplib announces SIZE=, so the limit is enforced at MAIL FROM already
    with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as too_big:
        smtp_send(desk, big.as_bytes(), PROBLEM)
    assert too_big.value.smtp_code == 552
    # without SIZE= (a client that does not announce it) DATA is refused (aiosmtpd answers
    # 552, or 500 when its line reader overruns while discarding the excess)
    with smtplib.SMTP("127.0.0.1", desk.ports["intake_smtp"], timeout=30) as smtp:
        smtp.ehlo()
        smtp.esmtp_features.pop("size", None)
        with pytest.raises(smtplib.SMTPDataError) as at_data:
            smtp.sendmail("a@acme.example", PROBLEM, big.as_bytes())
    assert at_data.value.smtp_code in (552, 500)
    assert inbound(desk, big["Message-ID"].strip("<>")) == []


def test_sender_outside_access_rules_is_quarantined(desk):
    listing = httpx.get(f"{desk['boards'].url}/v1/services", headers=auth(desk),
                        timeout=10).json()["items"]
    service = next(i["service"] for i in listing if i["service"]["id"] == "question")
    restricted = {**service, "id": "acme-only", "access": {"domains": ["acme.com"]}}
    r = httpx.put(f"{desk['boards'].url}/v1/services/acme-only", json=restricted,
                  headers=auth(desk), timeout=10)
    assert r.status_code in (200, 201), r.text
    to = "acme-only@desk.localhost"
    evil = plain_mail("boss@acme.com.evil.io", "Wire the money", "Urgent.", to=to)
    wait_until(lambda: _accepts(desk, evil, to))
    rec = processed(desk, evil["Message-ID"].strip("<>"))
    assert rec["status"] == "quarantined" and rec["reason"] == "sender_not_allowed"
    good = plain_mail("boss@acme.com", "Need a contract review", "Attached soon.", to=to)
    smtp_send(desk, good.as_bytes(), to)
    assert processed(desk, good["Message-ID"].strip("<>"))["status"] == "request"

    # nothing was lost: once the admin lets that domain in, the kept mail can be retried
    widened = {**restricted, "access": {"domains": ["acme.com", "acme.com.evil.io"]}}
    assert httpx.put(f"{desk['boards'].url}/v1/services/acme-only", json=widened,
                     headers=auth(desk), timeout=10).status_code in (200, 201)
    retry = f"{desk['intake'].url}/v1/quarantine/{rec['id']}/retry"
    assert httpx.post(retry, timeout=10).status_code == 401

    def retried() -> dict | None:
        assert httpx.post(retry, headers=auth(desk), timeout=10).status_code == 202
        again = processed(desk, evil["Message-ID"].strip("<>"))
        return again if again["status"] == "request" else None
    assert wait_until(retried, timeout=30, interval=0.5)["title"] == "Wire the money"


def _accepts(desk, msg, to) -> bool:
    try:
        smtp_send(desk, msg.as_bytes(), to)
        return True
    except smtplib.SMTPRecipientsRefused:
        return False  # the new service has not reached intake's catalog copy yet


def test_inbound_http_endpoint(desk):
    url = f"{desk['intake'].url}/v1/inbound/email"
    msg = plain_mail("pipe@acme.example", "Delivered by an MTA pipe", "Via HTTP.")
    mta = mta_auth(desk)
    assert httpx.post(url, json={"raw": "x"}, headers=mta, timeout=10).status_code == 400
    r = httpx.post(url, params={"recipient": "someone@gmail.com"}, content=msg.as_bytes(),
                   headers={"Content-Type": "message/rfc822", **mta}, timeout=10)
    assert r.status_code == 422
    r = httpx.post(url, content=msg.as_bytes(),
                   headers={"Content-Type": "message/rfc822", **mta}, timeout=10)
    assert r.status_code == 202
    rec = processed(desk, msg["Message-ID"].strip("<>"))
    assert rec["status"] == "request" and rec["source"] == "api"
    assert rec["title"] == "Delivered by an MTA pipe"


def test_accepted_mail_survives_a_crash_right_after_250(desk):
    intake = desk["intake"]
    # an intake that only accepts (no processing workers) makes "crash between 250 and
    # processing" deterministic
    intake.stop()
    intake.start(extra_env={"INTAKE_MAIL_WORKERS": "0"})
    msg = plain_mail("crash@acme.example", "Accepted just before a crash", "Do not lose me.")
    smtp_send(desk, msg.as_bytes(), PROBLEM)
    mid = msg["Message-ID"].strip("<>")
    assert [r["status"] for r in inbound(desk, mid)] == ["pending"]  # stored before the 250
    intake.kill()  # SIGKILL: no clean shutdown
    intake.start()
    rec = processed(desk, mid)
    assert rec["status"] == "request"
    assert request_number(desk, rec["request_id"]).startswith("SD-")
    assert len(inbound(desk, msg["Message-ID"].strip("<>"))) == 1


def test_a_reply_to_a_card_intake_has_not_heard_of_yet_waits_for_it(desk, sink, mongo_url):
    """A reply whose valid reply token names a card missing from intake's thread map (its
    card.created still on the way: a replica died holding it, a consumer is behind) waits
    for the card instead of becoming a new request; it threads as soon as the card is known,
    and only a card that never comes lets it through as new, after INTAKE_REPLY_WAIT_SECONDS."""
    from pymongo import MongoClient

    from desk_contracts.reply_token import reply_address
    from tests.support.stack import Stack

    customer = f"{new_tag()}@acme.example"
    first = plain_mail(customer, "Scanner on floor 2 is offline", "Offline since Monday.")
    smtp_send(desk, first.as_bytes(), PROBLEM)
    number = request_number(desk, processed(desk, first["Message-ID"].strip("<>"))["request_id"])
    card_id = card(desk, number)["id"]
    sink.wait_for(customer, 1, timeout=60)  # the acknowledgment went out
    threads = MongoClient(mongo_url)[f"{desk.namespace}_intake"]["threads"]
    # intake has recorded everything about the card (its number, the acknowledgment sent)
    # and expects nothing more that would write the entry back
    thread = wait_until(lambda: threads.find_one({"_id": card_id, "number": number,
                                                  "sent_ids.0": {"$exists": True}}), timeout=60)
    threads.delete_one({"_id": card_id})  # the card.created that writes it has not come yet

    to = reply_address("problem", number, Stack.REPLY_SECRET.encode(), "desk.localhost")
    reply = plain_mail(customer, "Re: Scanner on floor 2 is offline", "Rebooted, still off.",
                       to=to)
    smtp_send(desk, reply.as_bytes(), to)
    mid = reply["Message-ID"].strip("<>")
    wait_until(lambda: inbound(desk, mid))
    time.sleep(2)  # the sweeper has looked at it (every second) and left it waiting
    assert inbound(desk, mid)[0]["status"] == "pending"
    threads.replace_one({"_id": card_id}, thread, upsert=True)  # the card.created arrives
    rec = processed(desk, mid)
    assert rec["status"] == "reply" and rec["threading_reason"] == "reply_token"
    wait_until(lambda: [c for c in comments(desk, number)
                        if "still off" in (c.get("text") or "")])

    # a token for a card that never reaches the thread map: new request after the wait
    ghost = "SD-99999"
    to = reply_address("problem", ghost, Stack.REPLY_SECRET.encode(), "desk.localhost")
    lost = plain_mail(customer, "Re: something", "Hello?", to=to)
    smtp_send(desk, lost.as_bytes(), to)
    rec = processed(desk, lost["Message-ID"].strip("<>"), timeout=60)
    assert rec["status"] == "request"
    assert rec["threading_reason"].startswith("new:reply_token_card_not_known_yet")
