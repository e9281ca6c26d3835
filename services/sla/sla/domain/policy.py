"""SLA policies: targets per priority, which column categories pause which target."""

from __future__ import annotations

from typing import Literal

from desk_contracts.catalog import Priority, StatusCategory
from pydantic import BaseModel, ConfigDict, Field, field_validator

TargetName = Literal["first_response", "next_response", "resolution"]
TARGETS: tuple[TargetName, ...] = ("first_response", "next_response", "resolution")

DEFAULT_PAUSES: dict[str, tuple[StatusCategory, ...]] = {
    "first_response": (),
    "next_response": (StatusCategory.PAUSED,),
    "resolution": (StatusCategory.WAITING_FOR_CUSTOMER, StatusCategory.PAUSED),
}


class SlaPolicy(BaseModel):
    """E.g. "Access request: high priority, first response 40 minutes".

    Targets are minutes of the policy's calendar (`24x7` or a business calendar's
    working time). `priority_overrides` replace single targets for one priority.
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    calendar: str = "24x7"
    targets: dict[TargetName, float] = Field(description="minutes per target")
    priority_overrides: dict[Priority, dict[TargetName, float]] = {}
    pause_on: dict[TargetName, tuple[StatusCategory, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_PAUSES))
    warn_share: float | None = Field(None, gt=0, lt=1, description="default: the service's")
    remind_after_days: int | None = Field(
        2, ge=1, description="remind a customer who has not answered for this many days")

    @field_validator("targets", "priority_overrides")
    @classmethod
    def _positive(cls, value: dict) -> dict:
        flat = [v for d in value.values() for v in d.values()] if value and isinstance(
            next(iter(value.values())), dict) else list(value.values())
        if any(m <= 0 for m in flat):
            raise ValueError("targets are positive numbers of minutes")
        return value

    def minutes(self, target: TargetName, priority: Priority | str) -> float | None:
        override = self.priority_overrides.get(Priority(priority), {})
        return override.get(target, self.targets.get(target))

    def pauses(self, target: TargetName, category: StatusCategory | str) -> bool:
        return StatusCategory(category) in self.pause_on.get(target, ())
