"""The card table: chosen columns, sorting, the board's filters and full-text search, saved
views, a selection for bulk actions, and the current view as CSV.

The page is rendered by the server (`templates/table.html`); `static/table.js` adds the
keyboard (arrows or j/k between rows, Enter opens, x or Space selects), saving a view and
the bulk actions, which go through the agents' API (`/v1/cards/bulk`, `/v1/views`). The
query is `boards.api.search.CardQuery`, so a table link, a saved view and the API read
the same filters the same way; the CSV export writes every card of the view (up to
`EXPORT_LIMIT`) with the statistics export's formula-safe cells.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from desk_runtime.http import Invalid, NotFound
from fastapi import APIRouter, Request
from fastapi.responses import Response

from boards.api.search import (
    SEARCH_CANDIDATES,
    SORT_LIMIT,
    SORTS,
    STATUSES,
    CardQuery,
    Found,
    find,
)
from boards.api.views import COLUMNS, readable_view, views_for
from boards.auth import Agent
from boards.domain.board import BoardRules, priority_name, type_name
from boards.domain.card import Card
from boards.metrics import SEARCHES
from boards.repository import Repositories
from boards.repository.views import SavedViewRepository
from boards.stats.api import cell
from boards.web import i18n
from boards.web.pages import board_choices, render, signed_in_page

router = APIRouter(include_in_schema=False)
DEFAULT_COLUMNS = ("number", "title", "service", "priority", "status", "assignee", "sla",
                   "updated")
PAGE_SIZES = (25, 50, 100, 200)
EXPORT_LIMIT = 10_000

TEXT = {
    "en": {"table": "Table", "table_title": "Cards", "columns": "Columns", "sort": "Sort",
           "relevance": "relevance", "newest": "newest first",
           "default_sort": "best match (newest without words)", "oldest": "oldest first",
           "per_page": "Per page", "next_page": "Next page", "first_page": "First page",
           "export_csv": "Export CSV", "views": "Saved views", "save_view": "Save view",
           "view_name": "View name", "shared": "Shared with the board's agents",
           "all_boards": "all boards", "type": "Type", "status_filter": "Status",
           "col_number": "Number", "col_title": "Title", "col_service": "Service",
           "col_category": "Category", "col_type": "Type", "col_priority": "Priority",
           "col_status": "Status", "col_assignee": "Assignee", "col_requester": "Requester",
           "col_organisation": "Organisation", "col_sla": "SLA", "col_created": "Created",
           "col_updated": "Updated", "col_rating": "Rating", "select_card": "Select {number}",
           "select_page": "Select all on this page", "selected": "{n} selected",
           "bulk": "Bulk action", "bulk_apply": "Apply to selected",
           "bulk_assign": "Assign", "bulk_move": "Move to column", "bulk_transfer":
           "Move to board", "bulk_priority": "Set priority", "bulk_labels": "Set labels",
           "bulk_type": "Set type", "bulk_close": "Close with a canned reply",
           "no_canned": "no reply", "labels_hint": "labels, comma-separated",
           "bulk_done": "{done} done, {unchanged} unchanged, {refused} refused",
           "bulk_needs_board": "Choose a board in the filters to move cards between its "
                               "columns or set its priorities and types.",
           "res_done": "done", "res_unchanged": "unchanged", "res_refused": "refused",
           "found_in": "found in", "where_title": "title", "where_requester": "requester",
           "where_field": "field", "where_description": "description",
           "where_reply": "reply", "where_note": "internal note", "view_saved": "View saved",
           "table_keys": "Arrow keys or j/k move between rows, Enter opens the card, "
                         "x or Space selects it.",
           "invalid_filter": "Ignored {name}: {message}",
           "status_queued": "queued", "status_in_progress": "in progress",
           "status_waiting_for_customer": "waiting for customer", "status_paused": "paused",
           "status_done": "done", "delete_view": "Delete view",
           "search_capped": "Showing the {n} newest matching cards, best first; add words "
                            "or filters to reach older ones.",
           "sort_capped": "More than {n} cards match, so they are shown newest first; "
                          "narrow the filters to sort by {column}."},
    "ru": {"table": "Таблица", "table_title": "Карточки", "columns": "Колонки",
           "sort": "Сортировка", "relevance": "по релевантности", "newest": "сначала новые",
           "default_sort": "по релевантности (без слов — новые)",
           "oldest": "сначала старые", "per_page": "На странице",
           "next_page": "Следующая страница", "first_page": "Первая страница",
           "export_csv": "Выгрузить CSV", "views": "Сохранённые представления",
           "save_view": "Сохранить представление", "view_name": "Название представления",
           "shared": "Доступно агентам доски", "all_boards": "все доски", "type": "Тип",
           "status_filter": "Статус", "col_number": "Номер", "col_title": "Название",
           "col_service": "Услуга", "col_category": "Категория", "col_type": "Тип",
           "col_priority": "Приоритет", "col_status": "Статус", "col_assignee": "Исполнитель",
           "col_requester": "Автор", "col_organisation": "Организация", "col_sla": "SLA",
           "col_created": "Создана", "col_updated": "Изменена", "col_rating": "Оценка",
           "select_card": "Выбрать {number}", "select_page": "Выбрать все на странице",
           "selected": "Выбрано: {n}", "bulk": "Массовое действие",
           "bulk_apply": "Применить к выбранным", "bulk_assign": "Назначить",
           "bulk_move": "Переместить в колонку", "bulk_transfer": "Перенести на доску",
           "bulk_priority": "Задать приоритет", "bulk_labels": "Задать метки",
           "bulk_type": "Задать тип", "bulk_close": "Закрыть с шаблонным ответом",
           "no_canned": "без ответа", "labels_hint": "метки через запятую",
           "bulk_done": "Готово: {done}, без изменений: {unchanged}, отказано: {refused}",
           "bulk_needs_board": "Выберите доску в фильтрах, чтобы перемещать карточки между "
                               "её колонками или задавать её приоритеты и типы.",
           "res_done": "готово", "res_unchanged": "без изменений", "res_refused": "отказано",
           "found_in": "найдено в", "where_title": "названии", "where_requester": "авторе",
           "where_field": "поле", "where_description": "описании", "where_reply": "ответе",
           "where_note": "внутренней заметке", "view_saved": "Представление сохранено",
           "table_keys": "Стрелки или j/k — переход между строками, Enter — открыть "
                         "карточку, x или пробел — выбрать.",
           "invalid_filter": "Пропущено {name}: {message}",
           "status_queued": "в очереди", "status_in_progress": "в работе",
           "status_waiting_for_customer": "ждёт клиента", "status_paused": "на паузе",
           "status_done": "готово", "delete_view": "Удалить представление",
           "search_capped": "Показаны {n} самых новых подходящих карточек, лучшие первыми; "
                            "уточните слова или фильтры, чтобы найти более старые.",
           "sort_capped": "Подходит больше {n} карточек, поэтому они показаны от новых к "
                          "старым; сузьте фильтры, чтобы сортировать по колонке «{column}»."},
}


def texts(lang: str) -> dict[str, str]:
    return i18n.texts(lang) | TEXT.get(lang, TEXT["en"])


class Lookups:
    """Display names a row needs: services, boards' columns, types, priorities, agents."""

    def __init__(self, services: list, boards: list[dict], agents: dict[str, str], lang: str):
        self.lang = lang
        self.services = {s.id: s for s, _ in services}
        self.agents = agents
        self.columns = {(b["_id"], c["id"]): c["name"] for b in boards for c in b["columns"]}
        self.types: dict[tuple[str, str], str] = {}
        self.priorities: dict[tuple[str, str], str] = {}
        for b in boards:
            rules = BoardRules(b)
            for t in rules.card_types:
                self.types[(b["_id"], t["id"])] = type_name(t, lang)
            for p in rules.priorities:
                self.priorities[(b["_id"], p["id"])] = priority_name(p, lang)

    def names(self) -> dict[str, str]:
        """For sorting by assignee and service: their display names."""
        return self.agents | {k: s.name.get(self.lang) for k, s in self.services.items()}

    def row(self, card: Card, t: dict[str, str], now: datetime) -> dict[str, Any]:
        service = self.services.get(card.service_id or "")
        req = card.requester or {}
        return {
            "number": card.number, "title": card.title,
            "service": service.name.get(self.lang) if service else "",
            "category": service.group.get(self.lang) if service and service.group else "",
            "type": self.types.get((card.board_id, card.type), card.type),
            "priority": self.priorities.get((card.board_id, card.priority_key or ""),
                                            t.get(card.priority, card.priority)),
            "status": self.columns.get((card.board_id, card.column_id), card.column_id),
            "assignee": self.agents.get(card.assignee_id or "", card.assignee_id or ""),
            "requester": req.get("name") or req.get("email") or "",
            "organisation": req.get("organisation") or "",
            "sla": sla_text(card, t, now), "created": card.created_at,
            "updated": card.updated_at, "rating": (card.rating or {}).get("score"),
        }


def sla_text(card: Card, t: dict[str, str], now: datetime) -> str:
    """The card's worst SLA state and the time left to its nearest open deadline."""
    state = t.get(f"sla_{card.sla_state}", "") if card.sla_state else ""
    deadlines = [s["deadline"] for s in card.sla.values()
                 if s.get("deadline") and s.get("state") not in ("met", "stopped")]
    if not deadlines:
        return state
    nearest = min(d if d.tzinfo else d.replace(tzinfo=UTC) for d in deadlines)
    left = int((nearest - now).total_seconds())
    mins = abs(left) // 60
    span = f"{mins // 1440}d {mins % 1440 // 60}h" if mins >= 1440 else \
        f"{mins // 60}h {mins % 60}m"
    when = t["left"].format(t=span) if left >= 0 else t["overdue"].format(t=span)
    return f"{state} {when}".strip()


def _note(page: Found, query: CardQuery, t: dict[str, str]) -> str | None:
    """Why the page is not everything asked for, in the page's language."""
    if page.note is None:
        return None
    if query.q:
        return t["search_capped"].format(n=SEARCH_CANDIDATES)
    return t["sort_capped"].format(n=SORT_LIMIT, column=t.get(
        f"col_{query.sort.lstrip('-')}", query.sort))


def _columns(raw: str | None) -> list[str]:
    chosen = [c for c in (raw or "").split(",") if c in COLUMNS]
    return chosen or list(DEFAULT_COLUMNS)


async def _lookups(repos: Repositories, lang: str) -> Lookups:
    return Lookups(await repos.catalog.list_services(), await repos.catalog.list_boards(),
                   await repos.agents.agent_names(), lang)


async def _query_of(request: Request, agent: Agent) -> tuple[Any, str | None]:
    """The request's query parameters, or a saved view's (`?view=`) under them."""
    params = dict(request.query_params)
    view_id = params.pop("view", None)
    if view_id:
        from urllib.parse import parse_qsl

        doc = await readable_view(SavedViewRepository(request.app.state.runtime.db), agent,
                                  view_id)
        params = dict(parse_qsl(doc["query"])) | {k: v for k, v in params.items()
                                                   if k in ("cursor", "per", "lang")}
    return params, view_id


@router.get("/table")
async def table_page(request: Request) -> Response:
    ctx = await signed_in_page(request)
    if isinstance(ctx, Response):
        return ctx
    agent, _session, lang, base = ctx
    t = texts(lang)
    try:
        params, view_id = await _query_of(request, agent)
    except NotFound:  # a view one may not open looks like a missing one
        return render(request, "empty.html", lang, status=404, **base)
    query = CardQuery.parse(params)
    if query.board and not agent.can_see_board(query.board):
        return render(request, "empty.html", lang, status=404, **base)
    SEARCHES.labels("table", "invalid" if query.errors else "ok").inc()
    per = int(params["per"]) if str(params.get("per", "")).isdigit() and int(
        params["per"]) in PAGE_SIZES else 50
    cols = _columns(params.get("cols"))
    repos = Repositories.of(request.app.state.runtime.db)
    lookups = await _lookups(repos, lang)
    try:
        page: Found = await find(repos, agent, query, per, names=lookups.names())
    except Invalid:  # a stale or hand-made cursor: show the first page
        if not query.cursor:
            raise
        query = replace(query, cursor=None, errors={**query.errors, "cursor": "not ours"})
        page = await find(repos, agent, query, per, names=lookups.names())
    now = datetime.now(UTC)
    rows = [{"id": c.id, "number": c.number, "version": c.version, "done":
             c.status_category == "done", "cells": lookups.row(c, t, now),
             "matches": page.matches.get(c.id, [])} for c in page.cards]
    board = next((b for b in base["boards"] if b["_id"] == query.board), None)
    keep = query.link(cols=",".join(cols) if cols != list(DEFAULT_COLUMNS) else None,
                      per=per if per != 50 else None)
    services = [s for s, _ in await repos.catalog.list_services()
                if agent.can_see_board(s.target.board_id)]
    canned = await repos.catalog.canned_for(query.service)
    work = board_choices(board, lang) if board else {"card_types": [], "priorities": []}
    choices = {"columns": board["columns"] if board else [],
               "lanes": board["lanes"] if board else [],
               "types": work["card_types"], "priorities": work["priorities"]}
    data = {"t": t, "lang": lang, "query": keep,
            "cards": [{"id": r["id"], "number": r["number"]} for r in rows]}
    return render(
        request, "table.html", lang, tx=t, query=query, rows=rows, cols=cols, all_cols=COLUMNS,
        per=per, page_sizes=PAGE_SIZES, keep=keep, next_cursor=page.next_cursor,
        note=_note(page, query, t), sorts=SORTS, statuses=STATUSES, services=services, choices=choices,
        agents=lookups.agents, canned=canned, views=await views_for(
            SavedViewRepository(request.app.state.runtime.db), agent),
        view_id=view_id, data=data, **base)


@router.get("/table.csv")
async def table_csv(request: Request) -> Response:
    """Every card of the current view (up to EXPORT_LIMIT), the chosen columns, as CSV."""
    ctx = await signed_in_page(request)
    if isinstance(ctx, Response):
        return ctx
    agent, _session, lang, _base = ctx
    t = texts(lang)
    params, _ = await _query_of(request, agent)
    query = replace(CardQuery.parse(params), cursor=None)
    SEARCHES.labels("export", "invalid" if query.errors else "ok").inc()
    cols = _columns(params.get("cols"))
    repos = Repositories.of(request.app.state.runtime.db)
    lookups = await _lookups(repos, lang)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([t[f"col_{c}"] for c in cols])
    now, written = datetime.now(UTC), 0
    while written < EXPORT_LIMIT:
        page = await find(repos, agent, query, min(500, EXPORT_LIMIT - written),
                          names=lookups.names(), with_matches=False)
        for card in page.cards:
            row = lookups.row(card, t, now)
            writer.writerow([cell(row[c]) for c in cols])
        written += len(page.cards)
        if page.next_cursor is None:
            break
        query = replace(query, cursor=page.next_cursor)
    stamp = now.date().isoformat()
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="cards-{stamp}.csv"'})
