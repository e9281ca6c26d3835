"""The statistics page of the agent workspace (/stats): figures, SVG charts, CSV links.

Signed in like the rest of the workspace: the Bearer header or the workspace's session
cookie (both through `boards.auth.current_agent`); without either, the browser is sent
to the workspace's sign-in page, which brings it back here. The markup is the template
files in `templates/`; this module computes what they show.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

from desk_runtime.http import DomainError
from desk_runtime.web import negotiate_language, template_environment
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from boards.auth import Agent, current_agent
from boards.domain.board import BoardRules, type_name
from boards.repository.catalog import CatalogRepository
from boards.stats import api, charts, query
from boards.stats.api import StatsQuery

router = APIRouter(tags=["stats"], include_in_schema=False)

TEXT = {
    "en": {"title": "Statistics", "received": "Received", "closed": "Closed",
           "first_response": "First response (business time)",
           "resolution": "Resolution (business time)", "median": "median", "p90": "p90",
           "mean": "mean", "sla": "SLA met / breached", "target": "Target", "met": "met",
           "breached": "breached", "share": "met share", "reopen": "Reopen rate",
           "csat": "Satisfaction (CSAT)", "average": "average", "response_rate": "response rate",
           "deflected": "Answered by articles", "deflected_hint": "requests not filed",
           "comments": "Comments", "backlog": "Backlog (open at end of day)",
           "cfd": "Cumulative flow", "cycle": "Cycle time (work started → done)",
           "throughput": "Throughput per week", "columns": "Mean time in column",
           "distribution": "Ratings", "from": "From", "to": "To", "service": "Service",
           "lane": "Lane", "agent": "Agent", "channel": "Channel", "account": "Account",
           "group_by": "Group by", "show": "Show", "export": "CSV export", "none": "—",
           "no_data": "no data in this period", "groups": "By", "cards": "cards",
           "queued": "queued", "in_progress": "in progress",
           "waiting_for_customer": "waiting for customer", "paused": "paused",
           "done": "done", "card": "Card", "workspace": "← Board",
           "target_first_response": "first response", "target_next_response": "next response",
           "target_resolution": "resolution", "column": "Column",
           "per_card": "Time in column per card",
           "blocked": "Blocked time", "blocked_total": "in total",
           "blocked_per_card": "per blocked card", "blocked_now": "blocked now",
           "blocked_at_end": "blocked at the period's end",
           "blocked_cards": "Blocked cards", "blocked_for": "Blocked in the period",
           "still_blocked": "Still blocked", "yes": "yes", "no": "no",
           "by_type": "Closed by type", "type": "Type", "share_closed": "share of closed"},
    "ru": {"title": "Статистика", "received": "Поступило", "closed": "Закрыто",
           "first_response": "Первый ответ (рабочее время)",
           "resolution": "Решение (рабочее время)", "median": "медиана", "p90": "p90",
           "mean": "среднее", "sla": "SLA: выполнено / нарушено", "target": "Цель",
           "met": "выполнено", "breached": "нарушено", "share": "доля выполненных",
           "reopen": "Доля переоткрытых", "csat": "Удовлетворённость (CSAT)",
           "deflected": "Решено статьями", "deflected_hint": "обращений не понадобилось",
           "average": "среднее", "response_rate": "доля ответивших", "comments": "Комментарии",
           "backlog": "Открытые заявки (на конец дня)", "cfd": "Накопительная диаграмма потока",
           "cycle": "Время цикла (начало работы → готово)",
           "throughput": "Закрыто за неделю", "columns": "Среднее время в колонке",
           "distribution": "Оценки", "from": "С", "to": "По", "service": "Услуга",
           "lane": "Дорожка", "agent": "Агент", "channel": "Канал", "account": "Аккаунт",
           "group_by": "Группировать", "show": "Показать", "export": "Выгрузка CSV",
           "none": "—", "no_data": "нет данных за период", "groups": "По",
           "cards": "заявок",
           "queued": "в очереди", "in_progress": "в работе",
           "waiting_for_customer": "ждёт клиента", "paused": "приостановлено",
           "done": "готово", "card": "Заявка", "workspace": "← Доска",
           "target_first_response": "первый ответ", "target_next_response": "следующий ответ",
           "target_resolution": "решение", "column": "Колонка",
           "per_card": "Время в колонках по заявкам",
           "blocked": "Время в блокировке", "blocked_total": "всего",
           "blocked_per_card": "на заблокированную заявку", "blocked_now": "заблокировано сейчас",
           "blocked_at_end": "заблокировано на конец периода",
           "blocked_cards": "Заблокированные заявки", "blocked_for": "В блокировке за период",
           "still_blocked": "Всё ещё заблокирована", "yes": "да", "no": "нет",
           "by_type": "Закрыто по типам", "type": "Тип", "share_closed": "доля закрытых"},
}


def language(request: Request) -> str:
    return negotiate_language(tuple(TEXT), query=request.query_params.get("lang"),
                              accept_language=request.headers.get("accept-language"))


UNITS = {"en": ("d", "h", "m", "s"), "ru": ("д", "ч", "мин", "с")}


def duration(seconds: float | None, lang: str = "en") -> str:
    """Seconds as `1d 2h`, `3h 05m`, `12m` or `40s` (`1д 2ч` in Russian)."""
    if seconds is None:
        return "—"
    ud, uh, um, us = UNITS.get(lang, UNITS["en"])
    s = round(seconds)
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    if d:
        return f"{d}{ud} {h}{uh}"
    if h:
        return f"{h}{uh} {m:02d}{um}"
    if m:
        return f"{m}{um}"
    return f"{sec}{us}"


def avg(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


env = template_environment(Path(__file__).parent / "templates", avg=avg, pct=pct)


def layout_charts(t: dict, lang: str, params: dict, summary: dict, flow: dict) -> dict:
    """The page's six charts, laid out (boards.stats.charts) for the template."""
    def dur(v: float | None) -> str:
        return duration(v, lang)

    nd = t["no_data"]
    days = [p["at"][5:10] for p in flow["backlog"]]
    cats = ("queued", "in_progress", "waiting_for_customer", "paused", "done")
    pts = flow["cycle_time"]["points"]
    start, end = params["from"], params["to"]
    span = _seconds_between(start, end)
    thr = flow["throughput"]
    # done columns only accumulate: where work stalls is the open columns
    cols = {k: v for k, v in flow["time_in_column"]["columns"].items()
            if v["category"] != "done"}
    dist = summary["csat"]["distribution"]
    return {
        "backlog": charts.line(t["backlog"], days, [p["open"] for p in flow["backlog"]],
                               empty_text=nd),
        "cfd": charts.stacked_area(
            t["cfd"], [p["at"][5:10] for p in flow["cumulative_flow"]],
            {k: [p[k] for p in flow["cumulative_flow"]] for k in cats},
            {k: t[k] for k in cats}, empty_text=nd),
        "cycle": charts.scatter(
            t["cycle"],
            [(_seconds_between(start, p["closed_at"]) / span if span else 0, p["seconds"],
              p.get("number") or p["card_id"]) for p in pts],
            dict(flow["cycle_time"]["percentiles"]), fmt=dur, empty_text=nd,
            xlabels=_ticks(start, end)),
        "throughput": charts.bars(t["throughput"], [w["week"][5:] for w in thr],
                                  [w["closed"] for w in thr], color="#22c55e", empty_text=nd),
        "columns": charts.hbars(t["columns"], list(cols),
                                [c["mean"] or 0 for c in cols.values()], fmt=dur,
                                empty_text=nd),
        "ratings": charts.bars(t["distribution"], [f"{k}★" for k in dist], list(dist.values()),
                               color="#a855f7", empty_text=nd),
    }


_COLOUR = re.compile(r"^#[0-9a-fA-F]{3,8}$")
NO_COLOUR = "#607d8b"


def type_labels(boards: list[dict], lang: str, board: str | None = None) -> dict[str, dict]:
    """Each card type's name in the page's language and its colour, as the boards define
    them: the chosen board first, then the others by id, then the built-in types."""
    ordered = sorted(boards, key=lambda b: (b["_id"] != board, b["_id"]))
    out: dict[str, dict] = {}
    for b in [*ordered, {}]:  # a board without types of its own has the built-in ones
        for tp in BoardRules(b).card_types:
            colour = tp.get("color") or NO_COLOUR
            out.setdefault(tp["id"], {
                "name": type_name(tp, lang),
                "color": colour if _COLOUR.match(colour) else NO_COLOUR})
    return out


def closed_by_type(summary: dict, types: dict[str, dict]) -> list[dict]:
    """The API's `closed_by_type` as table rows: name, colour, count, share of closed."""
    closed = summary["closed"]
    rows = [{"id": k, "name": types.get(k, {}).get("name", k),
             "color": types.get(k, {}).get("color", NO_COLOUR), "count": n,
             "share": n / closed if closed else None}
            for k, n in summary["closed_by_type"].items()]
    return sorted(rows, key=lambda r: (-r["count"], r["name"]))


def render(t: dict, lang: str, params: dict, summary: dict, flow: dict,
           group_by: str | None, export_query: str, *, blocked_cards: list[dict] = (),
           types: dict[str, dict] | None = None, period_is_past: bool = False) -> str:
    types = types or {}
    return env.get_template("stats.html").render(
        t=t, lang=lang, params=params, summary=summary, group_by=group_by,
        charts=layout_charts(t, lang, params, summary, flow),
        per_card=flow["time_in_column"]["cards"][:200], exports=list(api.EXPORTS),
        export_query=export_query, dur=lambda v: duration(v, lang),
        blocked_cards=list(blocked_cards)[:200], by_type=closed_by_type(summary, types),
        types=types, period_is_past=period_is_past)


def _seconds_between(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def _ticks(start: str, end: str, n: int = 5) -> list[str]:
    """Dates (MM-DD) evenly spaced over the period, for the scatter's time axis."""
    lo, hi = datetime.fromisoformat(start), datetime.fromisoformat(end)
    return [(lo + (hi - lo) * i / (n - 1)).strftime("%m-%d") for i in range(n)]


def _to_login(request: Request) -> RedirectResponse:
    """To the workspace sign-in, which returns here (`next` is a path on this site)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _refused(t: dict, lang: str, message: str, status: int) -> HTMLResponse:
    """A signed-in agent's bad filter (e.g. `from` after `to`): say why, offer a reset."""
    html = env.get_template("refused.html").render(t=t, lang=lang, message=message)
    return HTMLResponse(html, status_code=status)


def _clean_query(request: Request, drop: tuple[str, ...] = ()) -> str:
    return urlencode([(k, v) for k, v in request.query_params.multi_items() if k not in drop])


async def _query_from_page(request: Request) -> tuple[StatsQuery, Agent]:
    agent = await current_agent(request)
    qp = request.query_params
    q = StatsQuery(request, agent, start=qp.get("from") or None, end=qp.get("to") or None,
                   account=qp.get("account") or None, service=qp.get("service") or None,
                   lane=qp.get("lane") or None, agent_id=qp.get("agent") or None,
                   channel=qp.get("channel") or None, board=qp.get("board") or None)
    return q, agent


@router.get("/stats", response_class=HTMLResponse)
async def stats_page(request: Request) -> Response:
    lang = language(request)
    t = TEXT[lang]
    try:
        q, agent = await _query_from_page(request)
        group_by = request.query_params.get("group_by") or None
        if group_by is not None and group_by not in query.domain.DIMENSIONS:
            group_by = None
        data = await q.data()
        now = datetime.now(UTC)  # one instant for the blocked figures and their rows
        summary = query.summary(data, q.period, now)
        summary["deflected"] = await q.deflected()
        if group_by:
            summary["groups"] = query.grouped(data, q.period, group_by)
        flow = query.flow(data, q.period)
        blocked = query.blocked_cards(data, q.period, now)
        boards = [b for b in await CatalogRepository(request.app.state.runtime.db).list_boards()
                  if agent.can_see_board(b["_id"])]
    except DomainError as exc:
        if exc.status_code == 401:
            return _to_login(request)
        return _refused(t, lang, exc.message, exc.status_code)
    params = dict(q.params)
    params["to_inclusive"] = (request.query_params.get("to") or "")
    html = render(t, lang, params, summary, flow, group_by,
                  _clean_query(request, ("lang", "group_by")), blocked_cards=blocked,
                  types=type_labels(boards, lang, q.params.get("board")),
                  period_is_past=q.period.end <= now)
    return HTMLResponse(html, headers={"cache-control": "no-store"})


@router.get("/stats/export/{kind}.csv")
async def stats_page_export(kind: str, request: Request) -> Response:
    """CSV links of the page, signed in by the workspace session."""
    if kind not in api.EXPORTS:
        return Response("unknown export", status_code=404)
    q, _agent = await _query_from_page(request)
    return await api.export_csv(kind, q)  # type: ignore[arg-type]
