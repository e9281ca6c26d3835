"""Who acts in boards: an agent, and what their role lets them do on which boards.

Roles, least first: a *viewer* reads their boards (no change to a card); an *agent* works
the cards of their boards; a *lead* also administers their boards (columns, lanes, limits,
card types, priorities) but not who is on them, nor other boards, services or people; an
*admin* does everything, on every board.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

VIEWER, AGENT, LEAD, ADMIN = "viewer", "agent", "lead", "admin"
ROLES = (VIEWER, AGENT, LEAD, ADMIN)


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    role: str  # one of ROLES
    boards: frozenset[str]

    def can_see_board(self, board_id: str) -> bool:
        return self.role == ADMIN or board_id in self.boards

    @property
    def read_only(self) -> bool:
        return self.role == VIEWER

    def can_admin_board(self, board_id: str) -> bool:
        return self.role == ADMIN or (self.role == LEAD and board_id in self.boards)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Agent:
        return cls(doc["_id"], doc.get("name", doc["_id"]), doc.get("role", "agent"),
                   frozenset(doc.get("boards", [])))


# The configured bootstrap token's holder: no agents row, every board.
BOOTSTRAP_ADMIN = Agent("admin", "Administrator", "admin", frozenset())
