"""Automation as data, without I/O: categories below a service, rules ("when <trigger>
[if <conditions>] then <actions>"), checklist templates and request templates.

Everything here is plain values in, plain values out: the application module looks up
what a decision needs (the card, the board, the rules) and carries out what it returns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
from typing import Any

from desk_contracts.catalog import AssignmentRule, Priority, ServiceDefinition

from boards.domain.board import DEFAULT_CARD_TYPES, DEFAULT_PRIORITIES

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MAX_CATEGORY_LEVELS = 4
# How many rule runs may follow from one another's effects before the chain is stopped:
# a rule whose actions trigger a rule whose actions trigger ... is a loop past this.
MAX_DEPTH = 5


class AutomationInvalid(ValueError):
    """A definition that cannot be kept: one message per offending field."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _slug(value: Any) -> bool:
    return isinstance(value, str) and bool(SLUG.match(value))


# --- categories -----------------------------------------------------------------------------

# What a category may decide for the card of a request that falls in it (each optional;
# a deeper category overrides its parents, unset settings are inherited).
CATEGORY_SETTINGS = ("board_id", "column_id", "lane_id", "card_type", "priority",
                     "sla_policy", "assignment", "language")


@dataclass(frozen=True)
class Category:
    """One node of a service's category tree: the answer `value` to the select `field`.

    A level-1 category answers the service's first select; its children answer a select
    the form shows only for that answer, and so on down to four levels.
    """

    id: str
    service_id: str
    field: str
    value: str
    name: str
    parent_id: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Category:
        return cls(id=doc["_id"], service_id=doc["service_id"], field=doc["field"],
                   value=doc["value"], name=doc.get("name") or doc["value"],
                   parent_id=doc.get("parent_id"),
                   settings={k: doc[k] for k in CATEGORY_SETTINGS if doc.get(k) is not None})


@dataclass(frozen=True)
class Routing:
    """What a request's category decided: the deepest match and the merged settings."""

    category_id: str
    path: tuple[str, ...]  # ids from the top level down to the matched category
    names: tuple[str, ...]
    settings: Mapping[str, Any]


def match_category(categories: Sequence[Category], service_id: str,
                   answers: Mapping[str, Any]) -> Routing | None:
    """The deepest category whose chain of answers the request gave (None: no level-1
    answer matched). Settings merge top-down: a child's own setting wins."""
    mine = [c for c in categories if c.service_id == service_id]
    parent: str | None = None
    path: list[Category] = []
    while len(path) < MAX_CATEGORY_LEVELS:
        found = next((c for c in mine if c.parent_id == parent
                      and _answer_is(answers.get(c.field), c.value)), None)
        if found is None:
            break
        path.append(found)
        parent = found.id
    if not path:
        return None
    merged: dict[str, Any] = {}
    for category in path:
        merged.update(category.settings)
    return Routing(category_id=path[-1].id, path=tuple(c.id for c in path),
                   names=tuple(c.name for c in path), settings=merged)


def _answer_is(answer: Any, value: str) -> bool:
    if isinstance(answer, list):
        return value in [str(a) for a in answer]
    return answer is not None and str(answer) == value


def routed_service(service: ServiceDefinition, routing: Routing | None) -> ServiceDefinition:
    """The service as a request in this category sees it: its target, type, default
    priority, SLA policy and assignment replaced where the category says otherwise."""
    if routing is None:
        return service
    s = routing.settings
    update: dict[str, Any] = {}
    if any(k in s for k in ("board_id", "column_id", "lane_id")):
        update["target"] = service.target.model_copy(update={
            "board_id": s.get("board_id", service.target.board_id),
            "column_id": s.get("column_id", service.target.column_id),
            "lane_id": s.get("lane_id", service.target.lane_id)})
    if "card_type" in s:
        update["card_type"] = s["card_type"]
    if "priority" in s:
        update["default_priority"] = Priority(s["priority"])
    if "sla_policy" in s:
        update["sla_policy"] = s["sla_policy"]
    if "assignment" in s:
        update["assignment"] = AssignmentRule.model_validate(s["assignment"])
    return service.model_copy(update=update)


def validate_category(doc: Mapping[str, Any], *, service: ServiceDefinition | None,
                      parent: Mapping[str, Any] | None, parent_level: int,
                      boards: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A category as stored, or AutomationInvalid naming each wrong field.

    The answer must be an option of a select field of the service, and a child's field
    must be one the form shows only under its parent's answer (the dependent selects).
    """
    errors: dict[str, str] = {}
    if not _slug(doc.get("id")):
        errors["id"] = "lower-case letters, digits and dashes"
    if service is None:
        errors["service_id"] = "no such service"
    fields = {f.key: f for f in service.fields} if service else {}
    key, value = doc.get("field"), doc.get("value")
    form_field = fields.get(key) if isinstance(key, str) else None
    if service is not None:
        if form_field is None or form_field.type.value not in ("select", "multiselect"):
            errors["field"] = "not a select field of the service"
        elif value not in {o.value for o in form_field.options}:
            errors["value"] = f"not an option of {key!r}"
    if doc.get("parent_id") is not None:
        if parent is None:
            errors["parent_id"] = "no such category"
        elif parent.get("service_id") != doc.get("service_id"):
            errors["parent_id"] = "a category of another service"
        elif parent_level + 1 > MAX_CATEGORY_LEVELS:
            errors["parent_id"] = f"categories go {MAX_CATEGORY_LEVELS} levels deep at most"
        elif form_field is not None and not (
                form_field.condition is not None
                and form_field.condition.field == parent.get("field")
                and parent.get("value") in form_field.condition.in_):
            errors["field"] = (f"the form shows {key!r} only under another answer than "
                               f"{parent.get('field')}={parent.get('value')}")
    elif form_field is not None and form_field.condition is not None:
        errors["field"] = "a top-level category answers a field shown unconditionally"
    board_id = doc.get("board_id") or (service.target.board_id if service else None)
    board = boards.get(board_id) if board_id else None
    if doc.get("board_id") is not None and board is None:
        errors["board_id"] = "no such board"
    if board is not None:
        if doc.get("column_id") is not None and doc["column_id"] not in {
                c["id"] for c in board["columns"]}:
            errors["column_id"] = f"board {board_id!r} has no such column"
        if doc.get("lane_id") is not None and doc["lane_id"] not in {
                x["id"] for x in board["lanes"]}:
            errors["lane_id"] = f"board {board_id!r} has no such lane"
        if doc.get("card_type") is not None and doc["card_type"] not in {
                t["id"] for t in _types(board) if t.get("customer_request")}:
            errors["card_type"] = f"board {board_id!r} has no such request type"
    if doc.get("board_id") is not None and doc.get("column_id") is None:
        errors.setdefault("column_id", "a category that names a board names its column too")
    if doc.get("board_id") is not None and doc.get("lane_id") is None:
        errors.setdefault("lane_id", "a category that names a board names its lane too")
    if doc.get("priority") is not None and doc["priority"] not in {p.value for p in Priority}:
        errors["priority"] = "one of low, medium, high, critical"
    if doc.get("language") is not None and doc["language"] not in ("en", "ru"):
        errors["language"] = "en or ru"
    if doc.get("assignment") is not None:
        try:
            AssignmentRule.model_validate(doc["assignment"])
        except ValueError:
            errors["assignment"] = "kind none/fixed/round_robin/least_loaded and its agents"
    if doc.get("sla_policy") is not None and not _slug(doc["sla_policy"]):
        errors["sla_policy"] = "a policy id"
    if errors:
        raise AutomationInvalid(errors)
    out = {"_id": doc["id"], "service_id": doc["service_id"], "field": key, "value": value,
           "name": _text(doc.get("name")) or value, "parent_id": doc.get("parent_id")}
    out.update({k: doc[k] for k in CATEGORY_SETTINGS if doc.get(k) is not None})
    return out


def _types(board: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    return board.get("card_types") or DEFAULT_CARD_TYPES


def _priorities(board: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    return board.get("priorities") or DEFAULT_PRIORITIES


# --- rules: triggers --------------------------------------------------------------------------

TRIGGERS = ("card_created", "card_moved", "field_changed", "assigned", "customer_replied",
            "sla_warning", "sla_breached", "time_in_column", "scheduled")
# Triggers no card event carries: boards' automation clock finds the cards they apply to.
TIMED = ("time_in_column", "scheduled")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Happening:
    """What happened to a card, as rules see it (built from one bus event)."""

    trigger: str
    card_id: str
    from_column: str | None = None
    to_column: str | None = None
    to_category: str | None = None  # the column's status category after a move
    changed: tuple[str, ...] = ()
    assignee_id: str | None = None
    sla_target: str | None = None


def trigger_matches(trigger: Mapping[str, Any], happening: Happening) -> bool:
    if trigger.get("type") != happening.trigger:
        return False
    if happening.trigger == "card_moved":
        if trigger.get("to_column") and trigger["to_column"] != happening.to_column:
            return False
        if trigger.get("from_column") and trigger["from_column"] != happening.from_column:
            return False
        if trigger.get("to_category") and trigger["to_category"] != happening.to_category:
            return False
    if happening.trigger == "field_changed" and trigger.get("field") and \
            trigger["field"] not in happening.changed:
        return False
    if happening.trigger in ("sla_warning", "sla_breached") and trigger.get("target") and \
            trigger["target"] != happening.sla_target:
        return False
    if happening.trigger == "time_in_column" and trigger.get("column_id") != happening.to_column:
        return False
    return True


def occurrence(trigger: Mapping[str, Any], now: datetime) -> datetime | None:
    """The latest time a scheduled trigger was due, within the last day (UTC); None when
    it was not due in that day. `at` is HH:MM on `days` in the trigger's time zone."""
    zone = ZoneInfo(trigger.get("timezone") or "UTC")
    hour, minute = (int(x) for x in trigger["at"].split(":"))
    local = now.astimezone(zone)
    for back in (0, 1):
        day = (local - timedelta(days=back)).date()
        if DAYS[day.weekday()] not in (trigger.get("days") or DAYS):
            continue
        due = datetime.combine(day, time(hour, minute), tzinfo=zone)
        if due <= local:
            return due.astimezone(UTC)
    return None


def overdue_since(trigger: Mapping[str, Any], now: datetime) -> datetime:
    """A time-in-column trigger: cards that entered the column before this are due."""
    return now - timedelta(minutes=float(trigger["minutes"]))


# --- rules: conditions ------------------------------------------------------------------------

ATTRIBUTES = ("service", "category", "type", "priority", "lane", "column", "board", "kind",
              "organisation", "label", "assignee")
OPERATORS = ("in", "not_in", "is_set", "not_set")


def card_facts(card: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each attribute a condition may ask about, as the list of values the card has."""
    requester = card.get("requester") or {}
    email = requester.get("email") or ""
    organisation = requester.get("organisation") or (email.rpartition("@")[2] if email else None)
    facts: dict[str, list[str]] = {
        "service": [card["service_id"]] if card.get("service_id") else [],
        "category": list(card.get("category_path") or []),
        "type": [card.get("type") or "request"],
        "priority": [p for p in (card.get("priority"), card.get("priority_key")) if p],
        "lane": [card.get("lane_id")] if card.get("lane_id") else [],
        "column": [card.get("column_id")] if card.get("column_id") else [],
        "board": [card.get("board_id")] if card.get("board_id") else [],
        "kind": [card.get("kind") or "request"],
        "organisation": [organisation.lower()] if organisation else [],
        "label": [x["name"] for x in card.get("labels") or []],
        "assignee": [card["assignee_id"]] if card.get("assignee_id") else [],
    }
    for key, value in (card.get("fields") or {}).items():
        values = value if isinstance(value, list) else [value]
        facts[f"field:{key}"] = [_plain(v) for v in values if v is not None and v != ""]
    return facts


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def condition_holds(condition: Mapping[str, Any], facts: Mapping[str, list[str]]) -> bool:
    have = facts.get(condition["attribute"], [])
    if condition["attribute"] == "organisation":
        have = [h.lower() for h in have]
        wanted = {str(v).lower() for v in condition.get("values") or ()}
    else:
        wanted = {str(v) for v in condition.get("values") or ()}
    op = condition.get("op", "in")
    if op == "is_set":
        return bool(have)
    if op == "not_set":
        return not have
    hit = any(h in wanted for h in have)
    return hit if op == "in" else not hit


def describe(condition: Mapping[str, Any]) -> str:
    op = condition.get("op", "in")
    if op in ("is_set", "not_set"):
        return f"{condition['attribute']} {op.replace('_', ' ')}"
    values = ", ".join(str(v) for v in condition.get("values") or ())
    return f"{condition['attribute']} {op.replace('_', ' ')} [{values}]"


# --- rules: actions ---------------------------------------------------------------------------

ACTIONS = ("set_type", "set_priority", "set_assignee", "set_lane", "set_column", "add_labels",
           "remove_labels", "set_due_date", "add_checklist", "create_children", "reply",
           "note", "notify", "move_parent_when_children_done", "start_template")

# what each action needs, besides `type`
_ACTION_NEEDS: dict[str, tuple[str, ...]] = {
    "set_type": ("value",), "set_priority": ("value",), "set_assignee": ("assignment",),
    "set_lane": ("lane_id",), "set_column": ("column_id",), "add_labels": ("labels",),
    "remove_labels": ("labels",), "set_due_date": ("days",),
    "add_checklist": ("checklist_template_id",), "create_children": ("children",),
    "reply": ("text_or_canned",), "note": ("text",), "notify": ("agents",),
    "move_parent_when_children_done": ("column_id",),
    "start_template": ("request_template_id",),
}


@dataclass(frozen=True)
class Decision:
    """One rule's verdict on one happening: run its actions, or why it was skipped."""

    rule_id: str
    rule_name: str
    version: int
    run: bool
    reason: str = ""
    actions: tuple[Mapping[str, Any], ...] = ()


def in_scope(rule: Mapping[str, Any], card: Mapping[str, Any]) -> bool:
    return rule.get("board_id") in (None, card.get("board_id"))


def evaluate(rules: Iterable[Mapping[str, Any]], happening: Happening,
             card: Mapping[str, Any]) -> list[Decision]:
    """Every active rule of the card's board whose trigger is this happening, in the
    rules' order: run (its actions) or skipped (the first condition that failed).
    Rules whose trigger is something else are not runs and are left out."""
    facts: dict[str, list[str]] | None = None
    decisions: list[Decision] = []
    for rule in sorted(rules, key=lambda r: (r.get("order", 0), r["_id"])):
        if not rule.get("active", True) or not in_scope(rule, card):
            continue
        if not trigger_matches(rule["trigger"], happening):
            continue
        if facts is None:
            facts = card_facts(card)
        failed = next((c for c in rule.get("conditions") or () if not condition_holds(c, facts)),
                      None)
        common = {"rule_id": rule["_id"], "rule_name": rule.get("name") or rule["_id"],
                  "version": int(rule.get("version", 1))}
        if failed is not None:
            decisions.append(Decision(run=False, reason=f"condition not met: {describe(failed)}",
                                      **common))
        else:
            decisions.append(Decision(run=True, actions=tuple(rule.get("actions") or ()),
                                      **common))
    return decisions


def due_date_after(days: int, today: date) -> str:
    return (today + timedelta(days=int(days))).isoformat()


def label_change(current: Sequence[Mapping[str, Any]], action: Mapping[str, Any]
                 ) -> list[dict[str, Any]]:
    """Labels after adding (with their colours) or removing names; order kept."""
    names = [x if isinstance(x, str) else x["name"] for x in action["labels"]]
    if action["type"] == "remove_labels":
        return [dict(x) for x in current if x["name"] not in names]
    have = {x["name"] for x in current}
    added = [{"name": n, "color": action.get("color", "#607d8b")} for n in names if n not in have]
    return [dict(x) for x in current] + added


def checklist_after(current: Sequence[Mapping[str, Any]], template: Mapping[str, Any]
                    ) -> list[dict[str, Any]] | None:
    """The card's checklist with the template's items added once (None: all there)."""
    have = {x.get("text") for x in current}
    new = [{"text": item, "done": False} for item in template["items"] if item not in have]
    return [dict(x) for x in current] + new if new else None


def checklist_progress(items: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(done, total): what the tile shows as x/y."""
    return sum(1 for x in items if x.get("done")), len(items)


# --- validation of a rule ---------------------------------------------------------------------

def validate_rule(doc: Mapping[str, Any], *, boards: Mapping[str, Mapping[str, Any]],
                  services: set[str], categories: set[str], checklists: set[str],
                  agents: set[str], canned: set[str], templates: frozenset[str] = frozenset()
                  ) -> dict[str, Any]:
    """A rule as stored (without its version), or AutomationInvalid naming each wrong
    field by its path (`trigger.type`, `conditions[0].attribute`, `actions[1].column_id`)."""
    errors: dict[str, str] = {}
    if not _slug(doc.get("id")):
        errors["id"] = "lower-case letters, digits and dashes"
    if not _text(doc.get("name")):
        errors["name"] = "a rule needs a name"
    board_id = doc.get("board_id")
    board = boards.get(board_id) if board_id else None
    if board_id is not None and board is None:
        errors["board_id"] = "no such board"
    columns = {c["id"] for c in board["columns"]} if board else None
    lanes = {x["id"] for x in board["lanes"]} if board else None

    trigger = doc.get("trigger")
    if not isinstance(trigger, Mapping) or trigger.get("type") not in TRIGGERS:
        errors["trigger.type"] = f"one of {', '.join(TRIGGERS)}"
    else:
        for key in ("to_column", "from_column"):
            if trigger.get(key) is not None:
                if trigger["type"] != "card_moved":
                    errors[f"trigger.{key}"] = "only a card_moved trigger names columns"
                elif columns is not None and trigger[key] not in columns:
                    errors[f"trigger.{key}"] = f"board {board_id!r} has no such column"
        if trigger.get("to_category") is not None and trigger["to_category"] not in (
                "queued", "in_progress", "waiting_for_customer", "paused", "done"):
            errors["trigger.to_category"] = "a column category"
        if trigger["type"] == "field_changed" and trigger.get("field") is not None and \
                not isinstance(trigger["field"], str):
            errors["trigger.field"] = "the name of a card field"
        if trigger["type"] in TIMED and board is None:
            errors["board_id"] = "a timed rule belongs to a board"
        if trigger["type"] == "time_in_column":
            if columns is not None and trigger.get("column_id") not in columns:
                errors["trigger.column_id"] = f"a column of board {board_id!r}"
            minutes = trigger.get("minutes")
            if isinstance(minutes, bool) or not isinstance(minutes, int | float) or \
                    not 0 < minutes <= 525_600:
                errors["trigger.minutes"] = "minutes in the column, more than 0"
        if trigger["type"] == "scheduled":
            at = trigger.get("at")
            if not isinstance(at, str) or not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", at):
                errors["trigger.at"] = "a time of day, HH:MM"
            days = trigger.get("days")
            if days is not None and (not isinstance(days, list) or not days
                                     or any(d not in DAYS for d in days)):
                errors["trigger.days"] = f"some of {', '.join(DAYS)}"
            zone = trigger.get("timezone") or (board or {}).get("timezone")
            try:
                ZoneInfo(zone or "UTC")
            except (ZoneInfoNotFoundError, ValueError):
                errors["trigger.timezone"] = "a time zone such as Europe/Moscow"

    conditions = doc.get("conditions") or []
    if not isinstance(conditions, list):
        errors["conditions"] = "a list"
        conditions = []
    for i, c in enumerate(conditions):
        at = f"conditions[{i}]"
        if not isinstance(c, Mapping):
            errors[at] = "an object"
            continue
        attribute = c.get("attribute")
        if not isinstance(attribute, str) or not (
                attribute in ATTRIBUTES or re.match(r"^field:[a-z][a-z0-9_]{0,39}$", attribute)):
            errors[f"{at}.attribute"] = f"one of {', '.join(ATTRIBUTES)} or field:<key>"
        op = c.get("op", "in")
        if op not in OPERATORS:
            errors[f"{at}.op"] = f"one of {', '.join(OPERATORS)}"
        values = c.get("values")
        if op in ("in", "not_in"):
            if not isinstance(values, list) or not values:
                errors[f"{at}.values"] = "at least one value"
            elif attribute == "service" and (unknown := [v for v in values if v not in services]):
                errors[f"{at}.values"] = f"no such service: {', '.join(map(str, unknown))}"
            elif attribute == "category" and (
                    unknown := [v for v in values if v not in categories]):
                errors[f"{at}.values"] = f"no such category: {', '.join(map(str, unknown))}"
            elif attribute == "priority" and (
                    unknown := [v for v in values if v not in {p.value for p in Priority}
                                and not (board and v in {p["id"] for p in _priorities(board)})]):
                errors[f"{at}.values"] = f"not a priority: {', '.join(map(str, unknown))}"

    actions = doc.get("actions")
    if not isinstance(actions, list) or not actions:
        errors["actions"] = "at least one action"
        actions = []
    for i, a in enumerate(actions):
        at = f"actions[{i}]"
        if not isinstance(a, Mapping) or a.get("type") not in ACTIONS:
            errors[f"{at}.type"] = f"one of {', '.join(ACTIONS)}"
            continue
        kind = a["type"]
        for need in _ACTION_NEEDS[kind]:
            if need == "text_or_canned":
                if not (_text(a.get("text")) or a.get("canned_response_id")):
                    errors[f"{at}.text"] = "a text or a canned_response_id"
                elif a.get("canned_response_id") and a["canned_response_id"] not in canned:
                    errors[f"{at}.canned_response_id"] = "no such canned response"
            elif a.get(need) in (None, "", []):
                errors[f"{at}.{need}"] = "required"
        if kind == "set_column" and a.get("column_id"):
            if columns is None:
                errors[f"{at}.column_id"] = "a rule that moves cards belongs to a board"
            elif a["column_id"] not in columns:
                errors[f"{at}.column_id"] = f"board {board_id!r} has no such column"
        if kind == "set_lane" and a.get("lane_id"):
            if lanes is None:
                errors[f"{at}.lane_id"] = "a rule that changes lanes belongs to a board"
            elif a["lane_id"] not in lanes:
                errors[f"{at}.lane_id"] = f"board {board_id!r} has no such lane"
        if kind == "set_priority" and a.get("value") and a["value"] not in {
                p.value for p in Priority} and not (board and a["value"] in {
                    p["id"] for p in _priorities(board)}):
            errors[f"{at}.value"] = "not a priority"
        if kind == "set_type" and a.get("value") and board is not None and a["value"] not in {
                t["id"] for t in _types(board)}:
            errors[f"{at}.value"] = f"board {board_id!r} has no such card type"
        if kind == "set_due_date" and a.get("days") is not None and (
                not isinstance(a["days"], int) or isinstance(a["days"], bool)
                or not 0 <= a["days"] <= 3650):
            errors[f"{at}.days"] = "whole days from now, 0 to 3650"
        if kind == "add_checklist" and a.get("checklist_template_id") and \
                a["checklist_template_id"] not in checklists:
            errors[f"{at}.checklist_template_id"] = "no such checklist template"
        if kind == "set_assignee" and a.get("assignment") is not None:
            try:
                rule = AssignmentRule.model_validate(a["assignment"])
                if unknown := [x for x in rule.agents if x not in agents]:
                    errors[f"{at}.assignment"] = f"no such agent: {', '.join(unknown)}"
            except ValueError:
                errors[f"{at}.assignment"] = "kind fixed/round_robin/least_loaded and agents"
        if kind == "notify" and isinstance(a.get("agents"), list) and (
                unknown := [x for x in a["agents"] if x not in agents]):
            errors[f"{at}.agents"] = f"no such agent: {', '.join(map(str, unknown))}"
        if kind in ("add_labels", "remove_labels") and a.get("labels") is not None and (
                not isinstance(a["labels"], list)
                or not all(isinstance(x, str) and 0 < len(x) <= 50 for x in a["labels"])):
            errors[f"{at}.labels"] = "label names, 1 to 50 characters"
        if kind == "start_template" and a.get("request_template_id") and \
                a["request_template_id"] not in templates:
            errors[f"{at}.request_template_id"] = "no such request template"
        if kind == "create_children":
            for j, child in enumerate(a.get("children") or []):
                errors.update(_child_errors(child, f"{at}.children[{j}]", boards=boards,
                                            agents=agents, checklists=checklists))
    if errors:
        raise AutomationInvalid(errors)
    trigger = dict(trigger)
    if trigger["type"] == "scheduled":
        trigger["timezone"] = trigger.get("timezone") or (board or {}).get("timezone") or "UTC"
    return {"_id": doc["id"], "name": _text(doc.get("name")), "board_id": board_id,
            "active": bool(doc.get("active", True)), "order": int(doc.get("order") or 0),
            "trigger": dict(trigger), "conditions": [dict(c) for c in conditions],
            "actions": [dict(a) for a in actions]}


def _child_errors(child: Any, at: str, *, boards: Mapping[str, Mapping[str, Any]],
                  agents: set[str], checklists: set[str]) -> dict[str, str]:
    """A child card (or template step): board, title, its assignee rule, checklist, due."""
    errors: dict[str, str] = {}
    if not isinstance(child, Mapping):
        return {at: "an object"}
    board = boards.get(child.get("board_id"))
    if board is None:
        errors[f"{at}.board_id"] = "no such board"
    if not _text(child.get("title")):
        errors[f"{at}.title"] = "required"
    if child.get("type") is not None and board is not None and child["type"] not in {
            t["id"] for t in _types(board) if not t.get("customer_request")}:
        errors[f"{at}.type"] = "not a task type of that board"
    if child.get("assignment") is not None:
        try:
            rule = AssignmentRule.model_validate(child["assignment"])
            if unknown := [x for x in rule.agents if x not in agents]:
                errors[f"{at}.assignment"] = f"no such agent: {', '.join(unknown)}"
        except ValueError:
            errors[f"{at}.assignment"] = "kind fixed/round_robin/least_loaded and agents"
    if child.get("checklist_template_id") and child["checklist_template_id"] not in checklists:
        errors[f"{at}.checklist_template_id"] = "no such checklist template"
    if child.get("due_in_days") is not None and (
            not isinstance(child["due_in_days"], int) or not 0 <= child["due_in_days"] <= 3650):
        errors[f"{at}.due_in_days"] = "whole days, 0 to 3650"
    return errors


# --- checklist and request templates ----------------------------------------------------------

def validate_checklist_template(doc: Mapping[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    if not _slug(doc.get("id")):
        errors["id"] = "lower-case letters, digits and dashes"
    if not _text(doc.get("name")):
        errors["name"] = "required"
    items = doc.get("items")
    if not isinstance(items, list) or not items:
        errors["items"] = "at least one item"
    else:
        for i, item in enumerate(items):
            if not _text(item) or len(item) > 500:
                errors[f"items[{i}]"] = "text of 1 to 500 characters"
        if len(set(items)) != len(items) and "items" not in errors:
            errors["items"] = "each item once"
    if errors:
        raise AutomationInvalid(errors)
    return {"_id": doc["id"], "name": _text(doc["name"]), "items": [i.strip() for i in items]}


def validate_request_template(doc: Mapping[str, Any], *, services: set[str],
                              categories: set[str], boards: Mapping[str, Mapping[str, Any]],
                              agents: set[str], checklists: set[str]) -> dict[str, Any]:
    """A request template: which requests start it (service, optionally a category) and
    the chain of steps, each a child card started when the one before is done."""
    errors: dict[str, str] = {}
    if not _slug(doc.get("id")):
        errors["id"] = "lower-case letters, digits and dashes"
    if not _text(doc.get("name")):
        errors["name"] = "required"
    if doc.get("service_id") not in services:
        errors["service_id"] = "no such service"
    if doc.get("category_id") is not None and doc["category_id"] not in categories:
        errors["category_id"] = "no such category"
    steps = doc.get("steps")
    if not isinstance(steps, list) or not steps:
        errors["steps"] = "at least one step"
        steps = []
    for i, step in enumerate(steps):
        errors.update(_child_errors(step, f"steps[{i}]", boards=boards, agents=agents,
                                    checklists=checklists))
    if doc.get("checklist_template_id") and doc["checklist_template_id"] not in checklists:
        errors["checklist_template_id"] = "no such checklist template"
    if doc.get("done_column_id") is not None and not isinstance(doc["done_column_id"], str):
        errors["done_column_id"] = "a column of the request's board"
    if doc.get("start", "on_request") not in ("on_request", "by_rule"):
        errors["start"] = "on_request (when the request arrives) or by_rule (a rule's action)"
    if errors:
        raise AutomationInvalid(errors)
    return {"_id": doc["id"], "name": _text(doc["name"]), "service_id": doc["service_id"],
            "category_id": doc.get("category_id"),
            "checklist_template_id": doc.get("checklist_template_id"),
            "done_column_id": doc.get("done_column_id"),
            "start": doc.get("start", "on_request"),
            "active": bool(doc.get("active", True)),
            "steps": [dict(s) for s in steps]}


def template_for(templates: Iterable[Mapping[str, Any]], card: Mapping[str, Any]
                 ) -> Mapping[str, Any] | None:
    """The request template a new request starts: its category's (the deepest) over its
    service's own; None when neither has one."""
    path = list(card.get("category_path") or [])
    best: tuple[int, Mapping[str, Any]] | None = None
    for t in templates:
        if not t.get("active", True) or t["service_id"] != card.get("service_id") or \
                t.get("start", "on_request") != "on_request":
            continue
        if t.get("category_id") is None:
            rank = 0
        elif t["category_id"] in path:
            rank = path.index(t["category_id"]) + 1
        else:
            continue
        if best is None or rank > best[0]:
            best = (rank, t)
    return best[1] if best else None


def next_step(chain: Mapping[str, Any]) -> int | None:
    """The index of the step to start after the last started one is done (None: the
    chain is through)."""
    started = len(chain.get("started") or [])
    return started if started < len(chain["steps"]) else None


def due_at(step: Mapping[str, Any], now: datetime) -> str | None:
    days = step.get("due_in_days")
    return due_date_after(days, now.date()) if days is not None else None
