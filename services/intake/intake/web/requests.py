"""The web-form / integration API: a customer request in, `request.received` out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from desk_contracts.channels import API
from desk_contracts.events import Person, PersonName
from desk_runtime.http import Forbidden, Invalid, NotFound, require_admin
from desk_runtime.metrics import REJECTED_INPUT
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from intake.access import portal_caller
from intake.application import AccessRefused, InvalidFields, UnknownService, accept_request
from intake.domain.requests import RequestDraft
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
    REJECTED_INPUT.labels("intake", API, reason).inc()
    return exc


@router.post("/requests", status_code=202)
async def submit_request(
    body: NewRequest,
    request: Request,
    idempotency_key: str | None = Header(None, max_length=200),
) -> JSONResponse:
    email = str(body.requester.email).lower()
    draft = RequestDraft(
        request_id=str(uuid.uuid4()), channel=API, service_id=body.service,
        requester=Person(email=email, name=body.requester.name),
        subject=body.subject.strip(), text=body.text, fields=body.fields,
        received_at=datetime.now(UTC), due_date=body.due_date,
        # only the portal's credential makes the requester address more than a claim
        access_address=email if portal_caller(request) else None)
    try:
        accepted = await accept_request(request.app.state.runtime, draft,
                                        idempotency_key=idempotency_key,
                                        correlation_id=request.state.correlation_id)
    except UnknownService:
        raise _reject("unknown_service", NotFound(f"no service {body.service!r}")) from None
    except AccessRefused as exc:
        raise _reject(exc.reason, Forbidden(exc.refusal.message,
                                            details={"reason": exc.reason})) from None
    except InvalidFields as exc:
        raise _reject("invalid_fields", Invalid("some fields are invalid",
                                                details={"fields": exc.errors})) from None
    return _accepted(accepted.request_id, replayed=accepted.replayed)


def _accepted(request_id: str, *, replayed: bool = False) -> JSONResponse:
    """The same answer for the first call and every repeat of its Idempotency-Key."""
    return JSONResponse({"request_id": request_id, "status": "accepted"}, status_code=202,
                        headers={"Idempotent-Replayed": "true"} if replayed else {})


@router.get("/requests/{request_id}", dependencies=[Depends(require_admin)])
async def request_status(request_id: str, request: Request) -> dict:
    """Whether an accepted request has become a card yet, and its number (admin token: a
    card number is not public; the customer learns it from the acknowledgment)."""
    repo = IntakeRepository(request.app.state.runtime.db)
    accepted = await repo.request(request_id)
    if accepted is None:
        raise NotFound("no such request")
    thread = await repo.thread_for_request(request_id)
    return {"request_id": request_id, "number": thread["number"] if thread else None,
            "status": "created" if thread else "accepted"}
