"""Card rules that need no I/O: numbering, customer-facing status, snapshots, assignment."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from desk_contracts.catalog import AssignmentRule, ServiceDefinition, StatusCategory
from desk_contracts.events import CardSnapshot


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


def snapshot(card: Mapping[str, Any], service: ServiceDefinition | None) -> CardSnapshot:
    return CardSnapshot(
        card_id=card["_id"],
        number=card["number"],
        version=card["version"],
        title=card["title"],
        service_id=card.get("service_id"),
        board_id=card["board_id"],
        column_id=card["column_id"],
        lane_id=card["lane_id"],
        status_category=card["status_category"],
        customer_status=customer_status(service, card["status_category"]),
        priority=card["priority"],
        requester=card.get("requester"),
        channel=card["channel"],
        assignee_id=card.get("assignee_id"),
        request_id=card.get("request_id"),
        parent_id=card.get("parent_id"),
        customer_fields=customer_fields(service, card.get("fields", {})),
        created_at=card["created_at"],
        updated_at=card["updated_at"],
    )


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
