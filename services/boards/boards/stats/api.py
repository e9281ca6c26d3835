"""Statistics JSON and CSV API under /v1/stats (agent Bearer token; boards' visibility rules)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal

from desk_runtime.http import Invalid
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from boards.auth import Agent, current_agent
from boards.kb.application import deflection_counts
from boards.kb.repository import KnowledgeBaseRepository
from boards.stats import domain, query
from boards.stats.domain import Period
from boards.stats.repository import CardFilter, StatsRepository
from boards.settings import BoardsSettings

router = APIRouter(prefix="/v1/stats", tags=["stats"])

Dimension = Literal["account", "service", "lane", "agent", "channel", "board", "priority",
                    "type"]


def parse_instant(value: str | None, *, end: bool = False) -> datetime | None:
    """A date (`2026-11-01`: its midnight UTC; as `to`, the next midnight) or an ISO instant."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            at = datetime.combine(d, time(), tzinfo=UTC)
            return at + timedelta(days=1) if end else at
        at = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(f"not a date or ISO instant: {value!r}") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC)


def period_of(start: str | None, end: str | None, settings: BoardsSettings) -> Period:
    """`from`/`to` inclusive dates or instants; default: the last N days up to now."""
    now = datetime.now(UTC)
    hi = parse_instant(end, end=True) or now
    lo = parse_instant(start) or (hi - timedelta(days=settings.stats_default_period_days))
    if lo >= hi:
        raise Invalid("`from` must be before `to`")
    if hi - lo > timedelta(days=settings.stats_max_period_days):
        raise Invalid(f"a period is at most {settings.stats_max_period_days} days")
    return Period(lo, hi)


class StatsQuery:
    """The filter and period every stats endpoint takes."""

    def __init__(
        self,
        request: Request,
        agent: Annotated[Agent, Depends(current_agent)],
        start: str | None = Query(None, alias="from", description="date or ISO instant"),
        end: str | None = Query(None, alias="to", description="date (inclusive) or instant"),
        account: str | None = None,
        service: str | None = None,
        lane: str | None = None,
        agent_id: str | None = Query(None, alias="agent", description="assignee id or none"),
        channel: str | None = None,
        board: str | None = None,
    ):
        self.agent = agent
        self.period = period_of(start, end, request.app.state.settings)
        self.filter = CardFilter(
            account=account, service=service, lane=lane,
            agent=(agent.id if agent_id == "me" else agent_id), channel=channel, board=board,
            boards=None if agent.role == "admin" else agent.boards,
            created_before=self.period.end)
        self.repo = StatsRepository(request.app.state.runtime.db)
        self.kb = KnowledgeBaseRepository(request.app.state.runtime.db)
        self.params = {"from": self.period.start.isoformat(), "to": self.period.end.isoformat(),
                       "account": account, "service": service, "lane": lane,
                       "agent": agent_id, "channel": channel, "board": board}

    async def data(self) -> query.Dataset:
        return await query.load(self.repo, self.filter, active_from=self.period.start)

    async def deflected(self) -> dict:
        """Requests that knowledge-base articles answered before they were filed, in the
        period (of the filtered service, when one is chosen)."""
        counts = await deflection_counts(self.kb, self.period.start, self.period.end)
        service = self.params.get("service")
        total = counts["by_service"].get(service, 0) if service else counts["total"]
        return {"total": total, "by_service": counts["by_service"]}


@router.get("/summary")
async def get_summary(q: Annotated[StatsQuery, Depends()],
                      group_by: Dimension | None = None) -> dict:
    """Received, closed, first response and resolution (business time), SLA, reopens, CSAT."""
    data = await q.data()
    out = {"period": q.params, **query.summary(data, q.period), "deflected": await q.deflected()}
    if group_by:
        out["group_by"] = group_by
        out["groups"] = query.grouped(data, q.period, group_by)
    return out


@router.get("/flow")
async def get_flow(q: Annotated[StatsQuery, Depends()]) -> dict:
    """Backlog, cumulative flow, time in column, cycle-time scatter and weekly throughput."""
    data = await q.data()
    return {"period": q.params, **query.flow(data, q.period)}


# ---------------------------------------------------------------- CSV export

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula (customer text lands here)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    text = str(value)
    if text.startswith(_FORMULA_START) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def card_rows(data: query.Dataset, period: Period) -> tuple[list[str], list[list]]:
    latest = domain.latest_per_card_target(data.targets)
    ratings = domain.latest_ratings(data.ratings)
    head = ["card_id", "number", "account", "service", "board", "lane", "column", "category",
            "agent", "channel", "priority", "created_at", "closed_at", "reopened",
            "first_response_business_seconds", "resolution_business_seconds",
            "cycle_time_seconds", "rating", "rating_comment", "card_type",
            "blocked_seconds", "blocked_at_end"]
    blocked = {r["card_id"]: r for r in query.blocked_cards(data, period)}
    rows = []
    for c in sorted(data.cards, key=lambda c: (c["created_at"], c["_id"])):
        ivs = data.histories.get(c["_id"], [])
        closes = domain.closings(ivs)
        b = blocked.get(c["_id"])
        if not (c["created_at"] in period or any(t in period for t in closes) or b):
            continue
        fr = latest.get((c["_id"], "first_response"))
        res = latest.get((c["_id"], "resolution"))
        started = domain.work_started(ivs)
        closed_at = max(closes) if closes else None
        r = ratings.get(c["_id"])
        rows.append([c["_id"], c.get("number"), c.get("account_id"), c.get("service_id"),
                     c.get("board_id"), c.get("lane_id"), c.get("column_id"),
                     c.get("category"), c.get("assignee_id"), c.get("channel"),
                     c.get("priority"), c["created_at"], closed_at,
                     bool(domain.reopenings(ivs)) or c["_id"] in data.followed_up,
                     fr["spent_seconds"] if fr else None, res["spent_seconds"] if res else None,
                     ((closed_at - started).total_seconds()
                      if closed_at and started else None),
                     r["rating"] if r else None, r.get("comment") if r else None,
                     c.get("card_type") or "request", b["seconds"] if b else 0.0,
                     bool(b and b["blocked_at_end"])])
    return head, rows


def column_rows(data: query.Dataset, period: Period, now: datetime | None = None
                ) -> tuple[list[str], list[list]]:
    numbers = {c["_id"]: c.get("number") for c in data.cards}
    until = period.elapsed_end(now or datetime.now(UTC))
    head = ["card_id", "number", "column", "lane", "category", "entered_at", "left_at",
            "seconds_in_period"]
    rows = []
    for cid, ivs in sorted(data.histories.items(), key=lambda kv: numbers.get(kv[0]) or ""):
        for iv in ivs:
            if iv.start < period.end and (iv.end is None or iv.end > period.start):
                rows.append([cid, numbers.get(cid), iv.column_id, iv.lane_id, iv.category,
                             iv.start, iv.end, iv.seconds(period.start, until)])
    return head, rows


def target_rows(data: query.Dataset, period: Period) -> tuple[list[str], list[list]]:
    head = ["card_id", "number", "target", "cycle", "met", "started_at", "completed_at",
            "spent_business_seconds", "elapsed_seconds", "paused_seconds", "policy",
            "calendar", "service"]
    rows = [[r["card_id"], r["number"], r["target"], r["cycle"], r["met"], r["started_at"],
             r["completed_at"], r["spent_seconds"], r["elapsed_seconds"], r["paused_seconds"],
             r["policy"], r["calendar"], r.get("service_id")]
            for r in sorted(data.targets, key=lambda r: (r["completed_at"], r["_id"]))
            if r["completed_at"] in period]
    return head, rows


def rating_rows(data: query.Dataset, period: Period) -> tuple[list[str], list[list]]:
    numbers = {c["_id"]: c.get("number") for c in data.cards}
    head = ["card_id", "number", "rating", "comment", "rated_at", "latest"]
    latest = {r["_id"] for r in domain.latest_ratings(data.ratings).values()}
    rows = [[r["card_id"], numbers.get(r["card_id"]), r["rating"], r.get("comment"),
             r["rated_at"], r["_id"] in latest]
            for r in sorted(data.ratings, key=lambda r: (r["rated_at"], r["_id"]))
            if r["rated_at"] in period]
    return head, rows


EXPORTS = {"cards": card_rows, "columns": column_rows, "targets": target_rows,
           "ratings": rating_rows}


@router.get("/export/{kind}.csv")
async def export_csv(kind: Literal["cards", "columns", "targets", "ratings"],
                     q: Annotated[StatsQuery, Depends()]) -> Response:
    """The rows behind the figures, for a spreadsheet."""
    data = await q.data()
    head, rows = EXPORTS[kind](data, q.period)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(head)
    for row in rows:
        writer.writerow([cell(v) for v in row])
    stamp = q.period.start.date().isoformat()
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="stats-{kind}-{stamp}.csv"'})
