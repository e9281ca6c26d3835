"""Admins' configuration operations: publishing a service, reshaping a board, a board's
label list and typed custom fields."""

from __future__ import annotations

import re
import uuid
from typing import Any

from desk_contracts.catalog import FormField, ServiceDefinition
from desk_contracts.events import CatalogServiceChanged
from desk_runtime.http import Conflict, Invalid, NotFound
from pydantic import ValidationError
from desk_runtime.unit_of_work import UnitOfWork

from boards.domain.board import BoardRules
from boards.domain.cards import column_of, has_lane
from boards.repository import Repositories


async def publish_service(uow: UnitOfWork, service: ServiceDefinition) -> int:
    """Save a service definition and tell every other service about it."""
    catalog = Repositories.of(uow.db).catalog
    board = await catalog.board(service.target.board_id, uow.session)
    if board is None:
        raise ValueError(f"board {service.target.board_id!r} does not exist")
    column_of(board, service.target.column_id)
    if not has_lane(board, service.target.lane_id):
        raise ValueError(f"board {board['_id']!r} has no lane {service.target.lane_id!r}")
    if service.card_type is not None:
        card_type = BoardRules(board).card_type(service.card_type)
        if card_type is None or not card_type.get("customer_request"):
            raise ValueError(f"board {board['_id']!r} has no request type "
                             f"{service.card_type!r}")
    revision = await catalog.save_service(service, uow.session)
    await uow.emit(CatalogServiceChanged(service=service, revision=revision))
    return revision


async def reshape_board(uow: UnitOfWork, board: dict[str, Any],
                        members: list[str] | None) -> dict[str, Any]:
    """Create or reshape a board (`board["_id"]`). A column or lane that still holds cards
    cannot go, a column holding cards keeps its meaning, and no service may be left
    routing to a removed column or lane."""
    repos = Repositories.of(uow.db)
    board_id = board["_id"]
    existing = await repos.catalog.board(board_id, uow.session)
    if existing is not None:
        kept_cols = {c["id"] for c in board["columns"]}
        kept_lanes = {lane["id"] for lane in board["lanes"]}
        was = {c["id"]: c["category"] for c in existing["columns"]}
        for column in board["columns"]:
            if column["id"] in was and was[column["id"]] != column["category"]:
                held = await repos.cards.a_card_in_column(board_id, column["id"], uow.session)
                if held:
                    raise Conflict(f"column {column['id']!r} holds cards (e.g. {held}); move "
                                   "them before changing what the column means")
        for field, kept in (("column_id", kept_cols), ("lane_id", kept_lanes)):
            left = await repos.cards.a_card_outside(board_id, field, kept, uow.session)
            if left:
                raise Conflict(f"card {left} is still in a {field[:-3]} this change removes")
        for service, _rev in await repos.catalog.list_services():
            t = service.target
            if t.board_id == board_id and (t.column_id not in kept_cols
                                           or t.lane_id not in kept_lanes):
                raise Conflict(f"service {service.id!r} still routes to a removed "
                               "column or lane")
    await repos.catalog.save_board(board, uow.session)
    if members is not None:
        await repos.agents.set_board_members(board_id, members, uow.session)
    return board


# --- a board's label list and custom fields ---------------------------------------------------

def _label_id(name: str, taken: set[str]) -> str:
    """A new label's id: its name as a slug when it has Latin letters, else random."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or f"l-{uuid.uuid4().hex[:8]}"
    candidate, n = slug, 2
    while candidate in taken:
        candidate, n = f"{slug}-{n}", n + 1
    return candidate


def board_labels(labels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The board's label list as kept: every label with an id (new ones get one), names
    unique in any case. Renaming keeps the id, so every card shows the new name."""
    names = [x["name"].strip().casefold() for x in labels]
    if len(names) != len(set(names)):
        raise Invalid("two labels have the same name", details={"labels": "names repeat"})
    ids = [x["id"] for x in labels if x.get("id")]
    if len(ids) != len(set(ids)):
        raise Invalid("two labels have the same id", details={"labels": "ids repeat"})
    taken = set(ids)
    out = []
    for x in labels:
        label_id = x.get("id") or _label_id(x["name"], taken)
        taken.add(label_id)
        out.append({"id": label_id, "name": x["name"].strip(), "color": x["color"].lower()})
    return out


def board_fields(fields: list[dict[str, Any]], card_types: list[str]) -> list[dict[str, Any]]:
    """The board's typed custom fields as kept, checked as the form validator reads them
    (a select needs options, only a select has them) and naming only the board's types."""
    keys = [f["key"] for f in fields]
    if len(keys) != len(set(keys)):
        raise Invalid("two custom fields have the same key", details={"fields": "keys repeat"})
    errors: dict[str, str] = {}
    out = []
    for f in fields:
        unknown = [t for t in f.get("card_types") or () if t not in card_types]
        if unknown:
            errors[f["key"]] = f"no card type {', '.join(unknown)} on this board"
            continue
        try:
            FormField.model_validate({k: v for k, v in f.items() if k != "card_types"})
        except ValidationError as exc:
            errors[f["key"]] = "; ".join(e["msg"].removeprefix("Value error, ")
                                         for e in exc.errors())
            continue
        out.append({k: v for k, v in f.items() if v is not None})
    if errors:
        raise Invalid("some custom fields are invalid", details={"fields": errors})
    return out


async def set_board_part(uow: UnitOfWork, board_id: str, name: str, value: Any) -> None:
    if not await Repositories.of(uow.db).catalog.set_board_part(board_id, name, value,
                                                                uow.session):
        raise NotFound("no such board")
