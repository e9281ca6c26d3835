"""Card rules over plain values and stored documents, without I/O.

Numbering, customer-facing status, assignment, search words, cursors and SLA signals;
the `Card` aggregate (boards.domain.card) builds on these.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from desk_contracts.catalog import AssignmentRule, ServiceDefinition, StatusCategory


def format_number(prefix: str, n: int) -> str:
    return f"{prefix.upper()}-{n}"


def column_of(board: Mapping[str, Any], column_id: str) -> Mapping[str, Any]:
    for column in board["columns"]:
        if column["id"] == column_id:
            return column
    raise KeyError(f"board {board['_id']!r} has no column {column_id!r}")


def has_lane(board: Mapping[str, Any], lane_id: str) -> bool:
    return any(lane["id"] == lane_id for lane in board["lanes"])


def customer_status(service: ServiceDefinition | None, category: str, language: str | None = None
                    ) -> str:
    if service is None:
        from desk_contracts.catalog import DEFAULT_STATUS_NAMES

        return DEFAULT_STATUS_NAMES[StatusCategory(category)].get(language or "en")
    return service.status_name(category, language)


def customer_fields(service: ServiceDefinition | None, values: Mapping[str, Any]) -> dict:
    """Only the answers the service marks as shown to the customer."""
    if service is None:
        return {}
    shown = {f.key for f in service.fields if f.show_to_customer}
    return {k: v for k, v in values.items() if k in shown}


def choose_assignee(rule: AssignmentRule, *, turn: int, open_load: Mapping[str, int]
                    ) -> str | None:
    """Pick the responsible agent for a new card.

    `turn` is the service's round-robin counter before this card; `open_load` maps
    each candidate agent to the number of open cards they hold.
    """
    agents = list(rule.agents)
    if rule.kind == "none" or not agents:
        return None
    if rule.kind == "fixed":
        return agents[0]
    if rule.kind == "round_robin":
        return agents[turn % len(agents)]
    # least_loaded: ties go to the agent listed first, so the choice is predictable
    return min(agents, key=lambda a: (open_load.get(a, 0), agents.index(a)))


def history_entry(at: datetime, who: str | None, field: str, before: Any, after: Any) -> dict:
    return {"at": at, "by": who, "field": field, "from": before, "to": after}


# --- listing, search and signals -------------------------------------------------------------

_WORD = re.compile(r"[\w]+", re.UNICODE)
SLA_ALERT_ORDER = {"breached": 2, "warning": 1}


def search_terms(card: Mapping[str, Any]) -> list[str]:
    """Lower-cased words a card is found by (title, number, requester), for `q=`.

    SecantusDB has no text index, so search is by whole words over a multikey field;
    the same field works unchanged on MongoDB.
    """
    requester = card.get("requester") or {}
    parts = [card.get("title") or "", card.get("number") or "", requester.get("name") or "",
             requester.get("email") or ""]
    terms: set[str] = set()
    for part in parts:
        terms.update(w.lower() for w in _WORD.findall(part))
    for whole in (card.get("number"), requester.get("email")):
        if whole:
            terms.add(str(whole).lower())
    return sorted(terms)


def query_terms(q: str) -> list[str]:
    """The words of a search box entry; a card number or e-mail is kept whole."""
    q = q.strip().lower()
    if not q:
        return []
    if re.fullmatch(r"[a-z]+-\d+", q) or re.fullmatch(r"[^@\s]+@[^@\s]+", q):
        return [q]
    return sorted(set(_WORD.findall(q)))


def sort_key(created_at: datetime, card_id: str) -> str:
    """One unique, stable, index-friendly string: newest first by creation, ties by id."""
    return f"{time_key(created_at)}|{card_id}"


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The sort key a cursor points after; ValueError for anything that is not ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValueError("malformed cursor") from None
    if not re.fullmatch(r"\d{20}\|[\w-]{1,64}", raw):
        raise ValueError("malformed cursor")
    return raw


def sla_state(signals: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The worst live alert over a card's SLA targets: breached, warning or None."""
    worst: str | None = None
    for signal in signals.values():
        state = signal.get("state")
        if SLA_ALERT_ORDER.get(state, 0) > SLA_ALERT_ORDER.get(worst, 0):
            worst = state
    return worst


def apply_sla_signal(signals: Mapping[str, Mapping[str, Any]], target: str, state: str,
                     deadline: datetime | None, at: datetime, policy: str
                     ) -> dict[str, dict[str, Any]] | None:
    """The card's signals after one sla.* event, or None when the event is older news.

    Events may arrive out of order; a signal only replaces one that happened earlier.
    """
    current = signals.get(target)
    if current is not None and current.get("at") is not None and _utc(current["at"]) > _utc(at):
        return None
    updated = {k: dict(v) for k, v in signals.items()}
    updated[target] = {"state": state, "deadline": deadline, "at": at, "policy": policy}
    return updated


def apply_sla_clock(signals: Mapping[str, Mapping[str, Any]],
                    faces: Mapping[str, tuple[str, datetime | None]], at: datetime,
                    policy: str) -> dict[str, dict[str, Any]] | None:
    """The card's signals after an sla.clock_changed, or None when it changes nothing.

    `faces` is each target's clock (running/paused/stopped) and deadline as of `at`. A
    clock change updates the deadline and the clock's face; an alert (warning, breached)
    or a met target keeps its state, so the card's colour never goes back. A target
    shown from a later change keeps that (older news arriving late), and a face the card
    already shows is not rewritten — so the other events of one change, which carry the
    same faces, write nothing.
    """
    updated = {k: dict(v) for k, v in signals.items()}
    changed = False
    for target, (clock, deadline) in faces.items():
        current = signals.get(target) or {}
        if current.get("clock_at") is not None and _utc(current["clock_at"]) > _utc(at):
            continue
        if (current.get("clock") == clock and current.get("policy") == policy
                and _stored(current.get("deadline")) == _stored(deadline)):
            continue
        entry = dict(current)
        entry.update({"deadline": deadline, "clock": clock, "clock_at": at, "policy": policy})
        if entry.get("state") not in ("warning", "breached", "met"):
            entry["state"] = clock
            entry.setdefault("at", at)
        updated[target] = entry
        changed = True
    return updated if changed else None


def _stored(value: datetime | None) -> datetime | None:
    """A time as the store keeps it (UTC, milliseconds), to compare with one read back."""
    if value is None:
        return None
    value = _utc(value)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def first_column_of_category(board: Mapping[str, Any], category: str) -> Mapping[str, Any] | None:
    for column in board["columns"]:
        if column["category"] == category:
            return column
    return None


def render_canned(template: str, card: Mapping[str, Any], agent_name: str | None) -> str:
    """Fill a canned response's placeholders; unknown placeholders stay as written."""
    requester = card.get("requester") or {}
    values = {
        "number": card.get("number", ""),
        "title": card.get("title", ""),
        "customer_name": requester.get("name") or requester.get("email") or "",
        "customer_email": requester.get("email") or "",
        "agent_name": agent_name or "",
    }
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), m.group(0))), template)


def would_cycle(parent_id: str, child_id: str, ancestors_of_parent: list[str]) -> bool:
    """Linking child under parent must not make a card its own ancestor."""
    return parent_id == child_id or child_id in ancestors_of_parent


def time_key(at: datetime) -> str:
    """The time prefix of sort keys: comparing these strings compares instants."""
    return at.astimezone(UTC).strftime("%Y%m%d%H%M%S%f")


def sort_key_time(key: str) -> datetime:
    return datetime.strptime(key[:20], "%Y%m%d%H%M%S%f").replace(tzinfo=UTC)


def matches_filters(card: Mapping[str, Any], equal: Mapping[str, Any], terms: list[str]
                    ) -> bool:
    """Whether a card passes a list's equality filters and has every search word."""
    if any(card.get(name) != value for name, value in equal.items()):
        return False
    have = set(card.get("search_terms") or ())
    return all(t in have for t in terms)
