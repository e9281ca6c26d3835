"""Bulk actions on a selection of cards: each card changed by the operation a single change
uses (boards.application.cards), in its own unit of work, with a result per card.

One card's refusal (a WIP limit, a board that does not take it, a card changed meanwhile,
a card the agent may not see) never stops the others and never undoes them: the result
says, per card, `done`, `unchanged` or `refused` with the reason the single change would
have given. History, events and SLA follow from the single operations, so a bulk move of
100 cards emits exactly the 100 `card.moved` events 100 single moves would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from desk_runtime.http import DomainError, Invalid
from desk_runtime.unit_of_work import UnitOfWork

from boards.application import cards as card_ops
from boards.domain.agent import Agent
from boards.domain.card import Card
from boards.metrics import BULK_RESULTS
from boards.repository import Repositories

MAX_CARDS = 500

Kind = Literal["assign", "move", "transfer", "priority", "labels", "type", "close"]


@dataclass(frozen=True)
class BulkAction:
    """What to do to every selected card (only the fields its kind needs are read)."""

    kind: Kind
    assignee_id: str | None = None
    column_id: str | None = None
    lane_id: str | None = None
    board_id: str | None = None
    priority_key: str | None = None
    labels: tuple[dict[str, Any], ...] = ()
    type: str | None = None
    canned_response_id: str | None = None


Transact = Callable[[Callable[[UnitOfWork], Awaitable[Card]]], Awaitable[Card]]


async def run(transact: Transact, agent: Agent, refs: list[str], action: BulkAction
              ) -> list[dict[str, Any]]:
    """Apply `action` to each card in turn; one result per card, in the order given."""
    results = []
    for ref in dict.fromkeys(refs):  # a card picked twice is changed once
        results.append(await _one(transact, agent, ref, action))
        BULK_RESULTS.labels(action.kind, results[-1]["status"]).inc()
    return results


async def _one(transact: Transact, agent: Agent, ref: str, action: BulkAction
               ) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def work(uow: UnitOfWork) -> Card:
        card = await card_ops.visible_card(Repositories.of(uow.db), ref, agent, uow.session)
        seen.update(number=card.number, version=card.version)
        return await _apply(uow, card, agent, action)

    try:
        card = await transact(work)
    except DomainError as exc:
        return {"card": ref, "number": seen.get("number"), "status": "refused",
                "code": exc.code, "reason": exc.message}
    status = "unchanged" if card.version == seen.get("version") else "done"
    return {"card": card.id, "number": card.number, "status": status, "version": card.version}


async def _apply(uow: UnitOfWork, card: Card, agent: Agent, action: BulkAction) -> Card:
    """The single change's operation, as the card API calls it (the version just read)."""
    if action.kind == "assign":
        return await card_ops.assign(uow, card, action.assignee_id, by=agent.id,
                                     expected_version=card.version)
    if action.kind == "move":
        return await card_ops.move_for_agent(uow, card.id, agent, action.column_id or "",
                                             action.lane_id, card.version)
    if action.kind == "transfer":
        return await card_ops.transfer(uow, card, agent, board_id=action.board_id or "",
                                       column_id=action.column_id, lane_id=action.lane_id,
                                       expected_version=card.version)
    changes: dict[str, Any] = {
        "priority": {"priority_key": action.priority_key},
        "labels": {"labels": [dict(x) for x in action.labels]},
        "type": {"type": action.type},
    }.get(action.kind, {})
    if changes:
        return await card_ops.edit(uow, card, changes, by=agent.id,
                                   expected_version=card.version,
                                   can_see_board=agent.can_see_board)
    return await _close(uow, card, agent, action.canned_response_id)


async def _close(uow: UnitOfWork, card: Card, agent: Agent, canned_id: str | None) -> Card:
    """The canned answer goes to the customer and the card to its board's first done
    column, both or neither (one unit of work)."""
    repos = Repositories.of(uow.db)
    board = await repos.catalog.board(card.board_id, uow.session)
    done = card.closing_column(board)
    if done is None:
        raise Invalid(f"board {card.board_id!r} has no done column")
    if card.status_category == "done":
        return card
    if canned_id:
        await card_ops.comment(uow, card, agent_id=agent.id, agent_name=agent.name, text=None,
                               visibility="public", canned_response_id=canned_id)
        card = await repos.cards.card(card.id, uow.session)
    return await card_ops.move(uow, card, done["id"], card.lane_id, by=agent.id, board=board)
