"""Admins' configuration operations: publishing a service, reshaping a board."""

from __future__ import annotations

from typing import Any

from desk_contracts.catalog import ServiceDefinition
from desk_contracts.events import CatalogServiceChanged
from desk_runtime.http import Conflict
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
