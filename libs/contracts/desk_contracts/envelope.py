"""The envelope every bus message travels in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from desk_contracts.events import EventPayload


class Envelope(BaseModel):
    """Metadata shared by every event; `payload` is validated against `type`/`version`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    type: str = Field(min_length=1)
    version: int = Field(ge=1)
    occurred_at: datetime
    account_id: str = Field(min_length=1)
    correlation_id: str = Field(min_length=1)
    causation_id: str | None = None
    payload: dict[str, Any]

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at must carry a time zone (UTC)")
        return value.astimezone(UTC)

    @property
    def routing_key(self) -> str:
        return f"{self.type}.v{self.version}"


def make_envelope(
    payload: EventPayload,
    *,
    account_id: str,
    correlation_id: str | None = None,
    causation: Envelope | None = None,
    event_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    """Wrap a payload; a caused event inherits the correlation id of its cause."""
    eid = event_id or uuid.uuid4()
    if causation is not None:
        correlation_id = correlation_id or causation.correlation_id
    return Envelope(
        event_id=eid,
        type=payload.TYPE,
        version=payload.VERSION,
        occurred_at=occurred_at or datetime.now(UTC),
        account_id=account_id,
        correlation_id=correlation_id or str(eid),
        causation_id=str(causation.event_id) if causation is not None else None,
        payload=payload.model_dump(mode="json"),
    )
