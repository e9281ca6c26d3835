"""Who may write into a request by e-mail: the MTA pipe's credential, a forged From, a
leaked reply address, cc'd and organisation participants, DKIM and a trusted upstream's
Authentication-Results — real mail through intake's SMTP listener, boards and notify."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.utils import make_msgid

import httpx
import pytest

from tests.intake.conftest import SIGNED, TRUSTED_MX
from tests.intake.helpers import (
    comments,
    inbound,
    knows_sent,
    new_tag,
    outbox_events,
    processed,
    request_number,
    smtp_send,
)
from tests.support.stack import auth, mta_auth, wait_until

pytestmark = pytest.mark.slow
PROBLEM = "problem@desk.localhost"


def mail(sender: str, subject: str, text: str, to: str = PROBLEM, **headers) -> EmailMessage:
    msg = EmailMessage()
    for k, v in headers.items():  # trace headers an MTA prepends come first
        msg[k.replace("_", "-")] = v
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    msg.set_content(text)
    return msg


def open_request(desk, sink, customer: str, **headers) -> tuple[str, EmailMessage]:
    """A customer's new request by mail; returns its number and the acknowledgment."""
    first = mail(customer, f"VPN drops {new_tag()}", "It drops every hour.", **headers)
    smtp_send(desk, first.as_bytes(), PROBLEM)
    number = request_number(desk, processed(desk, first["Message-ID"].strip("<>"))["request_id"])
    return number, sink.wait_for(customer)[0]


def reply_to(ack: EmailMessage, sender: str, text: str, **headers) -> EmailMessage:
    return mail(sender, "Re: " + str(ack["Subject"]), text, to=str(ack["Reply-To"]),
                In_Reply_To=str(ack["Message-ID"]), **headers)


def on_card(desk, number: str, text: str) -> list[dict]:
    return [c for c in comments(desk, number) if text in (c.get("text") or "")]


def replies_published(desk, mongo_url, text: str) -> list[dict]:
    return [e for e in outbox_events(desk, mongo_url, "request.reply_received.v1")
            if text in e["payload"]["text"]]


def accept(desk, item_id: str, **params) -> httpx.Response:
    return httpx.post(f"{desk['intake'].url}/v1/quarantine/{item_id}/accept", params=params,
                      headers=auth(desk), timeout=10)


# --- finding: the MTA pipe is open and threading trusts From ---------------------------------

def test_the_mail_pipe_refuses_callers_without_the_mta_token(desk, sink):
    customer = f"{new_tag()}@acme.example"
    number, _ = open_request(desk, sink, customer)
    forged = mail(customer, f"Re: [{number}] VPN", "Close this ticket, all fine.")
    url = f"{desk['intake'].url}/v1/inbound/email"
    for headers in ({}, {"Authorization": "Bearer guessed"}, auth(desk)):
        r = httpx.post(url, content=forged.as_bytes(),
                       headers={"Content-Type": "message/rfc822", **headers}, timeout=10)
        assert r.status_code == 401, (headers, r.text)
    assert inbound(desk, forged["Message-ID"].strip("<>")) == []  # nothing was stored
    # the MTA's own delivery, with the envelope sender it received, is taken; the forged
    # From does not match that sender, so it is held instead of reaching the card
    r = httpx.post(url, params={"sender": "mallory@evil.example"}, content=forged.as_bytes(),
                   headers={"Content-Type": "message/rfc822", **mta_auth(desk)}, timeout=10)
    assert r.status_code == 202
    rec = processed(desk, forged["Message-ID"].strip("<>"))
    assert (rec["status"], rec["reason"]) == ("quarantined", "unverified_sender")
    assert "envelope sender mallory@evil.example" in rec["detail"]


def test_a_forged_from_over_smtp_is_held_not_a_customer_comment(desk, sink, mongo_url):
    customer = f"{new_tag()}@acme.example"
    number, ack = open_request(desk, sink, customer)
    forged = reply_to(ack, customer, "Please send the VPN config to mallory@evil.example.")
    smtp_send(desk, forged.as_bytes(), str(ack["Reply-To"]), mail_from="mallory@evil.example")
    rec = processed(desk, forged["Message-ID"].strip("<>"))
    assert (rec["status"], rec["reason"]) == ("quarantined", "unverified_sender")
    assert "could not be verified" in rec["detail"] and number in rec["detail"]
    [held] = [q for q in httpx.get(f"{desk['intake'].url}/v1/quarantine",
                                   params={"reason": "unverified_sender"}, headers=auth(desk),
                                   timeout=10).json()["items"] if q["id"] == rec["id"]]
    assert held["number"] == number and held["threading_reason"] == "reply_token"
    assert not on_card(desk, number, "mallory@evil.example")
    assert not replies_published(desk, mongo_url, "mallory@evil.example")
    # the same reply really sent by the customer's server goes straight through
    real = reply_to(ack, customer, "It dropped again at 10:00.")
    smtp_send(desk, real.as_bytes(), str(ack["Reply-To"]))
    assert processed(desk, real["Message-ID"].strip("<>"))["status"] == "reply"
    assert wait_until(lambda: on_card(desk, number, "It dropped again at 10:00."))


# --- finding: a leaked reply address or Message-ID lets a stranger write in -------------------

def test_a_stranger_with_the_reply_address_is_held_until_an_agent_accepts(desk, sink, mongo_url):
    customer = f"{new_tag()}@acme.example"
    number, ack = open_request(desk, sink, customer)
    stranger = reply_to(ack, "mallory@evil.example", "I am the new IT contact, close it.")
    smtp_send(desk, stranger.as_bytes(), str(ack["Reply-To"]))
    rec = processed(desk, stranger["Message-ID"].strip("<>"))
    assert (rec["status"], rec["reason"]) == ("quarantined", "unverified_sender")
    assert "not a participant" in rec["detail"]
    # the acknowledgment's Message-ID alone (no reply address) is held the same way, once
    # intake has learnt it (notify's notification.sent; the mail may reach the sink first)
    wait_until(lambda: knows_sent(desk, mongo_url, ack))
    by_id = mail("mallory@evil.example", "Re: VPN", "Me again.",
                 In_Reply_To=str(ack["Message-ID"]))
    smtp_send(desk, by_id.as_bytes(), PROBLEM)
    rec2 = processed(desk, by_id["Message-ID"].strip("<>"))
    assert (rec2["status"], rec2["reason"]) == ("quarantined", "unverified_sender")
    assert not on_card(desk, number, "new IT contact")
    assert not replies_published(desk, mongo_url, "new IT contact")

    # an agent reads it and accepts it: it reaches the card, marked as accepted
    assert accept(desk, rec["id"]).status_code == 202
    assert accept(desk, rec["id"]).status_code == 404  # once
    comment = wait_until(lambda: on_card(desk, number, "new IT contact"))[0]
    assert comment["author"]["kind"] == "customer"
    [event] = replies_published(desk, mongo_url, "new IT contact")
    assert event["payload"]["threading_reason"] == (
        "reply_token (unverified sender accepted by an agent)")
    # accepting one message does not make the stranger a participant
    again = reply_to(ack, "mallory@evil.example", "One more thing.")
    smtp_send(desk, again.as_bytes(), str(ack["Reply-To"]))
    assert processed(desk, again["Message-ID"].strip("<>"))["reason"] == "unverified_sender"
    # ... unless the agent says so
    assert accept(desk, rec2["id"], trust_sender="true").status_code == 202
    wait_until(lambda: on_card(desk, number, "Me again."))
    later = reply_to(ack, "mallory@evil.example", "Thanks for adding me.")
    smtp_send(desk, later.as_bytes(), str(ack["Reply-To"]))
    assert processed(desk, later["Message-ID"].strip("<>"))["status"] == "reply"
    # only held replies can be accepted this way
    assert accept(desk, "no-such-id").status_code == 404
    assert httpx.post(f"{desk['intake'].url}/v1/quarantine/{rec['id']}/accept",
                      timeout=10).status_code == 401


def test_people_copied_on_the_request_and_colleagues_of_its_organisation_may_reply(desk, sink):
    customer = f"{new_tag()}@acme.example"
    colleague = f"{new_tag()}@acme.example"
    number, ack = open_request(desk, sink, customer, Cc=colleague)
    from_cc = reply_to(ack, colleague, "Same problem on my laptop.")
    smtp_send(desk, from_cc.as_bytes(), str(ack["Reply-To"]))
    assert processed(desk, from_cc["Message-ID"].strip("<>"))["status"] == "reply"
    assert wait_until(lambda: on_card(desk, number, "Same problem on my laptop."))
    # same domain, but not copied and no organisation configured for acme.example: held
    other = reply_to(ack, f"{new_tag()}@acme.example", "Me too.")
    smtp_send(desk, other.as_bytes(), str(ack["Reply-To"]))
    assert processed(desk, other["Message-ID"].strip("<>"))["reason"] == "unverified_sender"

    # org.example is an organisation (INTAKE_ORGANISATIONS): its members are participants
    org_customer = f"{new_tag()}@org.example"
    org_number, org_ack = open_request(desk, sink, org_customer)
    member = reply_to(org_ack, f"{new_tag()}@org.example", "Covering for my colleague.")
    smtp_send(desk, member.as_bytes(), str(org_ack["Reply-To"]))
    assert processed(desk, member["Message-ID"].strip("<>"))["status"] == "reply"
    assert wait_until(lambda: on_card(desk, org_number, "Covering for my colleague."))


# --- DKIM and a trusted upstream's Authentication-Results ------------------------------------

def test_a_dkim_signed_reply_passes_even_through_a_forwarder_and_a_tampered_one_is_held(
        desk, sink):
    customer = f"{new_tag()}@{SIGNED.domain}"
    number, ack = open_request(desk, sink, customer)
    signed = SIGNED.sign(reply_to(ack, customer, "Signed and sealed.").as_bytes())
    # a forwarder rewrote the envelope sender (SRS): DKIM still vouches for From
    smtp_send(desk, signed, str(ack["Reply-To"]),
              mail_from="SRS0=ab12=XY=signed.example=x@forwarder.example")
    rec = processed(desk, _message_id(signed))
    assert rec["status"] == "reply"
    assert wait_until(lambda: on_card(desk, number, "Signed and sealed."))

    tampered = SIGNED.sign(reply_to(ack, customer, "Original words.").as_bytes()).replace(
        b"Original words.", b"Refund me to IBAN XX00.")
    smtp_send(desk, tampered, str(ack["Reply-To"]))
    rec = processed(desk, _message_id(tampered))
    assert (rec["status"], rec["reason"]) == ("quarantined", "unverified_sender")
    assert "dkim=fail (d=signed.example)" in rec["detail"]
    assert not on_card(desk, number, "IBAN")


def test_a_trusted_upstreams_dmarc_fail_holds_a_participants_reply(desk, sink):
    customer = f"{new_tag()}@acme.example"
    number, ack = open_request(desk, sink, customer)
    spoof = reply_to(ack, customer, "Spoofed through our MX.", Authentication_Results=(
        f"{TRUSTED_MX}; spf=pass smtp.mailfrom=acme.example; dkim=none; "
        "dmarc=fail (p=none) header.from=acme.example"))
    smtp_send(desk, spoof.as_bytes(), str(ack["Reply-To"]))
    rec = processed(desk, spoof["Message-ID"].strip("<>"))
    assert (rec["status"], rec["reason"]) == ("quarantined", "unverified_sender")
    assert f"dmarc=fail by {TRUSTED_MX}" in rec["detail"]
    # a header of the same shape from anyone else is the sender's own claim: ignored
    claimed = reply_to(ack, customer, "Honest reply.", Authentication_Results=(
        "mx.elsewhere.example; dmarc=fail header.from=acme.example"))
    smtp_send(desk, claimed.as_bytes(), str(ack["Reply-To"]))
    assert processed(desk, claimed["Message-ID"].strip("<>"))["status"] == "reply"
    assert wait_until(lambda: on_card(desk, number, "Honest reply."))
    assert not on_card(desk, number, "Spoofed through our MX.")


def _message_id(raw: bytes) -> str:
    return str(email.message_from_bytes(raw)["Message-ID"]).strip().strip("<>")
