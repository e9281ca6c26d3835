"""A customer's mail conversation through intake, boards and notify as real processes."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import make_msgid

import httpx
import pytest

from tests.support.mail import MailSink
from tests.support.stack import Stack, auth, card_for, cleanup, mta_auth, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mail():
    with MailSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def stack(mongo_url, amqp_url, mail, tmp_path_factory):
    s = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("desk"), smtp_port=mail.port,
              extra={"intake": {"INTAKE_SMTP_PORT": "0"}})
    s.start(("intake", "boards", "notify"))
    yield s
    s.stop()
    cleanup(mongo_url, amqp_url, s.namespace)


def submit(stack: Stack, email: str) -> dict:
    body = {"service": "problem", "requester": {"email": email, "name": "Anna"},
            "subject": "Mail does not sync", "text": "Since this morning nothing arrives.",
            "fields": {"system": "mail"}}

    def post():
        r = httpx.post(f"{stack['intake'].url}/v1/requests", json=body, timeout=10)
        return r if r.status_code != 404 else None  # intake may still be loading the catalog
    r = wait_until(post, timeout=30)
    assert r.status_code == 202, r.text
    return card_for(stack, r.json()["request_id"])


def comments(stack: Stack, card: dict) -> list[dict]:
    r = httpx.get(f"{stack['boards'].url}/v1/cards/{card['id']}/comments", headers=auth(stack))
    return r.json()["items"]


def test_customer_reply_to_the_mail_threads_back_and_agent_replies_thread_on(stack, mail):
    email = f"anna.{uuid.uuid4().hex[:6]}@acme.example"
    card = submit(stack, email)
    [ack] = mail.wait_for(email)
    assert card["number"] in ack["Subject"]

    # The customer answers the acknowledgment from their mail client.
    answer = EmailMessage()
    answer["From"] = f"Anna <{email}>"
    answer["To"] = ack["Reply-To"]
    answer["Subject"] = "Re: " + ack["Subject"]
    answer["Message-ID"] = make_msgid(domain="acme.example")
    answer["In-Reply-To"] = ack["Message-ID"]
    answer["References"] = ack["Message-ID"]
    answer.set_content("It is the Outlook client on my laptop.\n\n> quoted ack text\n")
    r = httpx.post(f"{stack['intake'].url}/v1/inbound/email",
                   params={"recipient": ack["Reply-To"]}, content=answer.as_bytes(),
                   headers={"Content-Type": "message/rfc822", **mta_auth(stack)}, timeout=10)
    assert r.status_code == 202, r.text
    reply = wait_until(lambda: [c for c in comments(stack, card)
                                if "Outlook client" in (c.get("text") or "")], timeout=30)[0]
    assert reply["author"]["kind"] == "customer" and reply["visibility"] == "public"

    # An internal note says nothing to the customer; a public reply is mailed, threaded.
    admin = httpx.Client(base_url=stack["boards"].url, headers=auth(stack), timeout=10)
    secret = f"note-{uuid.uuid4().hex}"
    r = admin.post(f"/v1/cards/{card['id']}/comments",
                   json={"text": f"Customer is on an old build. {secret}",
                         "visibility": "internal"})
    assert r.status_code == 201, r.text
    r = admin.post(f"/v1/cards/{card['id']}/comments",
                   json={"text": "Please update Outlook to the latest build.",
                         "visibility": "public"})
    assert r.status_code == 201, r.text
    [_, agent_reply] = mail.wait_for(email, count=2)
    text = agent_reply.get_body(("plain",)).get_content()
    assert "Please update Outlook" in text and secret not in text
    assert agent_reply["In-Reply-To"] == ack["Message-ID"]
    assert agent_reply["Reply-To"] == ack["Reply-To"]

    # Taking it into work is announced (the service's notify_on has in_progress).
    current = admin.get(f"/v1/cards/{card['id']}").json()
    r = admin.post(f"/v1/cards/{card['id']}/move",
                   json={"column_id": "in-progress", "version": current["version"]})
    assert r.status_code == 200, r.text
    [*_, status] = mail.wait_for(email, count=3)
    assert "In progress" in status["Subject"]

    # Nothing else went to the customer: no echo of their own reply, no note.
    r = httpx.get(f"{stack['notify'].url}/v1/deliveries", params={"card_id": card["id"]},
                  headers=auth(stack))
    kinds = sorted(d["kind"] for d in r.json()["items"] if d["audience"] == "customer")
    assert kinds == ["acknowledgment", "agent_reply", "status_changed"]
    assert all(secret not in m.as_string() for m in mail.to(email))
    assert len(mail.to(email)) == 3
