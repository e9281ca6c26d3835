"""The web-form / integration API: a customer request in, `request.received` out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from desk_contracts.catalog import FieldErrors, validate_fields
from desk_contracts.events import Person, PersonName, RequestReceived
from desk_runtime.http import Forbidden, Invalid, NotFound, require_admin
from desk_runtime.metrics import REJECTED_INPUT
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from pymongo.errors import DuplicateKeyError

from intake.access import portal_caller, refusal
from intake.repository import IntakeRepository

router = APIRouter(prefix="/v1", tags=["requests"])


class Requester(BaseModel):
    email: EmailStr
    name: PersonName | None = Field(None, max_length=200)  # no line breaks: it ends in headers


class NewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(min_length=1, max_length=64)
    requester: Requester
    subject: str = Field(min_length=1, max_length=500)
    text: str = Field("", max_length=100_000)
    fields: dict[str, Any] = {}
    due_date: str | None = None


def _reject(reason: str, exc: Exception) -> Exception:
    REJECTED_INPUT.labels("intake", "api", reason).inc()
    return exc


@router.post("/requests", status_code=202)
async def submit_request(
    body: NewRequest,
    request: Request,
    idempotency_key: str | None = Header(None, max_length=200),
) -> JSONResponse:
    runtime = request.app.state.runtime
    repo = IntakeRepository(runtime.db)
    if idempotency_key:
        previous = await repo.request_by_key(idempotency_key)
        if previous is not None:
            return _accepted(previous["_id"], replayed=True)
    service = await repo.service(body.service)
    if service is None or not service.active:
        raise _reject("unknown_service", NotFound(f"no service {body.service!r}"))
    email = str(body.requester.email).lower()
    # only the portal's credential makes the requester address more than a claim
    refused = await refusal(repo, service, email if portal_caller(request) else None)
    if refused is not None:
        raise _reject(refused.reason, Forbidden(refused.message,
                                                details={"reason": refused.reason}))
    try:
        fields = validate_fields(service, body.fields)
    except FieldErrors as exc:
        raise _reject("invalid_fields", Invalid("some fields are invalid",
                                                details={"fields": exc.errors})) from None
    request_id = str(uuid.uuid4())
    event = RequestReceived(
        request_id=request_id, channel="api", service_id=service.id,
        requester=Person(email=email, name=body.requester.name),
        subject=body.subject.strip(), text=body.text, fields=fields,
        received_at=datetime.now(UTC), due_date=body.due_date,
    )

    async def accept(uow) -> None:
        await repo.requests.insert_one(
            {"_id": request_id, "idempotency_key": idempotency_key, "channel": "api",
             "service_id": service.id, "received_at": event.received_at},
            session=uow.session,
        )
        await uow.emit(event)

    try:
        await runtime.transact(accept, correlation_id=request.state.correlation_id)
    except DuplicateKeyError:
        # a concurrent call with the same key committed first: answer what it answered
        previous = await repo.request_by_key(idempotency_key) if idempotency_key else None
        if previous is None:
            raise
        return _accepted(previous["_id"], replayed=True)
    return _accepted(request_id)


def _accepted(request_id: str, *, replayed: bool = False) -> JSONResponse:
    """The same answer for the first call and every repeat of its Idempotency-Key."""
    return JSONResponse({"request_id": request_id, "status": "accepted"}, status_code=202,
                        headers={"Idempotent-Replayed": "true"} if replayed else {})


@router.get("/requests/{request_id}", dependencies=[Depends(require_admin)])
async def request_status(request_id: str, request: Request) -> dict:
    """Whether an accepted request has become a card yet, and its number (admin token: a
    card number is not public; the customer learns it from the acknowledgment)."""
    repo = IntakeRepository(request.app.state.runtime.db)
    accepted = await repo.requests.find_one({"_id": request_id})
    if accepted is None:
        raise NotFound("no such request")
    thread = await repo.thread_for_request(request_id)
    return {"request_id": request_id, "number": thread["number"] if thread else None,
            "status": "created" if thread else "accepted"}
