"""SLA policies: targets per priority, which column categories pause which target."""

from __future__ import annotations

import re
from typing import Literal

from desk_contracts.catalog import Priority, StatusCategory
from pydantic import BaseModel, ConfigDict, Field, field_validator

TargetName = Literal["first_response", "next_response", "resolution"]
TARGETS: tuple[TargetName, ...] = ("first_response", "next_response", "resolution")
_PRIORITY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")  # as boards' board priority ids

DEFAULT_PAUSES: dict[str, tuple[StatusCategory, ...]] = {
    "first_response": (),
    "next_response": (StatusCategory.PAUSED,),
    "resolution": (StatusCategory.WAITING_FOR_CUSTOMER, StatusCategory.PAUSED),
}


class SlaPolicy(BaseModel):
    """E.g. "Access request: high priority, first response 40 minutes".

    Targets are minutes of the policy's calendar (`24x7` or a business calendar's
    working time). `priority_targets` replace single targets for one of a board's own
    priorities (by its id, e.g. "overdue-urgent"); `priority_overrides` do so for a
    priority level, and apply to every board priority of that level without its own.
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    calendar: str = "24x7"
    targets: dict[TargetName, float] = Field(description="minutes per target")
    priority_overrides: dict[Priority, dict[TargetName, float]] = {}
    priority_targets: dict[str, dict[TargetName, float]] = Field(
        {}, description="per board priority id: targets replacing the level's and the "
                        "policy's (the level's `priority_overrides` are the fallback)")
    pause_on: dict[TargetName, tuple[StatusCategory, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_PAUSES))
    warn_share: float | None = Field(None, gt=0, lt=1, description="default: the service's")
    remind_after_days: int | None = Field(
        2, ge=1, description="remind a customer who has not answered for this many days")

    @field_validator("priority_targets")
    @classmethod
    def _priority_ids(cls, value: dict) -> dict:
        for key in value:
            if not _PRIORITY_ID.match(key):
                raise ValueError(f"{key!r} is not a board priority id")
        return value

    @field_validator("targets", "priority_overrides", "priority_targets")
    @classmethod
    def _positive(cls, value: dict) -> dict:
        flat = [v for d in value.values() for v in d.values()] if value and isinstance(
            next(iter(value.values())), dict) else list(value.values())
        if any(m <= 0 for m in flat):
            raise ValueError("targets are positive numbers of minutes")
        return value

    def minutes(self, target: TargetName, priority: Priority | str,
                priority_key: str | None = None) -> float | None:
        """The board priority's own target, else its level's, else the policy's."""
        # a board without its own priorities names them by their level ("high")
        own = self.priority_targets.get(priority_key or Priority(priority).value, {})
        if target in own:
            return own[target]
        override = self.priority_overrides.get(Priority(priority), {})
        return override.get(target, self.targets.get(target))

    def pauses(self, target: TargetName, category: StatusCategory | str) -> bool:
        return StatusCategory(category) in self.pause_on.get(target, ())
