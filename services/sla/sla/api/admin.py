"""SLA's admin helpers behind the workspace's admin pages: a deadline preview for a start
time, a holiday list imported into a calendar, and calendar changes that re-price clocks.

A policy's clocks are re-priced when the policy changes (records.put_policy); a calendar
is shared by policies, so saving one re-prices the open clocks of every policy on it.
"""

from __future__ import annotations

from datetime import UTC

from desk_contracts.catalog import Priority
from desk_runtime.http import Invalid, NotFound, require_admin
from desk_runtime.metrics import REJECTED_INPUT
from fastapi import APIRouter, Depends, Request
from pydantic import AwareDatetime, BaseModel, Field

from sla.api.records import require_reader, save_calendar_and_reprice
from sla.domain.calendar import BusinessCalendar, CalendarError
from sla.domain.holidays import HolidayListInvalid, parse_holidays
from sla.domain.policy import TARGETS
from sla.repository import SlaRepository

router = APIRouter(prefix="/v1", tags=["sla-admin"])


def _repo(request: Request) -> SlaRepository:
    return SlaRepository(request.app.state.runtime.db)


class PreviewIn(BaseModel):
    policy: str = Field(min_length=1, max_length=63)
    priority: Priority = Priority.MEDIUM
    priority_key: str | None = Field(None, max_length=50,
                                     description="a board's own priority id (its targets "
                                                 "first, the level's as the fallback)")
    start: AwareDatetime


@router.post("/preview", dependencies=[Depends(require_reader)],
             summary="The deadlines a request started at `start` would get under a policy")
async def preview(body: PreviewIn, request: Request) -> dict:
    repo = _repo(request)
    policy = await repo.policy(body.policy)
    if policy is None:
        REJECTED_INPUT.labels("sla", "admin", "unknown_policy").inc()
        raise Invalid(f"no policy {body.policy!r}", details={"fields": {"policy": "unknown"}})
    calendar = await repo.calendar(policy.calendar) or BusinessCalendar.always()
    start = body.start.astimezone(UTC)
    targets = []
    for target in TARGETS:
        minutes = policy.minutes(target, body.priority, body.priority_key)
        if minutes is None:
            continue
        try:
            deadline = calendar.add_seconds(start, minutes * 60)
        except CalendarError as exc:
            raise Invalid(str(exc)) from None
        targets.append({"target": target, "minutes": minutes,
                        "deadline": deadline.isoformat().replace("+00:00", "Z")})
    return {"policy": policy.name, "calendar": policy.calendar,
            "timezone": calendar.timezone, "priority": body.priority.value,
            "priority_key": body.priority_key or body.priority.value,
            "start": start.isoformat().replace("+00:00", "Z"), "targets": targets}


class HolidayImport(BaseModel):
    text: str = Field(min_length=1, max_length=200_000,
                      description="one YYYY-MM-DD per line (a name may follow) or an .ics file")
    replace: bool = Field(False, description="replace the calendar's holidays (else: add)")


@router.post("/calendars/{name}/holidays", dependencies=[Depends(require_admin)],
             summary="Import a holiday list into a business calendar (re-prices its clocks)")
async def import_holidays(name: str, body: HolidayImport, request: Request) -> dict:
    repo = _repo(request)
    stored = next((c for c in await repo.all_calendars() if c["name"] == name), None)
    if stored is None:
        raise NotFound(f"no calendar {name!r}")
    try:
        days = parse_holidays(body.text)
    except HolidayListInvalid as exc:
        REJECTED_INPUT.labels("sla", "admin", "invalid_holidays").inc()
        raise Invalid(str(exc), details={"fields": {"text": str(exc)}}) from None
    kept = [] if body.replace else list(stored.get("holidays") or [])
    doc = {**stored, "holidays": sorted(set(kept) | {d.isoformat() for d in days})}
    await save_calendar_and_reprice(repo, doc)
    return doc | {"imported": len(days)}

