"""Accepting a new request: the one path every channel takes (web API, e-mail, Telegram).

`accept_request` checks the request against intake's copy of the catalog (the service
exists and is active, its access rule admits the requester, the form's answers are valid),
recognises a repeat (Idempotency-Key, or the request's own id), and stores the request
and emits `request.received` in one transaction. A channel turns the refusals below into
its own answer (HTTP status, quarantine, a message in the chat).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from desk_contracts.catalog import FieldErrors, ServiceDefinition, validate_fields
from desk_runtime.service import ServiceRuntime
from desk_runtime.unit_of_work import UnitOfWork

from intake.access import Refusal, refusal
from intake.domain.requests import RequestDraft, request_received, request_record
from intake.repository import AlreadyRecorded, IntakeRepository


class RequestRefused(Exception):
    """The catalog does not take this request; `reason` is a stable code."""

    reason = "refused"


class UnknownService(RequestRefused):
    reason = "unknown_service"

    def __init__(self, service_id: str):
        super().__init__(f"no active service {service_id!r}")
        self.service_id = service_id


class AccessRefused(RequestRefused):
    def __init__(self, service: ServiceDefinition, why: Refusal):
        super().__init__(why.message)
        self.service = service
        self.refusal = why
        self.reason = why.reason


class InvalidFields(RequestRefused):
    reason = "invalid_fields"

    def __init__(self, service: ServiceDefinition, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.service = service
        self.errors = errors


@dataclass(frozen=True)
class Accepted:
    request_id: str
    replayed: bool = False  # an earlier call already stored it (the same key or id)


async def accept_request(
    runtime: ServiceRuntime,
    draft: RequestDraft,
    *,
    idempotency_key: str | None = None,
    also: Callable[[UnitOfWork], Awaitable[None]] | None = None,
    allow_inactive: bool = False,
    correlation_id: str | None = None,
) -> Accepted:
    """Store `draft` as a request and emit `request.received`, or raise RequestRefused.

    `also` runs first in the same transaction (a channel's own state: the inbound mail's
    outcome, the finished dialog); what it raises gives the transaction up.
    `allow_inactive`: a dialog begun while the service was active may still finish.
    """
    repo = IntakeRepository(runtime.db)
    if idempotency_key:
        previous = await repo.request_by_key(idempotency_key)
        if previous is not None:
            return Accepted(previous["_id"], replayed=True)
    service = await repo.service(draft.service_id)
    if service is None or not (service.active or allow_inactive):
        raise UnknownService(draft.service_id)
    why = await refusal(repo, service, draft.access_address)
    if why is not None:
        raise AccessRefused(service, why)
    fields: dict = {}
    if draft.fields is not None:
        try:
            fields = validate_fields(service, draft.fields)
        except FieldErrors as exc:
            raise InvalidFields(service, exc.errors) from None
    event = request_received(draft, fields)
    record = request_record(draft, idempotency_key)

    async def store(uow: UnitOfWork) -> None:
        if also is not None:
            await also(uow)
        await repo.record_request(record, uow.session)
        await uow.emit(event)

    try:
        await runtime.transact(store, correlation_id=correlation_id)
    except AlreadyRecorded:
        # a concurrent (or redelivered) call committed first: answer what it answered
        previous = (await repo.request_by_key(idempotency_key) if idempotency_key
                    else await repo.request(draft.request_id))
        if previous is None:
            raise
        return Accepted(previous["_id"], replayed=True)
    return Accepted(draft.request_id)
