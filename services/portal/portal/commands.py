"""What a customer does on the portal, each as one transaction with its outgoing event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from desk_contracts.access import AddressSet
from desk_contracts.channels import PORTAL
from desk_contracts.events import (
    AttachmentRef,
    CustomerGroupsChanged,
    CustomerPreferencesChanged,
    Person,
    ReplyReceived,
    RequestDeflected,
    RequestRated,
    RequestReceived,
)
from desk_runtime.service import ServiceRuntime
from desk_runtime.unit_of_work import UnitOfWork
from prometheus_client import Counter

from portal.domain.access import AccessChange, Organisation
from portal.domain.i18n import LANGUAGES
from portal.repository import AccessAlreadySeeded, PortalRepository

SUBMITTED = Counter("desk_portal_submissions_total",
                    "What customers sent from the portal", ["kind"])

NOTIFICATION_KINDS = ("acknowledgment", "status_changed", "agent_reply", "rating_request",
                      "reminder")


async def submit_request(runtime: ServiceRuntime, *, email: str, service_id: str, subject: str,
                         text: str, fields: dict[str, Any], attachments: list[AttachmentRef],
                         due_date: str | None, language: str, follow_up_of: str | None = None,
                         correlation_id: str | None = None) -> str:
    """Publish `request.received`; the card shows up in the list when boards has made it."""
    request_id = f"portal-{uuid.uuid4()}"
    now = datetime.now(UTC)
    event = RequestReceived(
        request_id=request_id, channel=PORTAL, service_id=service_id,
        requester=Person(email=email), subject=subject, text=text, fields=fields,
        attachments=tuple(attachments), received_at=now, follow_up_of=follow_up_of,
        due_date=due_date, language=language if language in LANGUAGES else None,
    )

    async def work(uow: UnitOfWork) -> None:
        await PortalRepository(uow.db).record_request_submission(
            request_id, email=email, service_id=service_id, subject=subject,
            follow_up_of=follow_up_of, now=now, session=uow.session)
        await uow.emit(event)

    await runtime.transact(work, correlation_id=correlation_id)
    SUBMITTED.labels("follow_up" if follow_up_of else "request").inc()
    return request_id


async def submit_reply(runtime: ServiceRuntime, *, email: str, card_id: str, text: str,
                       attachments: list[AttachmentRef], correlation_id: str | None = None
                       ) -> str:
    """Publish `request.reply_received`; shown as "sending" until boards echoes the comment."""
    reply_id = f"portal-{uuid.uuid4()}"
    now = datetime.now(UTC)
    event = ReplyReceived(reply_id=reply_id, card_id=card_id, channel=PORTAL,
                          author=Person(email=email), text=text,
                          attachments=tuple(attachments), received_at=now,
                          threading_reason="portal")

    async def work(uow: UnitOfWork) -> None:
        await PortalRepository(uow.db).record_reply_submission(
            reply_id, email=email, card_id=card_id, text=text, attachments=attachments,
            now=now, session=uow.session)
        await uow.emit(event)

    await runtime.transact(work, correlation_id=correlation_id)
    SUBMITTED.labels("reply").inc()
    return reply_id


async def rate(runtime: ServiceRuntime, *, card_id: str, score: int, comment: str | None,
               rated_by: str | None, correlation_id: str | None = None) -> None:
    now = datetime.now(UTC)

    async def work(uow: UnitOfWork) -> None:
        await PortalRepository(uow.db).apply_rating(card_id, score, comment, now, uow.session)
        await uow.emit(RequestRated(card_id=card_id, rating=score, comment=comment,
                                    rated_at=now, rated_by=rated_by))

    await runtime.transact(work, correlation_id=correlation_id)
    SUBMITTED.labels("rating").inc()


async def save_preferences(runtime: ServiceRuntime, *, email: str,
                           channels: dict[str, tuple[str, ...]],
                           correlation_id: str | None = None) -> None:
    """Keep the customer's choice and tell notify, which owns the sending."""
    now = datetime.now(UTC)

    async def work(uow: UnitOfWork) -> None:
        await PortalRepository(uow.db).save_preferences(email, channels, now, uow.session)
        await uow.emit(CustomerPreferencesChanged(email=email, channels=channels,
                                                  changed_at=now))

    await runtime.transact(work, correlation_id=correlation_id)
    SUBMITTED.labels("preferences").inc()


# ---- access configuration (the portal owns customers: who may sign in, the groups) ----------

class AccessChangedMeanwhile(Exception):
    """Another admin changed the configuration between read and write; read again."""


def _groups_event(doc: dict, now: datetime) -> CustomerGroupsChanged:
    return CustomerGroupsChanged(
        groups={k: AddressSet.model_validate(v) for k, v in (doc.get("groups") or {}).items()},
        revision=doc["revision"], changed_at=now,
        # intake lets an organisation's members reply on each other's requests
        organisations={k: AddressSet(domains=tuple(v.get("domains") or ()),
                                     addresses=tuple(v.get("addresses") or ()))
                       for k, v in (doc.get("organisations") or {}).items()})


async def seed_access(runtime: ServiceRuntime, allow: AddressSet,
                      groups: dict[str, AddressSet],
                      organisations: dict[str, Organisation] | None = None) -> None:
    """At the first start, store the settings' allowlist, groups and organisations and
    tell intake (a configuration stored before organisations existed gets those)."""
    now = datetime.now(UTC)
    organisations = organisations or {}
    if await PortalRepository(runtime.db).access_doc() is not None:
        await PortalRepository(runtime.db).seed_organisations(organisations)
        return

    async def work(uow: UnitOfWork) -> None:
        repo = PortalRepository(uow.db)
        await repo.seed_access(allow, groups, organisations, now, uow.session)
        await uow.emit(_groups_event(await repo.access_doc(uow.session), now))

    try:
        await runtime.transact(work)
    except AccessAlreadySeeded:  # another replica seeded it first
        pass


async def change_access(runtime: ServiceRuntime, *, revision: int, change: AccessChange,
                        correlation_id: str | None = None) -> dict:
    """Apply an admin's change to stored revision `revision`; a change to the groups is
    published in the same transaction, so intake's copy cannot miss it."""
    now = datetime.now(UTC)

    async def work(uow: UnitOfWork) -> dict:
        doc = await PortalRepository(uow.db).change_access(revision, change, now, uow.session)
        if doc is None:
            raise AccessChangedMeanwhile()
        if change.touches_groups:
            await uow.emit(_groups_event(doc, now))
        return doc

    return await runtime.transact(work, correlation_id=correlation_id)


async def record_deflection(runtime: ServiceRuntime, *, article_id: str,
                            service_id: str | None, language: str,
                            correlation_id: str | None = None) -> None:
    """Publish `request.deflected`: an article solved what the customer was about to ask,
    so their draft was closed without a request (boards' statistics count it)."""
    event = RequestDeflected(article_id=article_id, service_id=service_id,
                             language=language if language in LANGUAGES else None,
                             deflected_at=datetime.now(UTC))

    async def work(uow: UnitOfWork) -> None:
        await uow.emit(event)

    await runtime.transact(work, correlation_id=correlation_id)
    SUBMITTED.labels("deflected").inc()
