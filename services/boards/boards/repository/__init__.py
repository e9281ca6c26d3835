"""Boards' store: the only code that reads or writes it, one repository per aggregate.

`cards` (cards, comments, numbering, the list walk), `agents` (agents and their browser
sessions) and `catalog` (services, boards, canned responses); statistics keep their own
read model in `boards.stats.repository`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase

from boards.repository.agents import AgentRepository
from boards.repository.cards import UNASSIGNED, CardListSpec, CardRepository, card_list_query
from boards.repository.catalog import CatalogRepository

__all__ = ["UNASSIGNED", "AgentRepository", "CardListSpec", "CardRepository",
           "CatalogRepository", "Repositories", "card_list_query"]


@dataclass(frozen=True)
class Repositories:
    cards: CardRepository
    agents: AgentRepository
    catalog: CatalogRepository

    @classmethod
    def of(cls, db: AsyncDatabase) -> Repositories:
        return cls(CardRepository(db), AgentRepository(db), CatalogRepository(db))

    async def ensure_indexes(self) -> None:
        await self.cards.ensure_indexes()
        await self.agents.ensure_indexes()
        await self.catalog.ensure_indexes()
