"""Agent alert routes: which board/lane/column events go to which Slack target or mailbox."""

from __future__ import annotations

from typing import Literal

from desk_contracts.catalog import SLUG
from desk_contracts.channels import EMAIL
from pydantic import BaseModel, ConfigDict, Field, model_validator

# Slack reaches agents only (never a customer), so it is notify's own delivery channel
# rather than one of the customer channels in desk_contracts.channels.
SLACK = "slack"
AgentKind = Literal["new_request", "customer_reply", "escalation", "sla_warning",
                    "sla_breached", "column_reached"]


class AgentRoute(BaseModel):
    """One subscription; `lane_id`/`column_id` None means every lane/column of the board.

    `escalation` fires when a card enters the route's lane (e.g. an L2 lane);
    `column_reached` when a card enters the route's column (e.g. "done" on the
    development board); the other kinds fire for cards of the board (and lane).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=SLUG)
    board_id: str = Field(min_length=1)
    lane_id: str | None = None
    column_id: str | None = None
    events: tuple[AgentKind, ...] = Field(min_length=1)
    channel: Literal["slack_webhook", "slack_bot", "email"]
    webhook_url: str | None = Field(None, pattern=r"^https?://\S+$", max_length=2000)
    slack_channel: str | None = Field(None, max_length=200)
    emails: tuple[str, ...] = ()
    language: Literal["en", "ru"] = "en"
    enabled: bool = True

    @model_validator(mode="after")
    def _target_for_channel(self) -> AgentRoute:
        if self.channel == "slack_webhook" and not self.webhook_url:
            raise ValueError("a slack_webhook route needs webhook_url")
        if self.channel == "slack_bot" and not self.slack_channel:
            raise ValueError("a slack_bot route needs slack_channel")
        if self.channel == EMAIL:
            if not self.emails:
                raise ValueError("an email route needs emails")
            bad = [e for e in self.emails if "@" not in e or any(c.isspace() for c in e)]
            if bad:
                raise ValueError(f"not e-mail addresses: {bad}")
        return self

    def matches(self, kind: str, board_id: str, lane_id: str, column_id: str) -> bool:
        if not self.enabled or kind not in self.events or board_id != self.board_id:
            return False
        if self.lane_id is not None and lane_id != self.lane_id:
            return False
        if kind == "column_reached" and self.column_id is not None:
            return column_id == self.column_id
        return True

    def targets(self) -> list[tuple[str, str, dict]]:
        """(channel, recipient, target) for each place this route delivers to."""
        if self.channel == "slack_webhook":
            return [(SLACK, f"slack:{self.id}", {"webhook_url": self.webhook_url})]
        if self.channel == "slack_bot":
            return [(SLACK, f"slack:{self.id}", {"channel": self.slack_channel})]
        return [(EMAIL, e.lower(), {}) for e in self.emails]
