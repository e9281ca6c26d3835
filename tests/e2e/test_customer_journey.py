"""A whole request, as a customer and an agent live it, across all five services.

The customer asks through the web-form API, gets an acknowledgment, gets the agent's
public reply by mail (never the internal note), answers that mail, sees the request
done, and rates it from the link in the mail. Boards, SLA and portal agree on what
happened at each step.
"""

from __future__ import annotations

import re
import uuid
from email.message import EmailMessage
from email.utils import make_msgid

import httpx
import pytest

from tests.e2e.test_walking_skeleton import submit
from tests.support.stack import (
    Stack,
    auth,
    card_for,
    mongo_find,
    mta_auth,
    sla_auth,
    wait_until,
)

pytestmark = pytest.mark.slow

INTERNAL = "Internal: customer is on the legacy mail cluster, do not promise dates."


def comments(stack: Stack, card_id: str) -> list[dict]:
    r = httpx.get(f"{stack['boards'].url}/v1/cards/{card_id}/comments", headers=auth(stack))
    r.raise_for_status()
    body = r.json()
    return body["items"] if isinstance(body, dict) else body


def sla_targets(stack: Stack, card_id: str) -> dict:
    r = httpx.get(f"{stack['sla'].url}/v1/cards/{card_id}/sla", headers=sla_auth(stack))
    return {t["target"]: t for t in r.json()["targets"]} if r.status_code == 200 else {}


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    return part.get_content() if part is not None else ""


def test_request_reply_answer_close_and_rate(stack, mail, mongo_url):
    sent = submit(stack, subject="VPN drops every hour",
                  text="The VPN disconnects every hour since Monday.")
    card = card_for(stack, sent["request_id"])
    [ack] = mail.wait_for(sent["email"])

    # the agent writes an internal note and a public reply
    boards = stack["boards"].url
    r = httpx.post(f"{boards}/v1/cards/{card['id']}/comments", headers=auth(stack),
                   json={"text": INTERNAL, "visibility": "internal"})
    assert r.status_code == 201, r.text
    r = httpx.post(f"{boards}/v1/cards/{card['id']}/comments", headers=auth(stack),
                   json={"text": "Please update the VPN client to 5.2 and tell us.",
                         "visibility": "public"})
    assert r.status_code == 201, r.text

    # the customer gets the public reply by mail; nothing ever carries the internal note
    reply_mail = wait_until(lambda: [m for m in mail.to(sent["email"])
                                     if "VPN client to 5.2" in text_of(m)], timeout=30)[0]
    assert card["number"] in reply_mail["Subject"]
    # first response is met on the SLA record
    assert wait_until(lambda: sla_targets(stack, card["id"]).get("first_response", {})
                      .get("state") == "met")

    # the customer answers the agent's mail; intake threads it onto the same card
    answer = EmailMessage()
    answer["From"] = sent["email"]
    answer["To"] = reply_mail["Reply-To"]
    answer["Subject"] = "Re: " + reply_mail["Subject"]
    answer["Message-ID"] = make_msgid(domain="acme.example")
    answer["In-Reply-To"] = reply_mail["Message-ID"]
    answer["References"] = reply_mail["Message-ID"]
    answer.set_content("Updated to 5.2, still drops.\n\n> Please update the VPN client")
    r = httpx.post(f"{stack['intake'].url}/v1/inbound/email", content=bytes(answer),
                   headers={"content-type": "message/rfc822", **mta_auth(stack)})
    assert r.status_code == 202, r.text
    customer = wait_until(lambda: [c for c in comments(stack, card["id"])
                                   if "still drops" in (c.get("text") or "")])
    assert customer[0]["author"]["kind"] == "customer"
    assert "> Please update" not in customer[0]["text"]  # quoted history trimmed
    assert wait_until(lambda: httpx.get(f"{boards}/v1/cards/{card['id']}", headers=auth(stack))
                      .json().get("unread_customer_reply"))
    assert wait_until(lambda: sla_targets(stack, card["id"]).get("next_response", {})
                      .get("state") == "running")

    # the agent closes it; the customer is told, and asked to rate
    current = httpx.get(f"{boards}/v1/cards/{card['id']}", headers=auth(stack)).json()
    r = httpx.post(f"{boards}/v1/cards/{card['id']}/move", headers=auth(stack),
                   json={"column_id": "done", "version": current["version"]})
    assert r.status_code == 200, r.text
    rating_mail = wait_until(lambda: [m for m in mail.to(sent["email"])
                                      if "/rate?score=" in text_of(m)], timeout=30)[0]
    assert wait_until(lambda: sla_targets(stack, card["id"]).get("resolution", {})
                      .get("state") == "met")
    rows = wait_until(lambda: [r for r in mongo_find(mongo_url, f"{stack.namespace}_portal",
                                                     "requests", {"card_id": card["id"]})
                               if r.get("customer_status") == "Done"])
    assert rows

    # the rating link asks for confirmation first (a mail scanner opening it votes nothing)
    link = re.search(r"(http://\S+/rate\?score=4&t=[^\s\"'<>]+)", text_of(rating_mail)).group(1)
    with httpx.Client(follow_redirects=True) as browser:
        page = browser.get(link)
        assert page.status_code == 200
        assert not httpx.get(f"{boards}/v1/cards/{card['id']}", headers=auth(stack)
                             ).json().get("rating")
        form = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text))
        action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
        target = httpx.URL(link).join(action.group(1)) if action else link
        r = browser.post(str(target), data=form)
        assert r.status_code in (200, 303), r.text
    rated = wait_until(lambda: httpx.get(f"{boards}/v1/cards/{card['id']}", headers=auth(stack)
                                         ).json().get("rating"))
    assert (rated["score"] if isinstance(rated, dict) else rated) == 4

    # the internal note's text went to no customer, in no mail and no portal message
    for msg in mail.to(sent["email"]):
        assert "legacy mail cluster" not in bytes(msg).decode("utf-8", "replace")
    portal_messages = mongo_find(mongo_url, f"{stack.namespace}_portal", "messages",
                                 {"card_id": card["id"]})
    assert portal_messages and all("legacy" not in (m.get("text") or "")
                                   for m in portal_messages)
    assert uuid.UUID(card["id"])
