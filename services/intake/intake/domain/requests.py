"""A request as every channel hands it in, and the one way its event and record are built."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from desk_contracts.events import AttachmentRef, Person, RequestReceived


@dataclass(frozen=True)
class RequestDraft:
    """What a channel knows about a new request, before the catalog has checked it."""

    request_id: str
    channel: str
    service_id: str
    requester: Person
    subject: str
    text: str
    received_at: datetime
    # the form's answers; None = the channel has no form (e-mail), nothing to validate
    fields: dict[str, Any] | None = None
    attachments: tuple[AttachmentRef, ...] = ()
    channel_ref: str | None = None
    language: str | None = None
    due_date: str | None = None
    # the address the service's access rule is checked against; None = unknown (anyone)
    access_address: str | None = None
    # e-mail: the first mail's Message-ID (replies to it thread) and whom it was copied to
    message_id: str | None = None
    cc: tuple[str, ...] = field(default=())


def request_received(draft: RequestDraft, fields: dict[str, Any]) -> RequestReceived:
    """The event, with the form's answers as the catalog cleaned them."""
    return RequestReceived(
        request_id=draft.request_id, channel=draft.channel, service_id=draft.service_id,
        requester=draft.requester, subject=draft.subject, text=draft.text, fields=fields,
        attachments=draft.attachments, received_at=draft.received_at,
        channel_ref=draft.channel_ref, due_date=draft.due_date, language=draft.language)


def request_record(draft: RequestDraft, idempotency_key: str | None) -> dict[str, Any]:
    """What intake keeps of an accepted request: enough to answer its status, thread its
    card's first mail, list it in a chat and write to its requester in their language."""
    record: dict[str, Any] = {
        "_id": draft.request_id, "idempotency_key": idempotency_key, "channel": draft.channel,
        "service_id": draft.service_id, "received_at": draft.received_at,
        "subject": draft.subject, "lang": draft.language,
        "requester": draft.requester.model_dump(mode="json", exclude_none=True)}
    if draft.message_id:
        record["message_id"] = draft.message_id
    if draft.cc:
        # copied on the first mail: participants who may answer on the request
        record["cc"] = list(draft.cc)
    return record
