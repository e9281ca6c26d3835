"""A board's own rules for its cards: card types, priorities, what it accepts, closing rule.

A board document may carry `card_types`, `priorities`, `accepts` and
`parent_waits_for_children`; a board saved before these existed reads as today's desk:
one "request" type, the four priorities, accepting every card, parents closing freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The four priorities every board had before they were configurable (the demo keeps them).
DEFAULT_PRIORITIES: tuple[dict[str, Any], ...] = (
    {"id": "low", "names": {"en": "Low", "ru": "Низкий"}, "color": "#2e7d32", "level": "low"},
    {"id": "medium", "names": {"en": "Medium", "ru": "Средний"}, "color": "#f9a825",
     "level": "medium"},
    {"id": "high", "names": {"en": "High", "ru": "Высокий"}, "color": "#ef6c00",
     "level": "high"},
    {"id": "critical", "names": {"en": "Critical", "ru": "Критический"}, "color": "#c62828",
     "level": "critical"},
)

DEFAULT_CARD_TYPES: tuple[dict[str, Any], ...] = (
    {"id": "request", "name": {"en": "Request", "ru": "Запрос"}, "color": "#1565c0",
     "customer_request": True, "fields": {}, "sla_policy": None},
    {"id": "task", "name": {"en": "Task", "ru": "Задача"}, "color": "#6a1b9a",
     "customer_request": False, "fields": {}, "sla_policy": None},
)


class TransferRefused(Exception):
    """The target board's rules keep the card out; the message says which rule."""

    def __init__(self, reason: str, code: str):
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class BoardRules:
    board: Mapping[str, Any]

    @property
    def id(self) -> str:
        return self.board["_id"]

    # --- card types ------------------------------------------------------------------------

    @property
    def card_types(self) -> list[Mapping[str, Any]]:
        return list(self.board.get("card_types") or DEFAULT_CARD_TYPES)

    def card_type(self, type_id: str | None) -> Mapping[str, Any] | None:
        return next((t for t in self.card_types if t["id"] == type_id), None)

    def task_type(self) -> Mapping[str, Any]:
        """The type a new task gets when none is asked for: the first internal one."""
        internal = [t for t in self.card_types if not t.get("customer_request")]
        return internal[0] if internal else {"id": "task", "customer_request": False,
                                              "fields": {}, "sla_policy": None}

    # --- priorities --------------------------------------------------------------------------

    @property
    def priorities(self) -> list[Mapping[str, Any]]:
        """In the board's order (the first is the lowest)."""
        return list(self.board.get("priorities") or DEFAULT_PRIORITIES)

    def priority(self, key: str | None) -> Mapping[str, Any] | None:
        return next((p for p in self.priorities if p["id"] == key), None)

    def priority_for_level(self, level: str) -> Mapping[str, Any] | None:
        return next((p for p in self.priorities if p["level"] == level), None)

    # --- moves between boards ----------------------------------------------------------------

    def refusal(self, *, card_type: str | None, kind: str, from_board: str) -> None:
        """Raise TransferRefused when this board does not take such a card."""
        accepts = self.board.get("accepts") or {}
        boards = accepts.get("from_boards")
        if boards is not None and from_board not in boards:
            raise TransferRefused(
                f"board {self.id!r} accepts cards only from {', '.join(boards) or 'no board'}",
                "board_not_accepted")
        types = accepts.get("types")
        if types is not None and card_type not in types:
            raise TransferRefused(
                f"board {self.id!r} accepts only cards of type {', '.join(types) or 'none'}; "
                f"this one is {card_type!r}", "type_not_accepted")
        if kind == "request" and accepts.get("requests") is False:
            raise TransferRefused(f"board {self.id!r} takes internal tasks only, not "
                                  "customer requests", "requests_not_accepted")

    # --- closing -----------------------------------------------------------------------------

    @property
    def parent_waits_for_children(self) -> bool:
        return bool(self.board.get("parent_waits_for_children"))


def stored_priority_key(priority: Mapping[str, Any]) -> str | None:
    """What a card keeps of its board priority: its id, or None when the id is the level
    itself (today's four), so a card of a board without own priorities is as it was."""
    return None if priority["id"] == priority["level"] else priority["id"]


def child_progress(categories: list[str]) -> dict[str, int]:
    """How far a parent's children are: done of total."""
    return {"done": sum(1 for c in categories if c == "done"), "total": len(categories)}
