"""The cards aggregate's store: cards, their comments, card numbers and the list walk."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from desk_runtime.logging import get_logger
from desk_runtime.mongo import StoreUnavailable
from desk_runtime.unit_of_work import UnitOfWork
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from boards.domain.card import Card, CardChange
from boards.domain.cards import matches_filters, search_terms, sort_key, sort_key_time, time_key
from boards.domain.search import TEXT_SOURCES, card_keys, comment_stems

# Card fields an agent can filter a list by; each has its own (board, field, sort_key) index.
LIST_FILTER_FIELDS = ("lane_id", "column_id", "assignee_id", "service_id", "priority",
                      "sla_state", "search_terms", "text_keys")


# Marks "cards nobody is responsible for" (a plain None means "no assignee filter").
UNASSIGNED = object()

# The first window a list walks back from its cursor; it grows while pages come up short.
FIRST_WINDOW = timedelta(minutes=15)
SPAN_KEY = "card-span"
# per database: the span of card times this process has written to SPAN_KEY
SPAN_SLACK = timedelta(seconds=5)  # far inside FIRST_WINDOW
_SPANS_WRITTEN: dict[str, tuple[str, str]] = {}


@dataclass(frozen=True)
class CardListSpec:
    """What `GET /v1/cards` asks for: board scope, equality filters, words, cursor."""

    boards: tuple[str, ...]
    equal: dict[str, Any] = field(default_factory=dict)
    terms: tuple[str, ...] = ()
    after: str | None = None
    text: tuple[str, ...] = ()  # full-text keys (boards.domain.search), all required

    @classmethod
    def build(cls, *, boards: str | list[str], after: str | None = None,
              terms: list[str] | None = None, text: list[str] | None = None,
              **equal: Any) -> CardListSpec:
        """`equal` keys are card fields; None is "no filter", UNASSIGNED is "no assignee"."""
        chosen = {k: (None if v is UNASSIGNED else v) for k, v in equal.items() if v is not None}
        scope = (boards,) if isinstance(boards, str) else tuple(boards)
        return cls(scope, chosen, tuple(terms or ()), after, tuple(text or ()))

    def projection(self) -> dict[str, int]:
        """A list reads no history; the full-text fields only when it ranks by them."""
        return {"history": 0} | ({} if self.text else {"text_keys": 0, "search_comments": 0})

    def matches(self, card: dict[str, Any]) -> bool:
        """Whether a row the index yielded passes every other filter and has every key."""
        have = set(card.get("text_keys") or ()) if self.text else set()
        return (matches_filters(card, self.equal, list(self.terms))
                and all(k in have for k in self.text))

    def index_field(self) -> tuple[str, Any] | None:
        """The one filter the store narrows by (with board and the window); the most
        selective first. The others are checked on the rows the index yields."""
        if self.text:
            return "text_keys", max(self.text, key=len)
        if self.terms:
            return "search_terms", max(self.terms, key=len)
        for name in INDEX_PREFERENCE:
            if name in self.equal:
                return name, self.equal[name]
        return None

    def window_query(self, board: str, upper: str, lower: str | None) -> dict[str, Any]:
        """One index range: board (+ one filter) + `lower <= sort_key < upper`."""
        query: dict[str, Any] = {"board_id": board}
        picked = self.index_field()
        if picked is not None:
            query[picked[0]] = picked[1]
        query["sort_key"] = {"$lt": upper} | ({"$gte": lower} if lower else {})
        return query


# Most selective first: whose card it is and its SLA alert narrow a board the most.
INDEX_PREFERENCE = ("assignee_id", "sla_state", "column_id", "lane_id", "service_id", "priority")


def card_list_query(*, boards: str | list[str], after: str | None = None,
                    terms: list[str] | None = None, text: list[str] | None = None,
                    **equal: Any) -> dict[str, Any]:
    """The whole list filter as one store query (what a plain MongoDB client would send)."""
    spec = CardListSpec.build(boards=boards, after=after, terms=terms, text=text, **equal)
    query: dict[str, Any] = {"board_id": spec.boards[0] if len(spec.boards) == 1
                             else {"$in": list(spec.boards)}}
    query |= spec.equal
    if spec.terms:
        query["search_terms"] = {"$all": list(spec.terms)}
    if spec.text:
        query["text_keys"] = {"$all": list(spec.text)}
    if spec.after:
        query["sort_key"] = {"$lt": spec.after}
    return query



Session = AsyncClientSession | None

log = get_logger(__name__)
COUNTER_ATTEMPTS = 5


class CardRepository:
    """Cards (as `Card`), their comments and the counters that number them."""

    def __init__(self, db: AsyncDatabase):
        self._cards = db.cards
        self._comments = db.comments
        self._counters = db.counters

    async def ensure_indexes(self) -> None:
        await self._cards.create_index("number", unique=True)
        await self._cards.create_index(
            "request_id", unique=True, partialFilterExpression={"request_id": {"$type": "string"}}
        )
        # the lookup by request (every request.received): the embedded store never plans a
        # query on a partial index, so without this one it scans every card (a compound
        # key, so real MongoDB does not see two indexes on one key pattern)
        await self._cards.create_index([("request_id", ASCENDING), ("_id", ASCENDING)],
                                      name="request_id_lookup")
        # One compound index per list filter, each ending in the pagination key, so a
        # filtered page is an index range (board is always part of an agent's query).
        # sort_key ascending: SecantusDB 0.7 returns wrong rows for range scans over a
        # descending key part; the walk reads newest-first with a descending sort anyway.
        await self._cards.create_index([("board_id", ASCENDING), ("sort_key", ASCENDING)],
                                      name="cards_list_board")
        for name in LIST_FILTER_FIELDS:
            await self._cards.create_index(
                [("board_id", ASCENDING), (name, ASCENDING), ("sort_key", ASCENDING)],
                name=f"cards_list_{name}",
            )
        await self._cards.create_index([("assignee_id", ASCENDING), ("status_category", ASCENDING)])
        await self._cards.create_index("parent_id", sparse=True)
        await self._comments.create_index([("card_id", ASCENDING), ("created_at", ASCENDING)])
        await self._comments.create_index("reply_id", sparse=True)

    # --- numbering --------------------------------------------------------------------------

    async def next_counter(self, key: str, session: Session = None) -> int:
        """The counter's next value: each caller its own, concurrent callers included.

        SecantusDB 0.7 now and then answers one of several findAndModify racing on one
        document with no document, though it did increment it (8 threads × 300
        increments: 2–7 such answers a run, the count right at the end). That value is
        lost — a gap, as a retried transaction leaves — and the counter is asked again.
        """
        for _ in range(COUNTER_ATTEMPTS):
            doc = await self._counters.find_one_and_update(
                {"_id": key}, {"$inc": {"n": 1}}, upsert=True,
                return_document=ReturnDocument.AFTER, session=session,
            )
            if doc is not None:
                return int(doc["n"])
            log.warning("counter.answered_without_document", counter=key)
        raise StoreUnavailable(f"counter {key!r}: the store answered without the document "
                               f"{COUNTER_ATTEMPTS} times")

    # --- one card ---------------------------------------------------------------------------

    async def card(self, ref: str, session: Session = None) -> Card | None:
        """A card by id or by number (`sd-12` finds SD-12)."""
        # two indexed lookups, never one `$or`: SecantusDB answers any `$or` by scanning
        # the whole collection (81 ms of store CPU per lookup at 3,000 cards)
        doc = await self._cards.find_one({"_id": ref}, session=session)
        if doc is None:
            doc = await self._cards.find_one({"number": ref.upper()}, session=session)
        return Card.from_document(doc) if doc else None

    async def card_by_request(self, request_id: str, session: Session = None) -> Card | None:
        doc = await self._cards.find_one({"request_id": request_id}, session=session)
        return Card.from_document(doc) if doc else None

    async def board_of_card(self, card_id: str) -> str | None:
        doc = await self._cards.find_one({"_id": card_id}, {"board_id": 1})
        return doc["board_id"] if doc else None

    async def sla_shown(self, card_id: str) -> tuple[str, dict[str, Any]] | None:
        """The card's board and the SLA signals it shows, or None for no such card."""
        doc = await self._cards.find_one({"_id": card_id}, {"board_id": 1, "sla": 1})
        return (doc["board_id"], doc.get("sla") or {}) if doc else None

    async def add_card(self, card: Card, uow: UnitOfWork,
                       first_comment: dict[str, Any] | None = None, *,
                       read_back: bool = True) -> None:
        """A new card; `first_comment` (the request's own text) is written with it, its
        words among the card's search keys from the start (no read and rewrite of the
        card, as a later comment costs). `read_back=False`: nothing in this transaction
        reads the card again, so both go with the transaction's other inserts
        (`uow.insert`: one statement per collection for a group of requests)."""
        doc = card.to_document()
        if first_comment is not None:
            doc["search_comments"] = comment_stems(first_comment.get("text"))
        doc["text_keys"] = card_keys(doc)
        if not read_back:
            uow.insert(self._cards.name, doc)
            if first_comment is not None:
                uow.insert(self._comments.name, first_comment)
            return
        await self._cards.insert_one(doc, session=uow.session)
        if first_comment is not None:
            await self._comments.insert_one(first_comment, session=uow.session)

    async def save_change(self, card: Card, change: CardChange, now: datetime,
                          session: Session = None) -> Card | None:
        """Apply `change` only if the stored card is still at `card.version`; the card after
        it, or None when another writer got there first."""
        update: dict[str, Any] = {"$set": {**change.sets, **card.derived(change, now)},
                                  "$inc": {"version": 1}}
        if TEXT_SOURCES & change.sets.keys():
            update["$set"]["text_keys"] = await self._text_keys_after(card, change.sets, session)
        pushes: dict[str, Any] = {k: {"$each": v} for k, v in change.pushes.items()}
        if change.history:
            pushes["history"] = {"$each": change.history}
        if pushes:
            update["$push"] = pushes
        if change.add_to_set:
            update["$addToSet"] = dict(change.add_to_set)
        doc = await self._cards.find_one_and_update(
            {"_id": card.id, "version": card.version}, update,
            return_document=ReturnDocument.AFTER, session=session)
        return Card.from_document(doc) if doc else None

    async def show(self, card_id: str, change: CardChange, session: Session = None) -> None:
        """A display-only change (no version, no history): SLA clocks."""
        await self._cards.update_one({"_id": card_id}, {"$set": dict(change.sets)},
                                    session=session)

    async def relabel(self, board_id: str, labels: list[dict[str, Any]]) -> int:
        """Cards of a board keep their copy of its labels' names and colours current (what
        their events carry); display-only, no version. Returns how many cards changed."""
        current = {x["id"]: x for x in labels}
        changed = 0
        async for doc in self._cards.find({"board_id": board_id,
                                           "labels.id": {"$in": list(current)}},
                                          {"labels": 1}):
            fresh = [{"id": x["id"], "name": current[x["id"]]["name"],
                      "color": current[x["id"]]["color"]} if x.get("id") in current else x
                     for x in doc.get("labels") or []]
            if fresh != doc.get("labels"):
                await self._cards.update_one({"_id": doc["_id"]}, {"$set": {"labels": fresh}})
                changed += 1
        return changed

    async def current_version(self, card_id: str, session: Session = None) -> int | None:
        doc = await self._cards.find_one({"_id": card_id}, {"version": 1}, session=session)
        return doc["version"] if doc else None

    async def ancestors(self, card_id: str, session: Session = None,
                        depth: int = 50) -> list[str]:
        """Ids above a card via parent links (bounded, so a corrupt loop cannot hang us)."""
        found: list[str] = []
        current = await self._cards.find_one({"_id": card_id}, {"parent_id": 1}, session=session)
        while current and current.get("parent_id") and len(found) < depth:
            found.append(current["parent_id"])
            current = await self._cards.find_one({"_id": current["parent_id"]}, {"parent_id": 1},
                                                session=session)
        return found

    async def children_of(self, parent_id: str, session: Session = None
                          ) -> list[tuple[str, str]]:
        """(number, status category) of each child card, by number."""
        return [(d["number"], d["status_category"]) async for d in self._cards.find(
            {"parent_id": parent_id}, {"number": 1, "status_category": 1}, session=session
        ).sort("number", ASCENDING)]

    # --- cards by place ---------------------------------------------------------------------

    async def count_in_column(self, board_id: str, column_id: str, session: Session = None
                              ) -> int:
        return await self._cards.count_documents({"board_id": board_id, "column_id": column_id},
                                                session=session)

    async def a_card_in_column(self, board_id: str, column_id: str, session: Session = None
                               ) -> str | None:
        """The number of some card in the column (None: it is empty)."""
        doc = await self._cards.find_one({"board_id": board_id, "column_id": column_id},
                                        {"number": 1}, session=session)
        return doc["number"] if doc else None

    async def a_card_outside(self, board_id: str, field_name: str, kept: set[str],
                             session: Session = None) -> str | None:
        """The number of some card of the board whose column/lane (`field_name`) is not kept."""
        doc = await self._cards.find_one({"board_id": board_id, field_name: {"$nin": sorted(kept)}},
                                        {"number": 1}, session=session)
        return doc["number"] if doc else None

    async def open_load(self, agents: list[str], session: Session = None) -> dict[str, int]:
        load = {a: 0 for a in agents}
        async for row in await self._cards.aggregate(
            [{"$match": {"assignee_id": {"$in": agents}, "status_category": {"$ne": "done"}}},
             {"$group": {"_id": "$assignee_id", "n": {"$sum": 1}}}],
            session=session,
        ):
            load[row["_id"]] = row["n"]
        return load

    # --- comments ---------------------------------------------------------------------------

    async def add_comment(self, comment: dict[str, Any], session: Session = None) -> None:
        await self._comments.insert_one(comment, session=session)
        await self._comment_searchable(comment, session)

    async def reply_recorded(self, reply_id: str, session: Session = None) -> bool:
        return await self._comments.find_one({"reply_id": reply_id}, {"_id": 1},
                                            session=session) is not None

    async def comments_of(self, card_id: str) -> list[dict[str, Any]]:
        return [c async for c in self._comments.find({"card_id": card_id})
                .sort([("created_at", ASCENDING), ("_id", ASCENDING)])]

    # --- lists ------------------------------------------------------------------------------

    async def list_cards(self, spec: CardListSpec, limit: int,
                         trace: list[dict[str, Any]] | None = None) -> list[Card]:
        """Up to `limit` cards after the cursor, newest first (keyset pagination), without
        their history.

        Each board is walked back in time windows over an index (board, filter, sort_key),
        doubling the window while the page is short. A store that cannot stop an index walk
        early (SecantusDB sorts every candidate in memory) then still reads only about one
        page of documents per request, however many cards match; MongoDB does the same
        with bounded ranges. A request id is one unique-index lookup.
        """
        if "request_id" in spec.equal:
            found = [c async for c in self._cards.find({"request_id": spec.equal["request_id"]},
                                                      {"history": 0})]
            rows = [c for c in found if c["board_id"] in spec.boards
                    and spec.matches(c)
                    and (not spec.after or c["sort_key"] < spec.after)][:limit]
            return [Card.from_document(c) for c in rows]
        span = await self.card_span()
        if span is None:
            return []
        rows = []
        for board in spec.boards:
            rows += await self._walk_board(spec, board, limit, *span, trace=trace)
        rows.sort(key=lambda c: c["sort_key"], reverse=True)
        return [Card.from_document(c) for c in rows[:limit]]

    async def _walk_board(self, spec: CardListSpec, board: str, limit: int, epoch: str,
                          newest: str, trace: list[dict[str, Any]] | None = None
                          ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        upper = spec.after or "~"  # "~" sorts after every digit: no cursor = from the newest
        upper_at = sort_key_time(spec.after or newest) + timedelta(microseconds=1)
        span = FIRST_WINDOW
        batch = max(limit * 2, 50)
        while len(found) < limit:
            lower_at = upper_at - span
            lower = time_key(lower_at) if time_key(lower_at) > epoch else None
            query = spec.window_query(board, upper, lower)
            if trace is not None:
                trace.append(query)
            got = [c async for c in self._cards.find(query, spec.projection())
                   .sort("sort_key", DESCENDING).limit(batch)]
            found += [c for c in got if spec.matches(c)]
            if len(got) == batch:  # more in this window: continue after the last row
                upper = got[-1]["sort_key"]
                continue
            if lower is None:
                break  # walked back past the oldest card
            # An empty window says matches are sparse here: reach back faster.
            upper, upper_at, span = lower, lower_at, span * (4 if not got else 2)
        return found[:limit]

    async def card_span(self) -> tuple[str, str] | None:
        """Time keys of the oldest and newest card: where list walks stop and start."""
        doc = await self._counters.find_one({"_id": SPAN_KEY})
        return (doc["oldest"], doc["newest"]) if doc else None

    async def note_card_time(self, key: str, session: Session = None) -> None:
        at = key[:20]
        # The span only ever widens ($min/$max), and a list walk with no cursor reads from
        # `newest` minus FIRST_WINDOW up with no upper bound, so a `newest` a little behind
        # the newest card loses nothing. A card within SPAN_SLACK of what this process
        # already wrote skips the write: in a burst every new card used to update this one
        # document. `oldest` is exact (a walk stops there).
        name = self._counters.database.name
        known = _SPANS_WRITTEN.get(name)
        if (session is None and known is not None and known[0] <= at
                and sort_key_time(at) <= sort_key_time(known[1]) + SPAN_SLACK):
            return
        await self._counters.update_one(
            {"_id": SPAN_KEY}, {"$min": {"oldest": at}, "$max": {"newest": at}},
            upsert=True, session=session)
        if session is None:  # a transaction's write may still abort: remember only ours
            _SPANS_WRITTEN[name] = (min(at, known[0]), max(at, known[1])) if known else (at, at)

    async def backfill_list_fields(self) -> int:
        """Give cards written before list keys existed their sort key and search words."""
        n = 0
        async for card in self._cards.find({"sort_key": {"$exists": False}}):
            key = sort_key(card["created_at"], card["_id"])
            await self._cards.update_one({"_id": card["_id"]}, {"$set": {
                "sort_key": key, "search_terms": search_terms(card),
                "sla": card.get("sla") or {}, "sla_state": card.get("sla_state")}})
            await self.note_card_time(key)
            n += 1
        if await self.card_span() is None:  # cards from before the span was kept
            async for card in self._cards.find({}, {"sort_key": 1}):
                await self.note_card_time(card["sort_key"])
        return n

    # --- full-text search (boards.domain.search) ------------------------------------------

    async def _comment_searchable(self, comment: dict[str, Any], session: Session) -> None:
        """A comment's words find its card: its stems join the card's keys (not its version:
        a pending edit stays valid; the same transaction as the comment)."""
        stems = comment_stems(comment.get("text"))
        if not stems:
            return
        doc = await self._cards.find_one({"_id": comment["card_id"]},
                                        {"search_comments": 1, "title": 1, "number": 1,
                                         "requester": 1, "fields": 1}, session=session)
        if doc is None:
            return
        doc["search_comments"] = [*(doc.get("search_comments") or ()), *stems]
        await self._cards.update_one({"_id": doc["_id"]}, {"$set": {
            "search_comments": doc["search_comments"], "text_keys": card_keys(doc)}},
            session=session)

    async def _text_keys_after(self, card: Card, sets: dict[str, Any], session: Session
                               ) -> list[str]:
        """The full-text keys once a change to the card's own words applies (the comments'
        stems read afresh when the card was read without them)."""
        doc = {**card.to_document(), **sets}
        if "search_comments" not in doc:
            stored = await self._cards.find_one({"_id": card.id}, {"search_comments": 1},
                                               session=session)
            doc["search_comments"] = (stored or {}).get("search_comments") or []
        return card_keys(doc)

    async def comments_of_cards(self, card_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The comments of several cards (a search page's), oldest first per card."""
        found: dict[str, list[dict[str, Any]]] = {i: [] for i in card_ids}
        async for c in self._comments.find({"card_id": {"$in": card_ids}}).sort(
                [("created_at", ASCENDING), ("_id", ASCENDING)]):
            found[c["card_id"]].append(c)
        return found

    async def backfill_search(self) -> int:
        """Cards written before full-text search get their comments' stems and new keys
        (once: a marker in the counters says the store is done)."""
        if await self._counters.find_one({"_id": SEARCH_MARKER, "v": SEARCH_VERSION}):
            return 0
        n = 0
        async for card in self._cards.find({}, {"history": 0}):
            stems: list[str] = []
            async for c in self._comments.find({"card_id": card["_id"]}, {"text": 1}):
                stems += comment_stems(c.get("text"))
            card["search_comments"] = stems
            await self._cards.update_one({"_id": card["_id"]}, {"$set": {
                "search_comments": stems, "text_keys": card_keys(card)}})
            n += 1
        await self._counters.update_one({"_id": SEARCH_MARKER},
                                        {"$set": {"v": SEARCH_VERSION}}, upsert=True)
        return n


SEARCH_MARKER, SEARCH_VERSION = "search-keys", 2
