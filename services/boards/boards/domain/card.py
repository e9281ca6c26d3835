"""The Card aggregate: a card's state and the rules every change to it obeys.

A change is decided here, in memory, as a `CardChange` (fields set, list entries added,
history written); the repository applies it only while the stored card is still at the
version this one was read at, so two writers of one card never both win. Nothing here
does I/O: whatever a rule needs from the store (the cards a column holds, the ancestors
of a card, the agent to assign) is looked up first and handed in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from desk_contracts.catalog import ServiceDefinition
from desk_contracts.events import CardSnapshot, RequestReceived
from desk_runtime.http import Conflict, Invalid

from boards.domain.board import stored_priority_key
from boards.domain.cards import (
    apply_sla_clock,
    apply_sla_signal,
    column_of,
    customer_fields,
    customer_status,
    first_column_of_category,
    history_entry,
    search_terms,
    sla_state,
    sort_key,
    would_cycle,
)

# Changing any of these changes what a card is found by.
SEARCHED = ("title", "requester", "number")


class StaleVersion(Conflict):
    code = "stale_version"


class WipLimitReached(Conflict):
    code = "wip_limit"


@dataclass
class CardChange:
    """One change to one card: applied at once, with a version bump, or not at all."""

    sets: dict[str, Any] = field(default_factory=dict)
    pushes: dict[str, list[Any]] = field(default_factory=dict)
    add_to_set: dict[str, Any] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    touch: bool = True  # a change agents or customers made: `updated_at` moves
    versioned: bool = True  # False: display-only (SLA clocks), no version, no history

    def set(self, name: str, value: Any) -> CardChange:
        self.sets[name] = value
        return self

    def push(self, name: str, value: Any) -> CardChange:
        self.pushes.setdefault(name, []).append(value)
        return self

    def note(self, at: datetime, who: str | None, name: str, before: Any, after: Any
             ) -> CardChange:
        self.history.append(history_entry(at, who, name, before, after))
        return self


@dataclass
class Card:
    """A card as stored (one document); `extra` keeps fields this code does not know."""

    id: str
    number: str
    version: int
    title: str
    board_id: str
    column_id: str
    lane_id: str
    status_category: str
    priority: str
    channel: str
    created_at: datetime
    updated_at: datetime
    type: str = "request"
    service_id: str | None = None
    requester: dict[str, Any] | None = None
    request_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    due_date: str | None = None
    assignee_id: str | None = None
    members: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    checklist: list[dict[str, Any]] = field(default_factory=list)
    parent_id: str | None = None
    links: list[dict[str, Any]] = field(default_factory=list)
    unread_customer_reply: bool = False
    sla: dict[str, dict[str, Any]] = field(default_factory=dict)
    sla_state: str | None = None
    rating: dict[str, Any] | None = None
    created_by: str | None = None
    column_entered_at: datetime | None = None
    sort_key: str = ""
    search_terms: list[str] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    language: str | None = None
    kind: str = "request"  # "task": internal work, no requester
    priority_key: str | None = None  # the board's own priority id (None: `priority` itself)
    labels: list[dict[str, Any]] = field(default_factory=list)
    blockers: list[dict[str, Any]] = field(default_factory=list)
    followers: list[str] = field(default_factory=list)
    sla_policy: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # which stored fields the document had (a list read leaves out the history)
    present: frozenset[str] = field(default_factory=frozenset, compare=False, repr=False)

    # --- a new card ---------------------------------------------------------------------------

    @classmethod
    def from_request(cls, request: RequestReceived, *, card_id: str, number: str,
                     service: ServiceDefinition, board: Mapping[str, Any],
                     assignee: str | None, parent: Card | None, language: str | None,
                     by: str, now: datetime) -> Card:
        """A request's card at version 1 in its service's column and lane: the responsible
        agent a member, a follow-up linked to its parent, the creation in its history."""
        column = column_of(board, service.target.column_id)
        history = [history_entry(now, by, "created", None,
                                 f"{board['_id']}/{column['id']}/{service.target.lane_id}")]
        if assignee:
            history.append(history_entry(now, "system", "assignee_id", None, assignee))
        card = cls(
            id=card_id, number=number, version=1, title=request.subject,
            type=service.card_type or "request",
            service_id=service.id, board_id=board["_id"], column_id=column["id"],
            lane_id=service.target.lane_id, status_category=column["category"],
            priority=str(request.priority or service.default_priority),
            requester=request.requester.model_dump(mode="json"), channel=request.channel,
            request_id=request.request_id, fields=dict(request.fields),
            attachments=[a.model_dump(mode="json") for a in request.attachments],
            due_date=request.due_date, assignee_id=assignee,
            members=[assignee] if assignee else [], tags=[], checklist=[],
            parent_id=parent.id if parent else None,
            links=[parent.link_entry("parent")] if parent else [],
            unread_customer_reply=False, sla={}, sla_state=None, rating=None, created_by=by,
            created_at=now, updated_at=now, column_entered_at=now,
            sort_key=sort_key(now, card_id), history=history, language=language)
        card.search_terms = search_terms(card.to_document())
        return card

    @classmethod
    def new_task(cls, *, card_id: str, number: str, title: str, board: Mapping[str, Any],
                 column_id: str, lane_id: str, card_type: Mapping[str, Any],
                 priority: Mapping[str, Any], fields: Mapping[str, Any],
                 due_date: str | None, assignee: str | None, parent: Card | None, by: str,
                 now: datetime) -> Card:
        """Internal work at version 1: no requester, no service, the type's default fields
        under the given ones; the creator and the assignee take part."""
        column = column_of(board, column_id)
        history = [history_entry(now, by, "created", None,
                                 f"{board['_id']}/{column['id']}/{lane_id}")]
        members = [m for m in dict.fromkeys([by, assignee]) if m and m != "system"]
        card = cls(
            id=card_id, number=number, version=1, title=title, type=card_type["id"],
            kind="task", service_id=None, board_id=board["_id"], column_id=column["id"],
            lane_id=lane_id, status_category=column["category"],
            priority=priority["level"], priority_key=stored_priority_key(priority),
            requester=None,
            channel="agent", request_id=None,
            fields={**(card_type.get("fields") or {}), **fields}, due_date=due_date,
            assignee_id=assignee, members=members, parent_id=parent.id if parent else None,
            links=[parent.link_entry("parent")] if parent else [],
            sla_policy=card_type.get("sla_policy"), created_by=by, created_at=now,
            updated_at=now, column_entered_at=now, sort_key=sort_key(now, card_id),
            history=history)
        card.search_terms = search_terms(card.to_document())
        return card

    # --- the stored document ---------------------------------------------------------------

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Card:
        known = {k: v for k, v in doc.items() if k in _FIELDS}
        if known.get("sla") is None:
            known["sla"] = {}
        for name in ("fields", "attachments", "members", "tags", "checklist", "links",
                     "search_terms", "history", "labels", "blockers", "followers"):
            if known.get(name, ()) is None:  # a stored null reads as empty
                known.pop(name)
        extra = {k: v for k, v in doc.items() if k not in _FIELDS and k != "_id"}
        return cls(id=doc["_id"], **known, extra=extra, present=frozenset(doc))

    def to_document(self) -> dict[str, Any]:
        """The document as stored: `_id` first, the fields the read returned (all for a new
        card), then any this code does not know."""
        out: dict[str, Any] = {"_id": self.id}
        for name in _FIELDS:
            if not self.present or name in self.present:
                out[name] = getattr(self, name)
        return out | self.extra

    @property
    def time_in_column_from(self) -> datetime:
        return self.column_entered_at or self.created_at

    def snapshot(self, service: ServiceDefinition | None) -> CardSnapshot:
        return CardSnapshot(
            card_id=self.id, number=self.number, version=self.version, title=self.title,
            service_id=self.service_id, board_id=self.board_id, column_id=self.column_id,
            lane_id=self.lane_id, status_category=self.status_category,
            customer_status=customer_status(service, self.status_category),
            priority=self.priority, requester=self.requester, channel=self.channel,
            assignee_id=self.assignee_id, request_id=self.request_id,
            parent_id=self.parent_id, customer_fields=customer_fields(service, self.fields),
            created_at=self.created_at, updated_at=self.updated_at, language=self.language,
            kind="task" if self.is_task else "request", card_type=self.type,
            priority_key=self.priority_key or self.priority, labels=tuple(x["name"] for x in self.labels),
            blocked=self.blocked, participants=tuple(self.members),
            sla_policy=self.sla_policy)

    @property
    def is_task(self) -> bool:
        return self.kind == "task"

    @property
    def blocked(self) -> bool:
        return any(b.get("resolved_at") is None for b in self.blockers)

    def link_entry(self, kind: str) -> dict:
        """How another card lists this one (kept denormalised for the board view)."""
        return {"kind": kind, "card_id": self.id, "number": self.number,
                "board_id": self.board_id, "title": self.title}

    # --- optimistic concurrency -----------------------------------------------------------

    def require_version(self, expected: int | None) -> None:
        """An editor's change applies only to the version the editor saw (409 otherwise)."""
        if expected is not None and expected != self.version:
            raise StaleVersion(
                f"card {self.number} is at version {self.version}, not {expected}; "
                "reload it and try again", details={"current_version": self.version})

    def changed_meanwhile(self, current_version: int | None) -> StaleVersion:
        return StaleVersion(f"card {self.number} changed meanwhile; reload it and try again",
                            details={"current_version": current_version})

    def derived(self, change: CardChange, now: datetime) -> dict[str, Any]:
        """What a change also sets: its time and, when words changed, the search terms."""
        sets: dict[str, Any] = {}
        if change.touch and change.versioned:
            sets["updated_at"] = now
        if any(k in change.sets for k in SEARCHED):
            sets["search_terms"] = search_terms({**self.to_document(), **change.sets})
        return sets

    # --- moves ----------------------------------------------------------------------------

    def move(self, board: Mapping[str, Any], column_id: str, lane_id: str, *, by: str,
             now: datetime, held_in_column: int | None) -> CardChange | None:
        """Move to another column/lane; None when it is where it is asked to go.

        `held_in_column` is how many cards the target column holds now (None: the card
        stays in its column, no WIP limit applies).
        """
        column = column_of(board, column_id)
        if column_id == self.column_id and lane_id == self.lane_id:
            return None
        change = CardChange().set("lane_id", lane_id)
        if column_id != self.column_id:
            limit = column.get("wip_limit")
            if limit and held_in_column is not None and held_in_column >= limit:
                raise WipLimitReached(
                    f"column {column['name']!r} already holds its limit of {limit} cards",
                    details={"column_id": column["id"], "wip_limit": limit})
            change.sets |= {"column_id": column_id, "status_category": column["category"],
                            "column_entered_at": now}
            change.note(now, by, "column_id", self.column_id, column_id)
        if lane_id != self.lane_id:
            change.note(now, by, "lane_id", self.lane_id, lane_id)
        return change

    def wip_applies(self, board: Mapping[str, Any], column_id: str) -> bool:
        """Whether moving to `column_id` must count the column's cards first."""
        return column_id != self.column_id and bool(column_of(board, column_id).get("wip_limit"))

    def closing_column(self, board: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """Where an auto-close takes the card: the board's first done column."""
        return first_column_of_category(board, "done") if board else None

    @property
    def waiting_for_customer(self) -> bool:
        return self.status_category == "waiting_for_customer"

    # --- assignment -----------------------------------------------------------------------

    def assign(self, assignee_id: str | None, agent: Mapping[str, Any] | None, *, by: str,
               now: datetime) -> CardChange | None:
        """Give the card to an agent (an active member of its board, or an admin) or to
        nobody; None when it already is theirs. `agent` is the assignee's record."""
        if self.assignee_id == assignee_id:
            return None
        if assignee_id is not None:
            if agent is None:
                raise Invalid(f"no active agent {assignee_id!r}")
            if agent.get("role") != "admin" and self.board_id not in agent.get("boards", []):
                raise Invalid(f"agent {assignee_id!r} is not a member of board "
                              f"{self.board_id!r}")
        change = CardChange().set("assignee_id", assignee_id)
        if assignee_id is not None:
            change.add_to_set["members"] = assignee_id
        return change.note(now, by, "assignee_id", self.assignee_id, assignee_id)

    # --- edits ----------------------------------------------------------------------------

    def edit(self, changes: Mapping[str, Any], *, by: str, now: datetime) -> CardChange | None:
        """Set the given fields (already validated); None when nothing differs."""
        current = self.to_document()
        sets = {k: v for k, v in changes.items() if current.get(k) != v}
        if not sets:
            return None
        change = CardChange(sets=dict(sets))
        for key, value in sets.items():
            change.note(now, by, key, current.get(key), value)
        return change

    def merged_fields(self, answers: Mapping[str, Any]) -> dict[str, Any]:
        """Custom fields after an edit: given answers replace, a None answer removes."""
        merged = {**self.fields, **answers}
        return {k: v for k, v in merged.items() if v is not None}

    # --- the customer's side --------------------------------------------------------------

    def customer_replied(self, now: datetime) -> CardChange:
        return CardChange().set("unread_customer_reply", True).note(
            now, "customer", "unread_customer_reply", self.unread_customer_reply, True)

    def mark_read(self, *, by: str, now: datetime) -> CardChange | None:
        if not self.unread_customer_reply:
            return None
        return CardChange().set("unread_customer_reply", False).note(
            now, by, "unread_customer_reply", True, False)

    def rate(self, *, score: int, comment: str | None, rated_at: datetime,
             rated_by: str | None, now: datetime) -> CardChange | None:
        """Keep the customer's rating; None when a newer one is on the card already."""
        before = self.rating
        if before and before.get("rated_at") and _aware(before["rated_at"]) > rated_at:
            return None
        change = CardChange().set("rating", {"score": score, "comment": comment,
                                             "rated_at": rated_at, "rated_by": rated_by})
        change.note(now, "customer", "rating", before.get("score") if before else None, score)
        if comment:
            change.note(now, "customer", "rating_comment", None, comment)
        return change

    def commented(self, *, by: str, visibility: str, comment_id: str, now: datetime
                  ) -> CardChange:
        # The history says a note was added, never what it says.
        return CardChange().note(now, by, f"comment.{visibility}", None, comment_id)

    # --- links ----------------------------------------------------------------------------

    def adopt(self, child: Card, *, by: str, now: datetime, ancestors: list[str]
              ) -> tuple[CardChange, CardChange] | None:
        """Make `child` a child of this card: (the child's change, this card's change);
        None when it already is. `ancestors` are the ids above this card."""
        if child.parent_id == self.id:
            return None
        if child.parent_id:
            raise Conflict(f"{child.number} already has a parent; unlink it first")
        if would_cycle(self.id, child.id, ancestors):
            raise Conflict("a card cannot become its own ancestor")
        child_change = CardChange().set("parent_id", self.id).push(
            "links", self.link_entry("parent")).note(now, by, "parent_id", None, self.number)
        return child_change, self.child_added(child, by=by, now=now)

    def child_added(self, child: Card, *, by: str, now: datetime) -> CardChange:
        return CardChange().push("links", child.link_entry("child")).note(
            now, by, "links", None, f"child {child.number}")

    # --- another board --------------------------------------------------------------------

    def transfer(self, board: Mapping[str, Any], column_id: str, lane_id: str, *, by: str,
                 now: datetime, held_in_column: int | None) -> CardChange:
        """Move to another board's column/lane; history, links, comments and the SLA
        record stay with the card (its id does not change)."""
        column = column_of(board, column_id)
        limit = column.get("wip_limit")
        if limit and held_in_column is not None and held_in_column >= limit:
            raise WipLimitReached(
                f"column {column['name']!r} already holds its limit of {limit} cards",
                details={"column_id": column["id"], "wip_limit": limit})
        change = CardChange(sets={"board_id": board["_id"], "column_id": column_id,
                                  "lane_id": lane_id, "status_category": column["category"],
                                  "column_entered_at": now})
        change.note(now, by, "board_id", self.board_id, board["_id"])
        change.note(now, by, "column_id", self.column_id, column_id)
        if lane_id != self.lane_id:
            change.note(now, by, "lane_id", self.lane_id, lane_id)
        return change

    # --- blockers ---------------------------------------------------------------------------

    def block(self, *, blocker_id: str, reason: str | None, by_card: Card | None, by: str,
              now: datetime) -> CardChange:
        """Held up by another card or by a reason (one of them)."""
        if by_card is not None and by_card.id == self.id:
            raise Invalid("a card cannot block itself")
        entry = {"id": blocker_id, "reason": reason, "since": now, "by": by,
                 "resolved_at": None, "card_id": by_card.id if by_card else None,
                 "card_number": by_card.number if by_card else None}
        what = by_card.number if by_card else reason
        return CardChange().push("blockers", entry).note(now, by, "blocked", None, what)

    def unblock(self, blocker_id: str, *, by: str, now: datetime) -> CardChange:
        found = next((b for b in self.blockers if b["id"] == blocker_id), None)
        if found is None or found.get("resolved_at") is not None:
            raise Invalid(f"no open blocker {blocker_id!r} on {self.number}")
        blockers = [dict(b, resolved_at=now) if b["id"] == blocker_id else b
                    for b in self.blockers]
        return CardChange().set("blockers", blockers).note(
            now, by, "unblocked", found.get("card_number") or found.get("reason"), None)

    # --- people -----------------------------------------------------------------------------

    def participants_set(self, members: list[str], *, by: str, now: datetime
                         ) -> CardChange | None:
        """The agents taking part (the assignee always stays one)."""
        wanted = list(dict.fromkeys(members))
        if self.assignee_id and self.assignee_id not in wanted:
            raise Invalid(f"{self.assignee_id!r} is the assignee and stays a participant")
        if wanted == self.members:
            return None
        return CardChange().set("members", wanted).note(now, by, "members", self.members,
                                                        wanted)

    def follow(self, agent_id: str, on: bool, *, now: datetime) -> CardChange | None:
        if (agent_id in self.followers) == on:
            return None
        followers = ([*self.followers, agent_id] if on
                     else [f for f in self.followers if f != agent_id])
        return CardChange(touch=False).set("followers", followers).note(
            now, agent_id, "followers", None if on else agent_id, agent_id if on else None)

    def change_requester(self, requester: Mapping[str, Any], *, by: str, now: datetime
                         ) -> CardChange | None:
        """A request filed on someone's behalf gets its real author; tasks have none."""
        if self.is_task:
            raise Invalid("a task has no requester; only a request's author can change")
        if self.requester == dict(requester):
            return None
        before = (self.requester or {}).get("email") or (self.requester or {}).get("name")
        return CardChange().set("requester", dict(requester)).note(
            now, by, "requester", before, requester.get("email") or requester.get("name"))

    # --- SLA display ----------------------------------------------------------------------

    def sla_signal(self, target: str, state: str, deadline: datetime | None, at: datetime,
                   policy: str, *, now: datetime) -> CardChange | None:
        """An sla.warning/breached/met shown on the card; None for older news. A version
        and history entry, but `updated_at` stays (sla, not a person, changed it)."""
        signals = apply_sla_signal(self.sla, target, state, deadline, at, policy)
        if signals is None:
            return None
        before = self.sla.get(target, {}).get("state")
        change = CardChange(touch=False).set("sla", signals).set("sla_state", sla_state(signals))
        return change.note(now, "sla", f"sla.{target}", before, state)

    def sla_clock(self, faces: Mapping[str, tuple[str, datetime | None]], at: datetime,
                  policy: str) -> CardChange | None:
        """Time left to show for each target in `faces` (clock, deadline); no version bump
        (an agent's pending edit stays valid), no history (the SLA record itself is the
        history); None when it shows nothing new (older news, or already shown)."""
        signals = apply_sla_clock(self.sla, faces, at, policy)
        if signals is None:
            return None
        change = CardChange(touch=False, versioned=False)
        for target in faces:
            if signals.get(target) != self.sla.get(target):
                change.set(f"sla.{target}", signals[target])
        return change.set("sla_state", sla_state(signals))


# The stored fields a Card has an attribute for (`_id` is `id`).
_FIELDS = tuple(f.name for f in dataclasses.fields(Card)
                if f.name not in ("id", "extra", "present"))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
