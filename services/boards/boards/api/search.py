"""Finding and handling many cards: full-text search, the table's query, bulk actions.

`CardQuery` is one set of filters read the same way by the search API, the table page and
its CSV export (a saved view is its query string). Without words the cards come newest
first by keyset cursor over any number of cards; with words the newest
`SEARCH_CANDIDATES` cards holding every word are ranked (boards.domain.search) and paged
by offset; another sort order reads the filtered cards whole when they are at most
`SORT_LIMIT`, and otherwise says to narrow the filters (never a silently partial sort).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from desk_runtime.http import Invalid, NotFound
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from boards.api import schemas
from boards.api.cards import board_views
from boards.application import bulk
from boards.auth import Agent, current_agent
from boards.domain.card import Card
from boards.domain.cards import decode_cursor, encode_cursor
from boards.domain.search import query_keys, rank, where_matched
from boards.metrics import ACCESS_DENIED, SEARCHES
from boards.repository import UNASSIGNED, CardListSpec, Repositories

router = APIRouter(prefix="/v1", tags=["search"])

SEARCH_CANDIDATES = 500
SORT_LIMIT = 2000
PRIORITY_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}
SLA_ORDER = {"breached": 2, "warning": 1}
# each also descending with a leading "-"
SORTS = ("created", "relevance", "number", "title", "updated", "priority", "status",
         "assignee", "requester", "sla", "rating", "type", "service")
FILTERS = ("board", "service", "priority", "sla", "assignee", "q", "type", "status")
STATUSES = ("queued", "in_progress", "waiting_for_customer", "paused", "done")


@dataclass(frozen=True)
class CardQuery:
    """Filters, words, sort and page position, as a table link or the search API has them."""

    board: str | None = None
    service: str | None = None
    priority: str | None = None
    sla: str | None = None
    assignee: str | None = None
    q: str | None = None
    type: str | None = None
    status: str | None = None
    sort: str = "-created"
    cursor: str | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, params: Any) -> CardQuery:
        """From query parameters; a bad value is dropped and named in `errors`."""
        got = {k: (params.get(k) or "").strip() or None for k in (*FILTERS, "sort", "cursor")}
        errors = {}
        checks = {"priority": tuple(PRIORITY_ORDER), "sla": tuple(SLA_ORDER),
                  "status": STATUSES, "sort": SORTS}
        for name, allowed in checks.items():
            value = got[name].removeprefix("-") if name == "sort" and got[name] else got[name]
            if value is not None and value not in allowed:
                errors[name] = f"one of {', '.join(allowed)}"
                got[name] = None
        if got["q"] is not None and len(got["q"]) > 200:
            errors["q"] = "at most 200 characters"
            got["q"] = None
        sort = got.pop("sort") or ("relevance" if got["q"] else "-created")
        return cls(**got, sort=sort, errors=errors)

    def link(self, **changes: Any) -> str:
        """This query (without its page position) as a query string, changed as given."""
        from urllib.parse import urlencode

        values = {k: getattr(self, k) for k in (*FILTERS, "sort")} | changes
        return urlencode({k: v for k, v in values.items() if v and not (
            k == "sort" and v == ("relevance" if values.get("q") else "-created"))})

    def spec(self, agent: Agent, scope: list[str], *, after: str | None = None
             ) -> CardListSpec:
        assignee: Any = self.assignee
        if assignee is not None:
            assignee = {"me": agent.id, "none": UNASSIGNED}.get(assignee, assignee)
        return CardListSpec.build(
            boards=scope, after=after, text=query_keys(self.q) if self.q else None,
            assignee_id=assignee, service_id=self.service, priority=self.priority,
            sla_state=self.sla, type=self.type, status_category=self.status)


@dataclass
class Found:
    cards: list[Card]
    next_cursor: str | None
    matches: dict[str, list[dict]] = field(default_factory=dict)
    note: str | None = None  # why the order asked for could not be given


async def scope_of(repos: Repositories, agent: Agent, board: str | None) -> list[str]:
    """The boards a query reads: the one asked for (404 unless the agent may see it) or
    every board the agent may see."""
    if board is not None:
        if not agent.can_see_board(board):
            ACCESS_DENIED.labels("other_board").inc()
            raise NotFound("no such board")
        return [board]
    return [b["_id"] for b in await repos.catalog.list_boards() if agent.can_see_board(b["_id"])]


def sort_value(card: Card, sort: str, names: dict[str, str]) -> Any:
    """What a table column sorts by (`names`: agent and service display names)."""
    name = sort.lstrip("-")
    req = card.requester or {}
    if name == "number":
        digits = card.number.rsplit("-", 1)[-1]
        return (card.number.rsplit("-", 1)[0], int(digits) if digits.isdigit() else 0)
    if name == "priority":
        return PRIORITY_ORDER.get(card.priority, 0)
    if name == "status":
        return STATUSES.index(card.status_category) if card.status_category in STATUSES else 0
    if name == "sla":
        return SLA_ORDER.get(card.sla_state or "", 0)
    if name == "rating":
        return (card.rating or {}).get("score") or 0
    if name == "assignee":
        return names.get(card.assignee_id or "", card.assignee_id or "").casefold()
    if name == "service":
        return names.get(card.service_id or "", card.service_id or "").casefold()
    if name in ("updated", "created"):
        return card.updated_at if name == "updated" else card.created_at
    if name == "requester":
        return (req.get("name") or req.get("email") or "").casefold()
    return str(getattr(card, name, "") or "").casefold()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    if not cursor.startswith("o") or not cursor[1:].isdigit():
        raise Invalid("malformed cursor", details={"cursor": "not one this list gave"})
    return int(cursor[1:])


async def find(repos: Repositories, agent: Agent, query: CardQuery, limit: int, *,
               names: dict[str, str] | None = None, with_matches: bool = True) -> Found:
    """One page of cards for `query`, with where the words matched on each."""
    scope = await scope_of(repos, agent, query.board)
    if query.q or query.sort != "-created":
        return await _whole(repos, agent, query, scope, limit, names or {}, with_matches)
    after = None
    if query.cursor:
        try:
            after = decode_cursor(query.cursor)
        except ValueError:
            raise Invalid("malformed cursor", details={"cursor": "not one this list gave"}
                          ) from None
    rows = await repos.cards.list_cards(query.spec(agent, scope, after=after), limit + 1)
    page = rows[:limit]
    return Found(page, encode_cursor(page[-1].sort_key) if len(rows) > limit else None)


async def _whole(repos: Repositories, agent: Agent, query: CardQuery, scope: list[str],
                 limit: int, names: dict[str, str], with_matches: bool) -> Found:
    """Ranked or sorted: read the candidates whole, order them, page by offset."""
    start = _offset(query.cursor)
    cap = SEARCH_CANDIDATES if query.q else SORT_LIMIT
    rows = await repos.cards.list_cards(query.spec(agent, scope), cap + 1)
    note = None
    if len(rows) > cap:
        rows = rows[:cap]
        note = (f"the {cap} newest matching cards, best first; add words or filters to "
                f"reach older ones" if query.q else
                f"more than {cap} cards match: sorted by creation instead; narrow the "
                f"filters to sort by {query.sort.lstrip('-')}")
    if query.sort == "relevance" and query.q:
        order = {r.card_id: i for i, r in enumerate(rank(query.q, [c.to_document()
                                                                   for c in rows]))}
        rows.sort(key=lambda c: order[c.id])
    elif query.sort not in ("-created", "relevance") and not (note and not query.q):
        rows.sort(key=lambda c: sort_value(c, query.sort, names),
                  reverse=query.sort.startswith("-"))
    page = rows[start:start + limit]
    found = Found(page, f"o{start + limit}" if len(rows) > start + limit else None, note=note)
    if query.q and with_matches and page:
        comments = await repos.cards.comments_of_cards([c.id for c in page])
        found.matches = {c.id: where_matched(query.q, c.to_document(), comments[c.id])
                         for c in page}
    return found


def invalid(query: CardQuery, kind: str) -> None:
    """Refuse a query with bad values (each named), counting it."""
    if query.errors:
        SEARCHES.labels(kind, "invalid").inc()
        raise Invalid("some filters are invalid", details=dict(query.errors))
    SEARCHES.labels(kind, "ok").inc()


# --- the API ---------------------------------------------------------------------------------

HIDDEN = ("text_keys", "search_comments")  # the index's own fields, not the card's


class SearchPage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page")
    note: str | None = Field(None, description="why the order asked for was not given")


@router.get("/search/cards", response_model=SearchPage)
async def search_cards(request: Request, agent: Agent = Depends(current_agent)) -> dict:
    """Full-text search over title, description, replies, internal notes, fields and the
    requester (ru/en stems, case-insensitive), ranked, with the table's filters
    (`board`, `service`, `priority`, `sla`, `assignee`, `type`, `status`), `sort`, `cursor`
    and `limit` (1…200); each item says `matches`: where the words were found."""
    query = CardQuery.parse(request.query_params)
    raw_limit = request.query_params.get("limit") or "50"
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 200:
        query = replace(query, errors={**query.errors, "limit": "a whole number 1…200"})
    invalid(query, "search")
    repos = Repositories.of(request.app.state.runtime.db)
    found = await find(repos, agent, query, int(raw_limit))
    views = await board_views(repos, found.cards)
    return {"items": [{k: v for k, v in view.items() if k not in HIDDEN}
                      | {"matches": found.matches.get(c.id, [])}
                      for c, view in zip(found.cards, views, strict=True)],
            "next_cursor": found.next_cursor, "note": found.note}


class BulkBody(BaseModel):
    cards: list[str] = Field(min_length=1, max_length=bulk.MAX_CARDS,
                             description="card ids or numbers")
    action: Literal["assign", "move", "transfer", "priority", "labels", "type", "close"]
    assignee_id: str | None = None
    column_id: str | None = None
    lane_id: str | None = None
    board_id: str | None = None
    priority_key: str | None = None
    labels: list[schemas.Label] = Field([], max_length=30)
    type: str | None = None
    canned_response_id: str | None = None


REQUIRED = {"move": ("column_id",), "transfer": ("board_id",), "priority": ("priority_key",),
            "type": ("type",)}


class BulkResult(BaseModel):
    results: list[dict[str, Any]]
    done: int
    unchanged: int
    refused: int


@router.post("/cards/bulk", response_model=BulkResult)
async def bulk_action(body: BulkBody, request: Request, agent: Agent = Depends(current_agent)
                      ) -> dict:
    """One action on many cards, each through the operation its single change uses (its
    own transaction, history and events); a result per card: done, unchanged or refused
    with the reason."""
    missing = {f: "required for this action" for f in REQUIRED.get(body.action, ())
               if not getattr(body, f)}
    if missing:
        raise Invalid(f"{body.action} needs {', '.join(missing)}", details=missing)
    action = bulk.BulkAction(
        kind=body.action, assignee_id=body.assignee_id, column_id=body.column_id,
        lane_id=body.lane_id, board_id=body.board_id, priority_key=body.priority_key,
        labels=tuple(x.model_dump() for x in body.labels), type=body.type, canned_response_id=body.canned_response_id)
    runtime = request.app.state.runtime
    results = await bulk.run(
        lambda work: runtime.transact(work, correlation_id=request.state.correlation_id),
        agent, body.cards, action)
    counts = {s: sum(1 for r in results if r["status"] == s)
              for s in ("done", "unchanged", "refused")}
    return {"results": results, **counts}
