"""Per-card SLA records (for agents and contract disputes) and the policy/calendar admin.

Nothing here is public: a record names a card (and its log the columns it passed), and the
policies are a customer's contract terms. Reads take the read token (boards' workspace
holds it) or the admin token; changes take the admin token.
"""

from __future__ import annotations

import csv
import hmac
import io
import re
from datetime import UTC, datetime
from typing import Any

from desk_runtime.http import Forbidden, Invalid, NotFound, Unauthorized, require_admin
from desk_runtime.metrics import REJECTED_INPUT
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError

from sla.domain.calendar import BusinessCalendar, CalendarError
from sla.domain.policy import SlaPolicy
from sla.repository import SlaRepository


def require_reader(request: Request) -> None:
    """FastAPI dependency: a Bearer read token or admin token, compared in constant time."""
    settings = request.app.state.settings
    accepted = [t.encode() for t in (settings.read_token, settings.admin_token) if t]
    if not accepted:
        raise Forbidden("SLA reads are disabled (no read or admin token configured)")
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    # every candidate is compared, so the answer takes as long whichever one matched
    matches = [hmac.compare_digest(presented.encode(), t) for t in accepted]
    if scheme.lower() != "bearer" or not any(matches):
        raise Unauthorized("a valid SLA read (or admin) Bearer token is required")


router = APIRouter(prefix="/v1", tags=["sla"])
read = [Depends(require_reader)]


def _repo(request: Request) -> SlaRepository:
    return SlaRepository(request.app.state.runtime.db)


async def _record(request: Request, card_id: str) -> dict:
    repo = _repo(request)
    sla, _ = await repo.record_for_card(card_id)
    if sla is None:
        raise NotFound("no SLA record for this card")
    cal = await repo.calendar(sla.calendar) or BusinessCalendar.always()
    return sla.record(cal, datetime.now(UTC))


@router.get("/cards/{card_id}/sla", dependencies=read,
            summary="A card's SLA record: targets, deadlines, pauses")
async def card_sla(card_id: str, request: Request) -> dict:
    return await _record(request, card_id)


@router.get("/cards/{card_id}/sla.csv", dependencies=read,
            summary="The SLA record as CSV, for a contract dispute")
async def card_sla_csv(card_id: str, request: Request) -> Response:
    record = await _record(request, card_id)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["section", "target", "state", "started_at", "deadline", "breached_at",
                "completed_at", "spent_seconds", "budget_minutes", "detail"])
    for t in record["targets"]:
        w.writerow(["target", t["target"], t["state"], _iso(t["started_at"]), _iso(t["deadline"]),
                    _iso(t["breached_at"]), _iso(t["completed_at"]), t["spent_seconds"],
                    t["budget_minutes"], ""])
    for p in record["pauses"]:
        w.writerow(["pause", " ".join(p["targets"]), p["cause"], _iso(p["started_at"]),
                    "", "", _iso(p["ended_at"]), "", "", p.get("column_id") or ""])
    for e in record["log"]:
        w.writerow(["log", e.get("target") or "", e["what"], _iso(e["at"]), "", "", "", "", "",
                    e.get("detail") or ""])
    filename = f"sla-{record['number']}.csv"
    return Response(out.getvalue(), media_type="text/csv",
                    headers={"content-disposition": f'attachment; filename="{filename}"'})


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else (value or "")


@router.get("/policies", dependencies=read, summary="SLA policies")
async def list_policies(request: Request) -> dict:
    return {"items": await _repo(request).all_policies()}


# The body is read as a dict (a policy saved without `priority_targets` keeps its own, and
# errors come back as details.errors), so its shape is named for the OpenAPI document here.
_POLICY_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/SlaPolicy"}}}}}


@router.put("/policies/{name}", dependencies=[Depends(require_admin)],
            response_model=SlaPolicy, openapi_extra=_POLICY_BODY,
            summary="Create or replace a policy (targets per priority level and per board "
                    "priority id); open clocks that follow it are re-priced (time already "
                    "spent is kept)")
async def put_policy(name: str, body: dict, request: Request) -> dict:
    repo = _repo(request)
    before = await repo.policy(name)
    if before is not None and "priority_targets" not in body:
        # a form that predates board priorities (the admin page) keeps their targets
        body = {**body, "priority_targets": before.model_dump(mode="json")["priority_targets"]}
    try:
        policy = SlaPolicy.model_validate({**body, "name": name})
    except ValidationError as exc:
        raise Invalid("invalid policy", details={"errors": exc.errors(include_url=False,
                                                                       include_context=False)})
    if await repo.calendar(policy.calendar) is None:
        raise Invalid(f"calendar {policy.calendar!r} does not exist")
    existed = before is not None
    await repo.save_policy(policy)
    if existed:
        await repo.request_reprice(name)
    return policy.model_dump(mode="json")


@router.get("/calendars", dependencies=read, summary="Business calendars")
async def list_calendars(request: Request) -> dict:
    return {"items": [{"name": "24x7"}, *await _repo(request).all_calendars()]}


@router.put("/calendars/{name}", dependencies=[Depends(require_admin)],
            summary="Create or replace a business calendar; open clocks of the policies "
                    "on it are re-priced")
async def put_calendar(name: str, body: dict, request: Request) -> dict:
    doc = {**body, "name": name}
    if name == "24x7":
        raise Invalid("24x7 is built in")
    await save_calendar_and_reprice(_repo(request), doc)
    return doc


async def save_calendar_and_reprice(repo: SlaRepository, doc: dict) -> list[str]:
    """Store a calendar; every policy on it re-prices its open clocks (a durable job each),
    as an edited policy does: a deadline follows the working hours and holidays in force."""
    try:
        BusinessCalendar.from_doc(doc)
    except (CalendarError, KeyError, ValueError) as exc:
        REJECTED_INPUT.labels("sla", "admin", "invalid_calendar").inc()
        raise Invalid(f"invalid calendar: {exc}",
                      details={"fields": {_calendar_field(str(exc)): str(exc)}}) from None
    await repo.save_calendar(doc)
    repriced = [p["name"] for p in await repo.all_policies()
                if p.get("calendar", "24x7") == doc["name"]]
    for name in repriced:
        await repo.request_reprice(name)
    return repriced


def _calendar_field(message: str) -> str:
    """The calendar field a refusal is about, for the admin page to mark."""
    day = re.match(r"(mon|tue|wed|thu|fri|sat|sun):", message)
    if day:
        return f"hours.{day.group(1)}"
    if "time zone" in message:
        return "timezone"
    if "weekday" in message or "working hours" in message or "time" in message:
        return "hours"
    if "isoformat" in message or "date" in message:
        return "holidays"
    return "_"
