"""Helpers for intake's tests: the corpus, SMTP delivery and intake's admin view."""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import hashlib
import smtplib
import uuid
from email.message import EmailMessage
from pathlib import Path

import httpx

from tests.support.stack import Stack, auth, wait_until

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "mail"


def corpus(name: str, tag: str) -> bytes:
    """A corpus message made unique for this run (its Message-IDs carry `tag`)."""
    return (CORPUS / name).read_bytes().replace(b"CORPUS", tag.encode())


def new_tag() -> str:
    return "t" + uuid.uuid4().hex[:10]


def smtp_send(stack: Stack, raw: bytes, rcpt: str | list[str], mail_from: str | None = None
              ) -> dict:
    """Deliver raw bytes to intake's SMTP listener; returns {rcpt: (code, msg)} refusals.

    The envelope sender is the mail's From address unless given, as the author's own
    server sends it (intake compares the two).
    """
    if mail_from is None:
        headers = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
        found = email.utils.getaddresses([str(headers.get("From") or "")])
        mail_from = found[0][1] if found and "@" in found[0][1] else "sender@mx.example"
    with smtplib.SMTP("127.0.0.1", stack.ports["intake_smtp"], timeout=30) as smtp:
        return smtp.sendmail(mail_from, rcpt, raw)


def inbound(stack: Stack, message_id: str | None = None, **params) -> list[dict]:
    if message_id:
        params["message_id"] = message_id
    r = httpx.get(f"{stack['intake'].url}/v1/inbound/messages", params=params,
                  headers=auth(stack), timeout=10)
    r.raise_for_status()
    return r.json()["items"]


def processed(stack: Stack, message_id: str, timeout: float = 30) -> dict:
    """The inbound record of a message once intake has decided what it is."""
    def done():
        items = [i for i in inbound(stack, message_id) if i["status"] != "pending"]
        return items[0] if items else None
    return wait_until(done, timeout=timeout)


def processed_raw(stack: Stack, raw: bytes, timeout: float = 30) -> dict:
    """The inbound record of exactly these bytes (works without a Message-ID)."""
    sha = hashlib.sha256(raw).hexdigest()
    def done():
        items = [i for i in inbound(stack, raw_sha256=sha) if i["status"] != "pending"]
        return items[0] if items else None
    return wait_until(done, timeout=timeout)


def request_number(stack: Stack, request_id: str, timeout: float = 30) -> str:
    def number():
        r = httpx.get(f"{stack['intake'].url}/v1/requests/{request_id}", headers=auth(stack),
                      timeout=10)
        return r.json().get("number") if r.status_code == 200 else None
    return wait_until(number, timeout=timeout)


def card(stack: Stack, ref: str) -> dict:
    r = httpx.get(f"{stack['boards'].url}/v1/cards/{ref}", headers=auth(stack), timeout=10)
    r.raise_for_status()
    return r.json()


def comments(stack: Stack, ref: str) -> list[dict]:
    r = httpx.get(f"{stack['boards'].url}/v1/cards/{ref}/comments", headers=auth(stack),
                  timeout=10)
    r.raise_for_status()
    body = r.json()
    return body["items"] if isinstance(body, dict) else body


def wait_for_catalog(stack: Stack, service: str = "problem") -> None:
    """Intake takes the catalog in from the bus right after start-up."""
    def ready():
        r = httpx.post(f"{stack['intake'].url}/v1/requests", json={
            "service": service, "requester": {"email": "probe@acme.example"},
            "subject": "probe", "fields": {"no_such_field": 1}}, timeout=10)
        return r.status_code == 422
    wait_until(ready, timeout=30)


def outbox_events(stack: Stack, mongo_url: str, routing_key: str) -> list[dict]:
    """Events intake committed to its outbox (what it published or is about to)."""
    import asyncio

    from pymongo import AsyncMongoClient

    async def run():
        client = AsyncMongoClient(mongo_url, tz_aware=True)
        try:
            db = client[f"{stack.namespace}_intake"]
            return [d["envelope"] async for d in db["outbox"].find({"routing_key": routing_key})]
        finally:
            await client.close()
    return asyncio.run(run())


def knows_sent(stack: Stack, mongo_url: str, message: EmailMessage) -> bool:
    """Whether intake has learnt a message notify sent (its notification.sent): only then
    does a reply naming nothing but its Message-ID thread onto the card."""
    from pymongo import MongoClient

    key = str(message["Message-ID"]).strip().strip("<>")
    with MongoClient(mongo_url) as client:
        return client[f"{stack.namespace}_intake"]["threads"].find_one(
            {"message_ids": key}, {"_id": 1}) is not None
