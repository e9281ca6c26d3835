"""The statistics page of the agent workspace (/stats): figures, SVG charts, CSV links.

Signed in like the rest of the workspace: the Bearer header or the workspace's session
cookie (both through `boards.api.auth.current_agent`); without either, the browser is sent
to the workspace's sign-in page, which brings it back here.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from urllib.parse import quote, urlencode

from desk_runtime.http import DomainError
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from boards.api.auth import Agent, current_agent
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
           "per_card": "Time in column per card"},
    "ru": {"title": "Статистика", "received": "Поступило", "closed": "Закрыто",
           "first_response": "Первый ответ (рабочее время)",
           "resolution": "Решение (рабочее время)", "median": "медиана", "p90": "p90",
           "mean": "среднее", "sla": "SLA: выполнено / нарушено", "target": "Цель",
           "met": "выполнено", "breached": "нарушено", "share": "доля выполненных",
           "reopen": "Доля переоткрытых", "csat": "Удовлетворённость (CSAT)",
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
           "per_card": "Время в колонках по заявкам"},
}


def language(request: Request) -> str:
    lang = request.query_params.get("lang")
    if lang in TEXT:
        return lang
    accept = request.headers.get("accept-language", "")
    return "ru" if accept.lower().startswith("ru") else "en"


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


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;
color:#1f2933}header{background:#1f2933;color:#fff;padding:12px 24px;display:flex;gap:16px;
align-items:center}header a.back{color:#cbd2d9;text-decoration:none}h1{margin:0;font-size:20px}
main{padding:16px 24px}form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:end;
margin-bottom:16px}form.filters label{display:flex;flex-direction:column;font-size:12px}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:12px}
.tile,.panel{background:#fff;border:1px solid #e4e7eb;border-radius:6px;padding:12px}
.tile .v{font-size:26px;font-weight:600}.tile .s{font-size:12px;color:#52606d}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:12px;
margin-top:12px}h2{font-size:15px;margin:0 0 8px}svg.chart{width:100%;height:auto}
table{border-collapse:collapse;font-size:13px;width:100%}td,th{border-bottom:1px solid #e4e7eb;
padding:4px 6px;text-align:left}.muted{color:#7b8794}a{color:#2563eb}
"""


def _filters_form(t: dict, params: dict, group_by: str | None, lang: str) -> str:
    def field(name: str, label: str, value: str | None, kind: str = "text") -> str:
        return (f'<label>{escape(label)}<input type="{kind}" name="{name}" '
                f'value="{escape(value or "")}"></label>')

    start = (params.get("from") or "")[:10]
    end = (params.get("to_inclusive") or "")[:10]
    options = "".join(
        f'<option value="{d}"{" selected" if d == group_by else ""}>{escape(t.get(d, d))}'
        f"</option>" for d in ("", "service", "lane", "agent", "channel", "account"))
    return (f'<form class="filters" method="get"><input type="hidden" name="lang" value="{lang}">'
            + field("from", t["from"], start, "date") + field("to", t["to"], end, "date")
            + field("service", t["service"], params.get("service"))
            + field("lane", t["lane"], params.get("lane"))
            + field("agent", t["agent"], params.get("agent"))
            + field("channel", t["channel"], params.get("channel"))
            + f'<label>{t["group_by"]}<select name="group_by">{options}</select></label>'
            + f'<button type="submit">{t["show"]}</button></form>')


def _times_tile(t: dict, key: str, fig: dict, lang: str) -> str:
    def dur(v: float | None) -> str:
        return duration(v, lang)

    return (f'<div class="tile" id="tile-{key}"><div class="s">{t[key]}</div>'
            f'<div class="v">{dur(fig["median"])}</div><div class="s">{t["median"]} · '
            f'{t["p90"]} {dur(fig["p90"])} · {t["mean"]} {dur(fig["mean"])} · '
            f'n={fig["count"]}</div></div>')


def render(t: dict, lang: str, params: dict, summary: dict, flow: dict,
           group_by: str | None, export_query: str) -> str:
    def dur(v: float | None) -> str:
        return duration(v, lang)

    s = summary
    tiles = (
        f'<div class="tile" id="tile-received"><div class="s">{t["received"]}</div>'
        f'<div class="v">{s["received"]}</div></div>'
        f'<div class="tile" id="tile-closed"><div class="s">{t["closed"]}</div>'
        f'<div class="v">{s["closed"]}</div></div>'
        + _times_tile(t, "first_response", s["first_response"], lang)
        + _times_tile(t, "resolution", s["resolution"], lang)
        + f'<div class="tile" id="tile-reopen"><div class="s">{t["reopen"]}</div>'
        f'<div class="v">{pct(s["reopen"]["rate"])}</div><div class="s">'
        f'{s["reopen"]["reopened"]} / {s["reopen"]["closed"]}</div></div>'
        f'<div class="tile" id="tile-csat"><div class="s">{t["csat"]}</div><div class="v">'
        f'{avg(s["csat"]["average"])}</div>'
        f'<div class="s">{t["response_rate"]} {pct(s["csat"]["response_rate"])} · '
        f'n={s["csat"]["count"]}</div></div>')
    sla_rows = "".join(
        f"<tr><td>{escape(t.get('target_' + name, name))}</td><td>{b['met']}</td>"
        f"<td>{b['breached']}</td>"
        f"<td>{pct(b['met_share'])}</td></tr>" for name, b in s["sla"].items()) or (
        f'<tr><td colspan="4" class="muted">{t["no_data"]}</td></tr>')
    sla_table = (f'<div class="panel"><h2>{t["sla"]}</h2><table id="sla"><tr><th>{t["target"]}'
                 f'</th><th>{t["met"]}</th><th>{t["breached"]}</th><th>{t["share"]}</th></tr>'
                 f"{sla_rows}</table></div>")
    days = [p["at"][5:10] for p in flow["backlog"]]
    nd = t["no_data"]
    backlog = charts.line(t["backlog"], days, [p["open"] for p in flow["backlog"]],
                          empty_text=nd)
    cats = ("queued", "in_progress", "waiting_for_customer", "paused", "done")
    cfd = charts.stacked_area(
        t["cfd"], [p["at"][5:10] for p in flow["cumulative_flow"]],
        {k: [p[k] for p in flow["cumulative_flow"]] for k in cats}, {k: t[k] for k in cats},
        empty_text=nd)
    pts = flow["cycle_time"]["points"]
    start, end = params["from"], params["to"]
    span = _seconds_between(start, end)
    scatter = charts.scatter(
        t["cycle"],
        [(_seconds_between(start, p["closed_at"]) / span if span else 0, p["seconds"],
          p.get("number") or p["card_id"]) for p in pts],
        dict(flow["cycle_time"]["percentiles"]), fmt=dur, empty_text=nd,
        xlabels=_ticks(start, end))
    thr = flow["throughput"]
    through = charts.bars(t["throughput"], [w["week"][5:] for w in thr],
                          [w["closed"] for w in thr], color="#22c55e", empty_text=nd)
    # done columns only accumulate: where work stalls is the open columns
    cols = {k: v for k, v in flow["time_in_column"]["columns"].items()
            if v["category"] != "done"}
    columns = charts.hbars(t["columns"], list(cols), [c["mean"] or 0 for c in cols.values()],
                           fmt=dur, empty_text=nd)
    dist = s["csat"]["distribution"]
    ratings = charts.bars(t["distribution"], [f"{k}★" for k in dist], list(dist.values()),
                          color="#a855f7", empty_text=nd)
    comments = "".join(
        f"<tr><td>{escape(c.get('number') or c['card_id'])}</td><td>{c['rating']}★</td>"
        f"<td>{escape(c['comment'])}</td></tr>" for c in s["csat"]["comments"]) or (
        f'<tr><td colspan="3" class="muted">{nd}</td></tr>')
    per_card = "".join(
        f"<tr><td>{escape(c.get('number') or c['card_id'])}</td><td>"
        + ", ".join(f"{escape(col)}: {dur(sec)}" for col, sec in c["columns"].items())
        + "</td></tr>" for c in flow["time_in_column"]["cards"][:200])
    groups = ""
    if group_by and "groups" in s:
        rows = "".join(
            f"<tr><td>{escape(str(g['key'] or t['none']))}</td><td>{g['received']}</td>"
            f"<td>{g['closed']}</td><td>{dur(g['first_response']['median'])}</td>"
            f"<td>{dur(g['resolution']['median'])}</td><td>{pct(g['reopen']['rate'])}</td>"
            f"<td>{avg(g['csat']['average'])}</td></tr>" for g in s["groups"])
        groups = (f'<div class="panel"><h2>{t["groups"]} {escape(t.get(group_by, group_by))}'
                  f'</h2><table id="groups"><tr><th></th><th>{t["received"]}</th>'
                  f'<th>{t["closed"]}</th><th>{t["first_response"]}</th>'
                  f'<th>{t["resolution"]}</th><th>{t["reopen"]}</th><th>CSAT</th></tr>'
                  f"{rows}</table></div>")
    exports = " · ".join(f'<a href="/stats/export/{k}.csv?{export_query}">{k}.csv</a>'
                         for k in api.EXPORTS)

    def panel(title_key: str, svg: str, pid: str) -> str:
        return f'<div class="panel" id="{pid}"><h2>{t[title_key]}</h2>{svg}</div>'

    return f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{t["title"]}</title><style>{CSS}</style></head><body>
<header><a class="back" href="/board">{t["workspace"]}</a><h1>{t["title"]}</h1></header><main>
{_filters_form(t, params, group_by, lang)}
<div class="tiles">{tiles}</div>
<div class="grid">
{panel("backlog", backlog, "chart-backlog")}{panel("cfd", cfd, "chart-cfd")}
{panel("cycle", scatter, "chart-cycle")}{panel("throughput", through, "chart-throughput")}
{panel("columns", columns, "chart-columns")}{panel("distribution", ratings, "chart-csat")}
{sla_table}
<div class="panel"><h2>{t["comments"]}</h2><table id="comments">{comments}</table></div>
{groups}
<div class="panel"><h2>{t["per_card"]}</h2><table id="per-card">{per_card}</table></div>
<div class="panel"><h2>{t["export"]}</h2>{exports}</div>
</div></main></body></html>"""


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
    body = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{t["title"]}'
            f"</title><style>{CSS}</style></head><body><header><h1>{t['title']}</h1></header>"
            f'<main><p class="error">{escape(message)}</p><p><a href="/stats?lang={lang}">'
            f'{t["title"]}</a></p></main></body></html>')
    return HTMLResponse(body, status_code=status)


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
        q, _agent = await _query_from_page(request)
        group_by = request.query_params.get("group_by") or None
        if group_by is not None and group_by not in query.domain.DIMENSIONS:
            group_by = None
        data = await q.data()
        summary = query.summary(data, q.period)
        if group_by:
            summary["groups"] = query.grouped(data, q.period, group_by)
        flow = query.flow(data, q.period)
    except DomainError as exc:
        if exc.status_code == 401:
            return _to_login(request)
        return _refused(t, lang, exc.message, exc.status_code)
    params = dict(q.params)
    params["to_inclusive"] = (request.query_params.get("to") or "")
    html = render(t, lang, params, summary, flow, group_by,
                  _clean_query(request, ("lang", "group_by")))
    return HTMLResponse(html, headers={"cache-control": "no-store"})


@router.get("/stats/export/{kind}.csv")
async def stats_page_export(kind: str, request: Request) -> Response:
    """CSV links of the page, signed in by the workspace session."""
    if kind not in api.EXPORTS:
        return Response("unknown export", status_code=404)
    q, _agent = await _query_from_page(request)
    return await api.export_csv(kind, q)  # type: ignore[arg-type]
