"""A board's own rules for its cards: card types, priorities, what it accepts, closing rule.

A board document may carry `card_types`, `priorities`, `labels`, `custom_fields`,
`accepts` and `parent_waits_for_children`; a board saved before these existed reads as
today's desk: one "request" type, the four priorities, free labels, no typed fields,
accepting every card, parents closing freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from desk_contracts.catalog import FormField

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


def type_name(card_type: Mapping[str, Any], lang: str) -> str:
    """A card type's name as a page in `lang` shows it: in that language, else in English,
    else its id."""
    return _named(card_type.get("name"), lang, card_type["id"])


def priority_name(priority: Mapping[str, Any], lang: str) -> str:
    """A board priority's name in `lang`, else in English, else its id."""
    return _named(priority.get("names"), lang, priority["id"])


def _named(names: Mapping[str, str] | None, lang: str, fallback: str) -> str:
    names = names or {}
    return names.get(lang) or names.get("en") or fallback


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

    # --- labels ------------------------------------------------------------------------------

    @property
    def labels(self) -> list[Mapping[str, Any]]:
        """The board's label list (name and colour each), in the board's order."""
        return list(self.board.get("labels") or ())

    def chosen_labels(self, wanted: list[Mapping[str, Any]]) -> tuple[list[dict], list[str]]:
        """A card's labels from the board's list, by id or by name (any case): (labels as
        the card keeps them, what matched nothing). A board without a list takes any."""
        if not self.labels:
            return [{"name": w["name"], "color": w.get("color") or "#607d8b"}
                    for w in wanted if w.get("name")], [str(w.get("id")) for w in wanted
                                                          if not w.get("name")]
        by_id = {x["id"]: x for x in self.labels}
        by_name = {x["name"].casefold(): x for x in self.labels}
        chosen: dict[str, dict] = {}
        unknown: list[str] = []
        for w in wanted:
            found = by_id.get(w.get("id") or "") or by_name.get((w.get("name") or "").casefold())
            if found is None:
                unknown.append(str(w.get("id") or w.get("name")))
            else:
                chosen[found["id"]] = {"id": found["id"], "name": found["name"],
                                       "color": found["color"]}
        return list(chosen.values()), unknown

    def shown_labels(self, card_labels: list[Mapping[str, Any]]) -> list[dict]:
        """A card's labels as they look now: a board label by its current name and colour
        (a rename shows everywhere); one taken off the board's list, or kept from another
        board or from before the list, as the card has it."""
        by_id = {x["id"]: x for x in self.labels}
        out = []
        for label in card_labels:
            current = by_id.get(label.get("id") or "")
            out.append({"id": current["id"], "name": current["name"],
                        "color": current["color"]} if current else dict(label))
        return out

    # --- custom fields -----------------------------------------------------------------------

    def custom_fields(self, card_type: str | None) -> list[FormField]:
        """The board's typed custom fields that apply to cards of this type."""
        out = []
        for f in self.board.get("custom_fields") or ():
            types = f.get("card_types")
            if not types or card_type in types:
                out.append(FormField.model_validate(
                    {k: v for k, v in f.items() if k != "card_types"}))
        return out

    def field_keys(self) -> set[str]:
        """Keys of every custom field the board defines (for any type)."""
        return {f["key"] for f in self.board.get("custom_fields") or ()}

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
