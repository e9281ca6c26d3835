"""Notify's admin API (Bearer NOTIFY_ADMIN_TOKEN): agent alert routes, templates, deliveries."""

from __future__ import annotations

import contextlib
import uuid
from typing import Annotated, Any, Literal

import aiosmtplib

from desk_runtime.http import Invalid, NotFound, require_admin
from desk_runtime.mail import MailRefused, send_mail
from desk_runtime.metrics import REJECTED_INPUT
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, ValidationError

from notify.domain.messages import build_email
from notify.domain.routes import AgentRoute
from notify.domain.templates import (
    KINDS,
    LANGUAGES,
    MAX_TEMPLATE_CHARS,
    MessageTemplate,
    TemplateInvalid,
    default_template,
    validate,
)
from notify.repository import NotifyRepository

router = APIRouter(prefix="/v1", dependencies=[Depends(require_admin)])


def _repo(request: Request) -> NotifyRepository:
    return NotifyRepository(request.app.state.runtime.db)


# --- routes ---------------------------------------------------------------------------
@router.get("/routes")
async def list_routes(request: Request) -> dict[str, Any]:
    routes = await _repo(request).all_routes()
    return {"items": [r.model_dump(mode="json") for r in routes]}


@router.put("/routes/{route_id}")
async def put_route(route_id: str, body: dict[str, Any], request: Request) -> dict[str, Any]:
    try:
        route = AgentRoute.model_validate(body | {"id": route_id})
    except ValidationError as exc:
        REJECTED_INPUT.labels("notify", "admin", "invalid_route").inc()
        raise Invalid("invalid route", details={"errors": [
            {"loc": ".".join(str(x) for x in e["loc"]), "msg": e["msg"]}
            for e in exc.errors()]}) from None
    await _repo(request).put_route(route)
    request.app.state.planner.routes_changed()
    return route.model_dump(mode="json")


@router.delete("/routes/{route_id}", status_code=204)
async def delete_route(route_id: str, request: Request) -> None:
    if not await _repo(request).delete_route(route_id):
        raise NotFound(f"no route {route_id!r}")
    request.app.state.planner.routes_changed()


# --- templates ------------------------------------------------------------------------
class TemplateBody(BaseModel):
    subject: str = Field(min_length=1, max_length=MAX_TEMPLATE_CHARS)
    text: str = Field(min_length=1, max_length=MAX_TEMPLATE_CHARS)
    html: str = Field(min_length=1, max_length=MAX_TEMPLATE_CHARS)


def _check(kind: str, language: str) -> None:
    if kind not in KINDS:
        raise NotFound(f"no template kind {kind!r}", details={"kinds": list(KINDS)})
    if language not in LANGUAGES:
        raise NotFound(f"no language {language!r}", details={"languages": list(LANGUAGES)})


def _view(kind: str, language: str, custom: dict[str, Any] | None) -> dict[str, Any]:
    t = default_template(kind, language)
    source = custom or {"subject": t.subject, "text": t.text, "html": t.html}
    return {"kind": kind, "language": language, "custom": custom is not None,
            "subject": source["subject"], "text": source["text"], "html": source["html"],
            "updated_at": custom.get("updated_at") if custom else None}


@router.get("/templates")
async def list_templates(request: Request) -> dict[str, Any]:
    custom = await _repo(request).custom_templates()
    return {"items": [_view(k, lang, custom.get(f"{k}:{lang}"))
                      for k in KINDS for lang in LANGUAGES]}


@router.get("/templates/{kind}/{language}")
async def get_template(kind: str, language: str, request: Request) -> dict[str, Any]:
    _check(kind, language)
    custom = await _repo(request).custom_templates()
    return _view(kind, language, custom.get(f"{kind}:{language}"))


@router.put("/templates/{kind}/{language}")
async def put_template(kind: str, language: str, body: TemplateBody,
                       request: Request) -> dict[str, Any]:
    """Saved only if it renders against the kind's sample variables; else 422 with why."""
    _check(kind, language)
    template = MessageTemplate(subject=body.subject, text=body.text, html=body.html)
    try:
        preview = validate(kind, template)
    except TemplateInvalid as exc:
        REJECTED_INPUT.labels("notify", "admin", "invalid_template").inc()
        raise Invalid(f"template does not render: {exc}",
                      details={"part": exc.part, "reason": exc.reason}) from None
    await _repo(request).put_template(kind, language, template, by="admin")
    request.app.state.dispatcher.templates_changed()
    return _view(kind, language, body.model_dump()) | {
        "custom": True, "preview": {"subject": preview.subject, "text": preview.text,
                                    "html": preview.html}}


@router.post("/templates/{kind}/{language}/preview")
async def preview_template(kind: str, language: str, body: TemplateBody) -> dict[str, Any]:
    """How a draft renders against the kind's sample variables, without saving it."""
    _check(kind, language)
    try:
        shown = validate(kind, MessageTemplate(subject=body.subject, text=body.text,
                                               html=body.html))
    except TemplateInvalid as exc:
        REJECTED_INPUT.labels("notify", "admin", "invalid_template").inc()
        raise Invalid(f"template does not render: {exc}",
                      details={"part": exc.part, "reason": exc.reason}) from None
    return {"subject": shown.subject, "text": shown.text, "html": shown.html}


class TestSend(TemplateBody):
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")


@router.post("/templates/{kind}/{language}/test")
async def test_send_template(kind: str, language: str, body: TestSend,
                             request: Request) -> dict[str, Any]:
    """Send a draft, rendered with the sample variables, to one address now (an admin's
    check of how it looks in a real mailbox); the SMTP relay's refusal is the answer."""
    _check(kind, language)
    try:
        shown = validate(kind, MessageTemplate(subject=body.subject, text=body.text,
                                               html=body.html))
    except TemplateInvalid as exc:
        REJECTED_INPUT.labels("notify", "admin", "invalid_template").inc()
        raise Invalid(f"template does not render: {exc}",
                      details={"part": exc.part, "reason": exc.reason}) from None
    settings = request.app.state.settings
    message_id = f"test-{uuid.uuid4()}@{settings.inbound_domain}"
    try:
        msg = build_email(shown, to=body.email, mail_from=settings.mail_from,
                          message_id=message_id)
        await send_mail(msg, settings.smtp)
    except ValueError as exc:
        raise Invalid(f"cannot build the message: {exc}",
                      details={"fields": {"email": str(exc)}}) from None
    except (MailRefused, OSError) as exc:
        return {"sent": False, "error": str(exc)[:500]}
    return {"sent": True, "message_id": message_id}


@router.post("/smtp/check")
async def check_smtp(request: Request) -> dict[str, Any]:
    """Reach the configured relay as a send would (TLS, STARTTLS, login) and leave
    without sending: what an admin checks after changing the mail settings."""
    smtp = request.app.state.settings.smtp
    where = {"host": smtp.host, "port": smtp.port, "security": smtp.security,
             "login": bool(smtp.username)}
    client = aiosmtplib.SMTP(hostname=smtp.host, port=smtp.port,
                             use_tls=smtp.security == "tls",
                             start_tls=smtp.security == "starttls",
                             timeout=min(smtp.timeout_seconds, 10.0))
    try:
        await client.connect()
        if smtp.username:
            await client.login(smtp.username, smtp.password)
        await client.noop()
    except (aiosmtplib.SMTPException, OSError) as exc:
        return where | {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
    finally:
        with contextlib.suppress(Exception):
            await client.quit()
    return where | {"ok": True}


@router.delete("/templates/{kind}/{language}", status_code=204)
async def reset_template(kind: str, language: str, request: Request) -> None:
    _check(kind, language)
    await _repo(request).delete_template(kind, language)
    request.app.state.dispatcher.templates_changed()


# --- deliveries -----------------------------------------------------------------------
State = Literal["pending", "retrying", "sent", "failed", "suppressed"]


@router.get("/deliveries")
async def list_deliveries(request: Request, state: State | None = None,
                          card_id: str | None = None,
                          limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    rows = await _repo(request).list_deliveries(state=state, card_id=card_id, limit=limit)
    items = [{
        "id": d["_id"], "kind": d["kind"], "channel": d["channel"],
        "recipient": d["recipient"], "audience": d.get("audience"), "card_id": d.get("card_id"),
        "cause_event_id": d["cause_event_id"], "state": d["status"],
        "attempts": d.get("attempts", 0), "last_error": d.get("last_error"),
        "created_at": d.get("created_at"), "sent_at": d.get("sent_at"),
        "failed_at": d.get("failed_at"), "message_id": d.get("message_id"),
    } for d in rows]
    return {"items": items}


@router.post("/deliveries/{delivery_id}/retry", status_code=202)
async def retry_delivery(delivery_id: str, request: Request) -> dict[str, Any]:
    if not await _repo(request).retry_failed_delivery(delivery_id):
        raise NotFound(f"no failed delivery {delivery_id!r}")
    request.app.state.dispatcher.wake()
    return {"id": delivery_id, "state": "retrying"}


# --- suppressed (bounced) addresses ---------------------------------------------------
@router.get("/suppressions")
async def list_suppressions(request: Request,
                            limit: Annotated[int, Query(ge=1, le=1000)] = 200
                            ) -> dict[str, Any]:
    rows = await _repo(request).active_suppressions(limit)
    return {"items": [{"email": d["_id"], "reason": d.get("reason"),
                       "since": d.get("changed_at")} for d in rows]}


@router.delete("/suppressions/{email}", status_code=204)
async def clear_suppression(email: str, request: Request) -> None:
    """An admin knows the address works again (e.g. the mailbox was full and is not)."""
    if not await _repo(request).clear_suppression(email, by="admin"):
        raise NotFound(f"{email} is not suppressed")
