"""The one write path for cards: optimistic version check, history, derived fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from desk_contracts.catalog import ServiceDefinition
from desk_runtime.http import Conflict
from desk_runtime.unit_of_work import UnitOfWork
from pymongo import ReturnDocument

from boards.domain.cards import search_terms
from boards.metrics import STALE_VERSIONS, WIP_REFUSED
from boards.repository import BoardsRepository

# Changing any of these changes what a card is found by.
_SEARCHED = ("title", "requester", "number")


class StaleVersion(Conflict):
    code = "stale_version"


class WipLimitReached(Conflict):
    code = "wip_limit"


async def change_card(uow: UnitOfWork, card: dict, update: dict[str, Any],
                      history: list[dict], *, expected_version: int | None = None,
                      touch: bool = True) -> dict:
    """Apply `update` only if the card is still at the version the caller saw.

    The version filter plus the transaction make concurrent writers safe: two agents
    moving the same card at version 3 — one commits version 4, the other gets 409.
    """
    if expected_version is not None and expected_version != card["version"]:
        STALE_VERSIONS.inc()
        raise StaleVersion(
            f"card {card['number']} is at version {card['version']}, not {expected_version}; "
            "reload it and try again", details={"current_version": card["version"]})
    update = {k: dict(v) for k, v in update.items()}
    sets = update.setdefault("$set", {})
    if touch:
        sets["updated_at"] = datetime.now(UTC)
    if any(k in sets for k in _SEARCHED):
        sets["search_terms"] = search_terms({**card, **sets})
    update.setdefault("$inc", {})["version"] = 1
    if history:
        update.setdefault("$push", {})["history"] = {"$each": history}
    repo = BoardsRepository(uow.db)
    updated = await repo.cards.find_one_and_update(
        {"_id": card["_id"], "version": card["version"]}, update,
        return_document=ReturnDocument.AFTER, session=uow.session,
    )
    if updated is None:
        STALE_VERSIONS.inc()
        current = await repo.cards.find_one({"_id": card["_id"]}, {"version": 1},
                                            session=uow.session)
        raise StaleVersion(f"card {card['number']} changed meanwhile; reload it and try again",
                           details={"current_version": current["version"] if current else None})
    return updated


async def check_wip(uow: UnitOfWork, board: dict, column: dict) -> None:
    """Refuse a move into a column already holding its WIP limit of cards."""
    limit = column.get("wip_limit")
    if not limit:
        return
    held = await BoardsRepository(uow.db).cards.count_documents(
        {"board_id": board["_id"], "column_id": column["id"]}, session=uow.session)
    if held >= limit:
        WIP_REFUSED.inc()
        raise WipLimitReached(f"column {column['name']!r} already holds its limit of {limit} cards",
                              details={"column_id": column["id"], "wip_limit": limit})


def link_entry(card: dict, kind: str) -> dict:
    """How one card lists another it is linked to (kept denormalised for the board view)."""
    return {"kind": kind, "card_id": card["_id"], "number": card["number"],
            "board_id": card["board_id"], "title": card["title"]}


async def service_of(uow: UnitOfWork, card: dict) -> ServiceDefinition | None:
    if not card.get("service_id"):
        return None
    return await BoardsRepository(uow.db).get_service(card["service_id"], uow.session)
