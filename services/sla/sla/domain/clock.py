"""A card's SLA record: its target clocks, pauses and the signals they are due to raise.

Pure logic, no I/O. Every change takes the instant it happened (the card event's own
time, not the time we processed it), so a late or redelivered event still yields a
record that is right to the second and can be defended in a contract dispute.

A target's clock is `spent_before` working seconds plus, while it runs, the working
time since `running_since`. Its deadline is where the remaining budget runs out on the
policy's calendar; pausing banks the time spent, resuming starts a new segment, and a
priority or policy change re-prices the budget without touching the time spent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from desk_contracts.catalog import Priority, StatusCategory
from pydantic import BaseModel, Field

from sla.domain.calendar import BusinessCalendar
from sla.domain.policy import TARGETS, SlaPolicy, TargetName

SignalKind = Literal["warning", "breached", "met", "completed", "reminder", "auto_close"]


class Signal(BaseModel):
    kind: SignalKind
    target: TargetName | None = None
    due_at: datetime
    deadline: datetime | None = None
    # for "completed": what it took
    met: bool | None = None
    started_at: datetime | None = None
    spent_seconds: float | None = None
    paused_seconds: float | None = None
    cycle: int | None = None


class Pause(BaseModel):
    started_at: datetime
    ended_at: datetime | None = None
    cause: str
    column_id: str | None = None
    targets: list[TargetName]


class TargetClock(BaseModel):
    target: TargetName
    budget_seconds: float
    started_at: datetime
    running_since: datetime | None
    spent_before: float = 0.0
    deadline: datetime | None = None
    warn_at: datetime | None = None
    warned_at: datetime | None = None
    breached_at: datetime | None = None
    completed_at: datetime | None = None
    cycle: int = 1

    @property
    def active(self) -> bool:
        return self.completed_at is None

    @property
    def state(self) -> str:
        if self.completed_at is not None:
            return "met" if self.breached_at is None else "missed"
        if self.breached_at is not None:
            return "breached"
        return "paused" if self.running_since is None else "running"

    def spent(self, cal: BusinessCalendar, now: datetime) -> float:
        end = min(now, self.completed_at) if self.completed_at else now
        if self.running_since is None or end <= self.running_since:
            return self.spent_before
        return self.spent_before + cal.seconds_between(self.running_since, end)


class LogEntry(BaseModel):
    at: datetime
    what: str
    target: TargetName | None = None
    detail: str | None = None


class CardSla(BaseModel):
    card_id: str
    number: str
    service_id: str | None
    policy: str
    calendar: str
    priority: Priority
    priority_key: str | None = None  # the board's own priority id (policies may name it)
    category: StatusCategory
    column_id: str | None = None
    card_version: int = 0
    created_at: datetime
    targets: dict[str, TargetClock] = {}
    pauses: list[Pause] = []
    log: list[LogEntry] = []
    waiting_since: datetime | None = None
    reminded_at: datetime | None = None
    auto_close_after_days: int | None = None
    auto_closed_at: datetime | None = None
    closed_at: datetime | None = None
    reopened: int = 0
    warn_share: float = Field(0.8, gt=0, lt=1)

    # -- lifecycle -----------------------------------------------------------------------

    @classmethod
    def open(cls, *, card_id: str, number: str, service_id: str | None, policy: SlaPolicy,
             cal: BusinessCalendar, priority: Priority | str, category: StatusCategory | str,
             column_id: str | None, at: datetime, warn_share: float,
             auto_close_after_days: int | None = None, card_version: int = 1,
             priority_key: str | None = None) -> CardSla:
        sla = cls(card_id=card_id, number=number, service_id=service_id, policy=policy.name,
                  calendar=cal.name, priority=Priority(priority), priority_key=priority_key,
                  category=StatusCategory.QUEUED, column_id=column_id, created_at=at,
                  warn_share=policy.warn_share or warn_share, card_version=card_version,
                  auto_close_after_days=auto_close_after_days)
        sla.log.append(LogEntry(at=at, what="opened", detail=f"policy {policy.name}"))
        for target in ("first_response", "resolution"):
            sla._start_target(target, policy, cal, at)
        sla.enter(StatusCategory(category), column_id, at, policy, cal)
        return sla

    def _start_target(self, target: TargetName, policy: SlaPolicy, cal: BusinessCalendar,
                      at: datetime) -> None:
        minutes = policy.minutes(target, self.priority, self.priority_key)
        if minutes is None:
            return
        previous = self.targets.get(target)
        clock = TargetClock(target=target, budget_seconds=minutes * 60.0, started_at=at,
                            running_since=at, cycle=previous.cycle + 1 if previous else 1)
        if policy.pauses(target, self.category) or self.category == StatusCategory.DONE:
            clock.running_since = None
        self.targets[target] = clock
        self._price(clock, cal)
        self.log.append(LogEntry(at=at, what="started", target=target,
                                 detail=f"{minutes} min"))

    def _price(self, clock: TargetClock, cal: BusinessCalendar) -> None:
        """Place the deadline and warning where the remaining budget runs out."""
        if not clock.active or clock.running_since is None:
            clock.deadline = clock.warn_at = None
            return
        left = clock.budget_seconds - clock.spent_before
        clock.deadline = cal.add_seconds(clock.running_since, left)
        warn_left = clock.budget_seconds * self.warn_share - clock.spent_before
        clock.warn_at = (cal.add_seconds(clock.running_since, warn_left)
                         if clock.warned_at is None and warn_left > 0 else None)

    def _pause(self, clock: TargetClock, cal: BusinessCalendar, at: datetime) -> None:
        if clock.running_since is None:
            return
        clock.spent_before = clock.spent(cal, at)
        clock.running_since = None
        self._price(clock, cal)

    def _resume(self, clock: TargetClock, cal: BusinessCalendar, at: datetime) -> None:
        if clock.running_since is not None or not clock.active:
            return
        clock.running_since = at
        self._price(clock, cal)

    def _complete(self, clock: TargetClock, cal: BusinessCalendar, at: datetime
                  ) -> list[Signal]:
        """Stop a target for good: `completed` always (for statistics), `met` when on time."""
        if not clock.active:
            return []
        self._pause(clock, cal, at)
        clock.completed_at = at
        met = clock.breached_at is None
        self.log.append(LogEntry(at=at, what="met" if met else "missed", target=clock.target))
        paused = sum(
            max(0.0, (min(p.ended_at or at, at) - max(p.started_at, clock.started_at))
                .total_seconds())
            for p in self.pauses if clock.target in p.targets)
        done = Signal(kind="completed", target=clock.target, due_at=at, met=met,
                      started_at=clock.started_at, spent_seconds=clock.spent_before,
                      paused_seconds=paused, cycle=clock.cycle)
        return [Signal(kind="met", target=clock.target, due_at=at), done] if met else [done]

    # -- what cards do -------------------------------------------------------------------

    def enter(self, category: StatusCategory, column_id: str | None, at: datetime,
              policy: SlaPolicy, cal: BusinessCalendar) -> list[Signal]:
        """The card moved into a column of `category`."""
        signals: list[Signal] = []
        before = self.category
        self.category, self.column_id = category, column_id
        if before == category:
            return signals
        # close the open pause, if the new column does not pause the same targets
        open_pause = self.pauses[-1] if self.pauses and self.pauses[-1].ended_at is None else None
        if open_pause is not None:
            open_pause.ended_at = at
        if category == StatusCategory.WAITING_FOR_CUSTOMER:
            self.waiting_since, self.reminded_at = at, None
        else:
            self.waiting_since = None
        if category == StatusCategory.DONE:
            self.closed_at = at
            self.log.append(LogEntry(at=at, what="closed", detail=column_id))
            for clock in self.targets.values():
                signals += self._complete(clock, cal, at)
            return signals
        if before == StatusCategory.DONE and self.closed_at is not None:
            self.reopened += 1
            self.closed_at = None
            self.log.append(LogEntry(at=at, what="reopened", detail=column_id))
            res = self.targets.get("resolution")
            if res is not None:
                # the resolution clock resumes where it stopped; the closed time is not counted
                res.completed_at = None
                res.cycle += 1
        paused: list[TargetName] = []
        for name, clock in self.targets.items():
            if not clock.active:
                continue
            if policy.pauses(name, category):  # type: ignore[arg-type]
                self._pause(clock, cal, at)
                paused.append(name)  # type: ignore[arg-type]
            else:
                self._resume(clock, cal, at)
        if paused:
            self.pauses.append(Pause(started_at=at, cause=str(category), column_id=column_id,
                                     targets=paused))
            self.log.append(LogEntry(at=at, what="paused", detail=f"{category}: "
                                     + ", ".join(paused)))
        elif open_pause is not None:
            self.log.append(LogEntry(at=at, what="resumed", detail=str(category)))
        return signals

    def agent_replied(self, at: datetime, policy: SlaPolicy, cal: BusinessCalendar
                      ) -> list[Signal]:
        """A public reply by an agent answers the customer: response targets are met."""
        signals = []
        for name in ("first_response", "next_response"):
            clock = self.targets.get(name)
            if clock is not None and clock.active:
                signals += self._complete(clock, cal, at)
        return signals

    def customer_replied(self, at: datetime, policy: SlaPolicy, cal: BusinessCalendar) -> None:
        """A customer wrote again: once first response is done, a next-response clock runs."""
        self.waiting_since = None
        if self.category == StatusCategory.DONE:
            return
        first = self.targets.get("first_response")
        if first is not None and first.active:
            return  # still owed the first response; that clock covers this message too
        current = self.targets.get("next_response")
        if current is not None and current.active:
            return
        self._start_target("next_response", policy, cal, at)

    def reprice(self, at: datetime, policy: SlaPolicy, old_cal: BusinessCalendar,
                cal: BusinessCalendar, priority: Priority | str | None = None,
                service_id: str | None = None, reason: str | None = None,
                priority_key: str | None = None) -> None:
        """Priority, service or policy changed: new budgets, same time already spent.

        `reason` forces a re-price with the same policy name (its targets were edited).
        """
        changes = [reason] if reason else []
        if priority is not None:
            # the board's priority id when the card event has one (a policy may name it),
            # else the level alone
            before = self.priority_key or str(self.priority)
            self.priority = Priority(priority)
            self.priority_key = priority_key if priority_key != str(self.priority) else None
            after = self.priority_key or str(self.priority)
            if after != before:
                changes.append(f"priority {before} → {after}")
        if policy.name != self.policy:
            changes.append(f"policy {self.policy} → {policy.name}")
            self.policy = policy.name
        if service_id is not None:
            self.service_id = service_id
        if not changes:
            return
        for name, clock in list(self.targets.items()):
            if not clock.active:
                continue
            running = clock.running_since is not None
            self._pause(clock, old_cal, at)
            minutes = policy.minutes(name, self.priority,  # type: ignore[arg-type]
                                     self.priority_key)
            if minutes is None:
                clock.completed_at = at
                self.log.append(LogEntry(at=at, what="dropped", target=clock.target,
                                         detail="not in the new policy"))
                continue
            clock.budget_seconds = minutes * 60.0
            if running:
                clock.running_since = at
        self.calendar = cal.name
        for clock in self.targets.values():
            self._price(clock, cal)
        self.log.append(LogEntry(at=at, what="repriced", detail="; ".join(changes)))

    # -- what time does ------------------------------------------------------------------

    def due(self, now: datetime, remind_after_days: int | None) -> list[Signal]:
        """Signals whose time has come and that were not raised yet (oldest first)."""
        out: list[Signal] = []
        for clock in self.targets.values():
            if not clock.active:
                continue
            if clock.breached_at is None and clock.deadline is not None and clock.deadline <= now:
                out.append(Signal(kind="breached", target=clock.target, due_at=clock.deadline,
                                  deadline=clock.deadline))
            elif (clock.warned_at is None and clock.breached_at is None
                  and clock.warn_at is not None and clock.warn_at <= now):
                out.append(Signal(kind="warning", target=clock.target, due_at=clock.warn_at,
                                  deadline=clock.deadline))
        reminder = self.reminder_at(remind_after_days)
        if reminder is not None and reminder <= now:
            out.append(Signal(kind="reminder", due_at=reminder))
        close = self.auto_close_at()
        if close is not None and close <= now:
            out.append(Signal(kind="auto_close", due_at=close))
        return sorted(out, key=lambda s: s.due_at)

    def mark(self, signal: Signal, at: datetime) -> None:
        """Record that `signal` was raised, so it is never raised twice."""
        if signal.kind in ("warning", "breached"):
            clock = self.targets[signal.target]  # type: ignore[index]
            clock.warned_at = clock.warned_at or at
            if signal.kind == "breached":
                clock.breached_at = signal.due_at
            self.log.append(LogEntry(at=at, what=signal.kind, target=signal.target,
                                     detail=f"due {signal.due_at.isoformat()}"))
        elif signal.kind == "reminder":
            self.reminded_at = at
            self.log.append(LogEntry(at=at, what="reminder"))
        elif signal.kind == "auto_close":
            self.auto_closed_at = at
            self.log.append(LogEntry(at=at, what="auto_close"))

    def reminder_at(self, remind_after_days: int | None) -> datetime | None:
        if self.waiting_since is None or self.reminded_at is not None or not remind_after_days:
            return None
        return self.waiting_since + timedelta(days=remind_after_days)

    def auto_close_at(self) -> datetime | None:
        if (self.waiting_since is None or self.auto_closed_at is not None
                or not self.auto_close_after_days):
            return None
        return self.waiting_since + timedelta(days=self.auto_close_after_days)

    def next_due_at(self, remind_after_days: int | None) -> datetime | None:
        """The next instant the scheduler must look at this record (None: nothing pending)."""
        candidates: list[datetime] = []
        for clock in self.targets.values():
            if not clock.active:
                continue
            if clock.breached_at is None and clock.deadline is not None:
                candidates.append(clock.deadline)
            if clock.warned_at is None and clock.breached_at is None and clock.warn_at:
                candidates.append(clock.warn_at)
        for extra in (self.reminder_at(remind_after_days), self.auto_close_at()):
            if extra is not None:
                candidates.append(extra)
        return min(candidates) if candidates else None

    # -- the record, for people ----------------------------------------------------------

    def record(self, cal: BusinessCalendar, now: datetime | None = None) -> dict:
        now = now or datetime.now(UTC)
        return {
            "card_id": self.card_id,
            "number": self.number,
            "service_id": self.service_id,
            "policy": self.policy,
            "calendar": self.calendar,
            "priority": str(self.priority),
            "priority_key": self.priority_key or str(self.priority),
            "status_category": str(self.category),
            "targets": [
                {
                    "target": c.target,
                    "state": c.state,
                    "budget_minutes": c.budget_seconds / 60,
                    "started_at": c.started_at,
                    "deadline": c.deadline,
                    "warn_at": c.warn_at,
                    "warned_at": c.warned_at,
                    "breached_at": c.breached_at,
                    "completed_at": c.completed_at,
                    "spent_seconds": round(c.spent(cal, now), 3),
                    "left_seconds": round(c.budget_seconds - c.spent(cal, now), 3),
                    "cycle": c.cycle,
                }
                for name in TARGETS if (c := self.targets.get(name)) is not None
            ],
            "pauses": [p.model_dump() for p in self.pauses],
            "waiting_since": self.waiting_since,
            "reopened": self.reopened,
            "closed_at": self.closed_at,
            "log": [e.model_dump() for e in self.log],
        }
