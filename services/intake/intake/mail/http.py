"""E-mail over HTTP (an MTA pipe posts raw mail) and the operator's view of inbound mail.

`POST /v1/inbound/email` takes `message/rfc822` bytes from the MTA, which presents
INTAKE_MTA_TOKEN (anyone else could post mail "from" any customer); the service comes from
`?recipient=` (an address of ours, e.g. `problem@desk.example`) or from the mail's own
Delivered-To / X-Original-To / To / Cc headers, and `?sender=` is the envelope sender the
MTA received (compared with From like the SMTP listener's). Admin endpoints (Bearer
INTAKE_ADMIN_TOKEN) show the quarantine, each inbound message's outcome and threading reason,
accept replies held as `unverified_sender`, and manage IMAP mailboxes.
"""

from __future__ import annotations

import hmac
import re
from datetime import UTC, datetime
from typing import Any, Literal

from desk_contracts.channels import EMAIL
from desk_runtime.config_cache import config_cache
from desk_runtime.http import (
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    TooLarge,
    Unauthorized,
    require_admin,
)
from desk_runtime.metrics import REJECTED_INPUT
from desk_runtime.secretbox import SecretBox
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from intake.mail.ingest import INBOUND_ROUTES_KEY, MailIngest, Recipient
from intake.mail.parse import Unparseable, parse_mail
from intake.repository import IntakeRepository

router = APIRouter(prefix="/v1", tags=["e-mail"])
admin = APIRouter(prefix="/v1", tags=["admin"], dependencies=[Depends(require_admin)])


def _channel(request: Request):
    return request.app.state.channels[EMAIL]


def _ingest(request: Request) -> MailIngest:
    return _channel(request).ingest


def require_mta(request: Request) -> None:
    """FastAPI dependency: the MTA's Bearer token (INTAKE_MTA_TOKEN), in constant time."""
    expected = request.app.state.settings.mta_token
    if not expected:
        REJECTED_INPUT.labels("intake", EMAIL, "pipe_closed").inc()
        raise Forbidden("the mail pipe is closed (no INTAKE_MTA_TOKEN configured)")
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(),
                                                             expected.encode()):
        REJECTED_INPUT.labels("intake", EMAIL, "bad_mta_token").inc()
        raise Unauthorized("the MTA's Bearer token is required")


@router.post("/inbound/email", status_code=202, dependencies=[Depends(require_mta)])
async def inbound_email(request: Request, recipient: str | None = None,
                        sender: str | None = Query(None, max_length=998)) -> JSONResponse:
    """`sender` is the envelope sender (MAIL FROM) the MTA received; `<>` for a bounce."""
    settings = request.app.state.settings
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "message/rfc822":
        REJECTED_INPUT.labels("intake", EMAIL, "wrong_content_type").inc()
        raise DomainError("send the raw message with Content-Type: message/rfc822")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > settings.max_message_bytes:
            REJECTED_INPUT.labels("intake", EMAIL, "too_large").inc()
            raise TooLarge(f"the message is larger than {settings.max_message_bytes} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        REJECTED_INPUT.labels("intake", EMAIL, "empty").inc()
        raise Invalid("the message is empty")
    domain = settings.inbound_domain
    if recipient:
        rcpt = await _ingest(request).recipient(recipient)
        if rcpt is None:
            REJECTED_INPUT.labels("intake", EMAIL, "foreign_recipient").inc()
            raise Invalid(f"{recipient} is not an address of this service desk ({domain} or "
                          "an inbound address)")
        recipients = [rcpt]
    else:
        # The service comes from the mail's headers; an unreadable mail still gets stored
        # (and quarantined by processing) instead of refused.
        try:
            addresses = parse_mail(raw).recipients
        except Unparseable:
            addresses = []
        found = [r for r in [await _ingest(request).recipient(a) for a in addresses] if r]
        recipients = [r for r in found if r.token is None][:1] or found[:1]
    envelope_sender = None if sender is None else sender.strip().strip("<>").lower()
    accepted = await _ingest(request).accept(raw, recipients or [Recipient("", None)],
                                             source="api", envelope_sender=envelope_sender)
    return JSONResponse({"accepted": [{"id": i, "duplicate": d} for i, d in accepted]},
                        status_code=202)


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k not in ("accepted_epoch",)}
    out["id"] = out.pop("_id")
    for k, v in list(out.items()):
        if isinstance(v, datetime):
            out[k] = v.astimezone(UTC).isoformat()
    return out


@admin.get("/inbound/messages")
async def inbound_messages(request: Request, message_id: str | None = None,
                           status: str | None = None, raw_sha256: str | None = None,
                           mailbox: str | None = None, limit: int = Query(50, ge=1, le=500)
                           ) -> dict:
    """What happened to each inbound mail: status, reason, threading_reason, card/request."""
    repo = IntakeRepository(request.app.state.runtime.db)
    found = await repo.inbound_messages(
        message_id=message_id.strip().strip("<>") if message_id else None, status=status,
        raw_sha256=raw_sha256.lower() if raw_sha256 else None, mailbox=mailbox, limit=limit)
    return {"items": [_public(d) for d in found]}


@admin.get("/quarantine")
async def quarantine(request: Request, reason: str | None = None,
                     limit: int = Query(100, ge=1, le=1000)) -> dict:
    repo = IntakeRepository(request.app.state.runtime.db)
    return {"items": [_public(d) for d in await repo.quarantined(reason, limit)]}


@admin.get("/quarantine/{item_id}/raw")
async def quarantine_raw(item_id: str, request: Request) -> Response:
    """The exact bytes that arrived (e.g. to fix and re-post them)."""
    repo = IntakeRepository(request.app.state.runtime.db)
    item = await repo.quarantined_item(item_id)
    if item is None or not item.get("raw_sha256"):
        raise NotFound("no such quarantined message")
    raw = await request.app.state.attachments.blobs.get(item["raw_sha256"])
    if raw is None:
        raise NotFound("the raw bytes are gone")
    return Response(raw, media_type="message/rfc822",
                    headers={"Content-Disposition": f'attachment; filename="{item_id}.eml"'})


@admin.post("/quarantine/{item_id}/retry", status_code=202)
async def quarantine_retry(item_id: str, request: Request) -> dict:
    """Process a quarantined mail again (e.g. after its service or access rule was fixed)."""
    ingest = _ingest(request)
    if not await ingest.requeue(item_id):
        raise NotFound("no such quarantined message")
    return {"id": item_id, "status": "pending"}


@admin.post("/quarantine/{item_id}/accept", status_code=202)
async def quarantine_accept(item_id: str, request: Request,
                            trust_sender: bool = False) -> dict:
    """An agent read a reply held as `unverified_sender` and lets it reach its card.

    `trust_sender=true` also makes the sender a participant, so their next replies go
    through without being held.
    """
    if not await _ingest(request).accept_held(item_id, trust_sender=trust_sender):
        raise NotFound("no reply held as unverified_sender with this id")
    return {"id": item_id, "status": "pending", "accepted": True}


class MailboxConfig(BaseModel):
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(143, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "ssl"
    username: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=1000)
    folder: str = Field("INBOX", min_length=1, max_length=255)
    after: Literal["seen", "move"] = "seen"
    move_to: str | None = Field(None, max_length=255)
    enabled: bool = True


def _mailbox_public(doc: dict) -> dict:
    out = _public(doc)
    out.pop("password", None)
    return out


@admin.put("/mailboxes/{service_id}")
async def put_mailbox(service_id: str, body: MailboxConfig, request: Request) -> dict:
    """Poll an IMAP mailbox into `service_id` (for teams that cannot forward mail)."""
    if body.after == "move" and not body.move_to:
        raise Invalid("move_to is required when after=move",
                      details={"fields": {"move_to": "is required when after=move"}})
    repo = IntakeRepository(request.app.state.runtime.db)
    if await repo.service(service_id) is None:
        raise NotFound(f"no service {service_id!r}")
    current = await repo.mailbox(service_id) or {}
    same_box = (current.get("host"), current.get("username"), current.get("folder")) == (
        body.host, body.username, body.folder)
    fields = body.model_dump()
    # the password is kept sealed (AES-GCM, key from the link secret), never in clear
    fields["password"] = SecretBox(request.app.state.settings.link_secret, "imap").seal(
        fields["password"])
    doc = {"_id": service_id, **fields, "updated_at": datetime.now(UTC),
           # another mailbox starts from its first message
           "uidvalidity": current.get("uidvalidity") if same_box else None,
           "last_uid": current.get("last_uid", 0) if same_box else 0}
    await repo.save_mailbox(doc)
    return _mailbox_public(doc)


@admin.get("/mailboxes")
async def list_mailboxes(request: Request) -> dict:
    repo = IntakeRepository(request.app.state.runtime.db)
    return {"items": [_mailbox_public(d) for d in await repo.mailboxes()]}


@admin.delete("/mailboxes/{service_id}", status_code=204)
async def delete_mailbox(service_id: str, request: Request) -> Response:
    repo = IntakeRepository(request.app.state.runtime.db)
    await repo.delete_mailbox(service_id)
    return Response(status_code=204)


@admin.post("/mailboxes/{service_id}/poll")
async def poll_mailbox(service_id: str, request: Request) -> dict:
    """Poll now instead of at the next interval; answers what was fetched."""
    repo = IntakeRepository(request.app.state.runtime.db)
    mailbox = await repo.mailbox(service_id)
    if mailbox is None:
        raise NotFound(f"no mailbox for {service_id!r}")
    return await _channel(request).imap.poll(mailbox)


# --- inbound addresses: which address routes mail to which service ---------------------------

ADDRESS = re.compile(r"^[a-z0-9.!#$%&'*/=?^_`{|}~+-]{1,64}@[a-z0-9-]+(\.[a-z0-9-]+)+$")


class InboundAddress(BaseModel):
    address: str = Field(min_length=3, max_length=254)
    service_id: str = Field(min_length=1, max_length=63)


def _address_public(doc: dict) -> dict:
    return {"address": doc["_id"], "service_id": doc["service"],
            "updated_at": doc["updated_at"].astimezone(UTC).isoformat()
            if doc.get("updated_at") else None}


def _bad_address(field: str, reason: str) -> Invalid:
    REJECTED_INPUT.labels("intake", "admin", "invalid_inbound_address").inc()
    return Invalid(f"{field}: {reason}", details={"fields": {field: reason}})


@admin.get("/inbound-addresses")
async def list_inbound_addresses(request: Request) -> dict:
    """Each address an admin routed to a service, and the inbound domain whose
    `<service>@` addresses route by themselves."""
    repo = IntakeRepository(request.app.state.runtime.db)
    return {"items": [_address_public(d) for d in await repo.inbound_addresses()],
            "inbound_domain": request.app.state.settings.inbound_domain}


@admin.put("/inbound-addresses")
async def put_inbound_address(body: InboundAddress, request: Request) -> dict:
    """Mail to `address` opens requests in (and threads within) `service_id`; an address
    of another domain is one whose mail reaches intake (forwarded, or polled)."""
    address = body.address.strip().lower()
    if not ADDRESS.match(address):
        raise _bad_address("address", "not an e-mail address")
    domain = request.app.state.settings.inbound_domain.lower()
    local, _, at = address.rpartition("@")
    repo = IntakeRepository(request.app.state.runtime.db)
    if at == domain and "+" in local:
        raise _bad_address("address", f"'+' on {domain} carries reply tokens")
    service = await repo.service(body.service_id)
    if service is None:
        raise _bad_address("service_id", "no such service")
    if at == domain and local != body.service_id and await repo.service(local) is not None:
        raise _bad_address("address", f"is the address of service {local!r} already")
    doc = await repo.save_inbound_address(address, body.service_id)
    config_cache(request.app.state.runtime.db.name).forget(INBOUND_ROUTES_KEY)
    return _address_public(doc)


@admin.delete("/inbound-addresses/{address}", status_code=204)
async def delete_inbound_address(address: str, request: Request) -> Response:
    repo = IntakeRepository(request.app.state.runtime.db)
    if not await repo.delete_inbound_address(address.strip().lower()):
        raise NotFound(f"no inbound address {address!r}")
    config_cache(request.app.state.runtime.db.name).forget(INBOUND_ROUTES_KEY)
    return Response(status_code=204)
