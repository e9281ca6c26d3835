"""Who acts in boards: an agent (or admin) and the boards they may see."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    role: str  # "agent" | "admin"
    boards: frozenset[str]

    def can_see_board(self, board_id: str) -> bool:
        return self.role == "admin" or board_id in self.boards

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Agent:
        return cls(doc["_id"], doc.get("name", doc["_id"]), doc.get("role", "agent"),
                   frozenset(doc.get("boards", [])))


# The configured bootstrap token's holder: no agents row, every board.
BOOTSTRAP_ADMIN = Agent("admin", "Administrator", "admin", frozenset())
