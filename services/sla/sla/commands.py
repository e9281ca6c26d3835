"""What sla does, as commands run in one unit of work (the record and its events together)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from desk_contracts.catalog import StatusCategory
from desk_contracts.events import (
    CardSnapshot,
    SlaAutoClose,
    SlaBreached,
    SlaClockChanged,
    SlaClockFace,
    SlaCustomerReminder,
    SlaMet,
    SlaTargetCompleted,
    SlaWarning,
)
from desk_runtime.logging import get_logger
from desk_runtime.unit_of_work import UnitOfWork

from sla.domain.calendar import BusinessCalendar
from sla.domain.clock import CardSla, Signal
from sla.domain.policy import SlaPolicy
from sla.metrics import DETECTION_LAG, SIGNALS
from sla.repository import SlaRepository, clock_faces

log = get_logger(__name__)
_SIGNAL_IDS = uuid.UUID("1b9f0c1e-5a0f-4f55-9d36-3f1f8b7a4e21")
TARGET_EVENTS = {"warning": SlaWarning, "breached": SlaBreached, "met": SlaMet}


def cal_24x7() -> BusinessCalendar:
    return BusinessCalendar.always()


class MissingPolicy(Exception):
    """The policy or calendar a card needs is not configured (retried, then dead-lettered)."""


SERVICE_WAIT_ATTEMPTS = 3


class ServiceNotYetKnown(Exception):
    """A card of a service whose catalog event has not been handled here yet (retried)."""


class Engine:
    """Loads a record with its policy and calendar, changes it, saves it, emits signals."""

    def __init__(self, uow: UnitOfWork, *, default_policy: str, warn_share: float):
        self.uow = uow
        self.repo = SlaRepository(uow.db)
        self.default_policy = default_policy
        self.warn_share = warn_share

    async def policy_for(self, service_id: str | None, override: str | None = None
                         ) -> tuple[SlaPolicy, BusinessCalendar, int | None]:
        service = await self.repo.service(service_id, self.uow.session)
        name = override or (service.sla_policy if service and service.sla_policy
                            else self.default_policy)
        policy = await self.repo.policy(name, self.uow.session)
        if policy is None:
            raise MissingPolicy(f"SLA policy {name!r} is not configured")
        cal = await self.repo.calendar(policy.calendar, self.uow.session)
        if cal is None:
            raise MissingPolicy(f"calendar {policy.calendar!r} of policy {name!r} is missing")
        return policy, cal, service.auto_close_after_days if service else None

    async def open_from(self, card: CardSnapshot, at: datetime) -> CardSla:
        if (card.service_id and self.uow.causation is not None  # handling an event
                and self.uow.attempt < SERVICE_WAIT_ATTEMPTS
                and await self.repo.service(card.service_id, self.uow.session) is None):
            # a new service's catalog event travels apart from its first card (another
            # replica, or in parallel here): wait for it rather than price the card by the
            # default policy; after a few tries the default applies
            raise ServiceNotYetKnown(f"service {card.service_id!r} not in sla's catalog yet")
        # a task's type may name its policy (requests: their service's, as before)
        policy, cal, auto_close = await self.policy_for(card.service_id, card.sla_policy)
        return CardSla.open(
            card_id=card.card_id, number=card.number, service_id=card.service_id,
            policy=policy, cal=cal, priority=card.priority, category=card.status_category,
            column_id=card.column_id, at=at, warn_share=self.warn_share,
            auto_close_after_days=auto_close, card_version=card.version,
            priority_key=card.priority_key if card.priority_key != card.priority else None)

    async def save(self, sla: CardSla, version: int, signals: list[Signal],
                   lease_owner: str | None = None, policy: SlaPolicy | None = None) -> None:
        policy = policy or await self.repo.policy(sla.policy, self.uow.session)
        remind = policy.remind_after_days if policy else None
        for signal in signals:
            await self.emit(sla, signal)
        await self.emit_clock_changes(sla)
        await self.repo.save(sla, version, sla.next_due_at(remind), self.uow,
                             lease_owner=lease_owner)

    async def emit_clock_changes(self, sla: CardSla) -> None:
        """Tell boards each clock whose state or deadline this change moved."""
        before = self.repo.loaded_clocks.get(sla.card_id, {})
        now = datetime.now(UTC)
        faces = clock_faces(sla)
        # each event carries every clock, so boards shows them all from the first and
        # writes the card once for the whole change
        clocks = {target: SlaClockFace(clock=clock, deadline=deadline)
                  for target, (clock, deadline) in faces.items()}
        for target, (clock, deadline) in faces.items():
            if before.get(target) == (clock, deadline):
                continue
            # a fresh id each time: the same face can recur (paused, resumed, paused again)
            await self.uow.emit(SlaClockChanged(
                card_id=sla.card_id, number=sla.number, target=target, clock=clock,
                deadline=deadline, at=now, policy=sla.policy, service_id=sla.service_id,
                clocks=clocks))

    async def emit(self, sla: CardSla, signal: Signal) -> None:
        clock = sla.targets.get(signal.target) if signal.target else None
        cycle = clock.cycle if clock else sla.reopened
        # The id is derived from what happened, so even a replayed decision is one event.
        event_id = uuid.uuid5(_SIGNAL_IDS, f"{sla.card_id}:{signal.kind}:{signal.target}:"
                                           f"{cycle}:{signal.due_at.isoformat()}")
        if signal.kind in TARGET_EVENTS:
            payload = TARGET_EVENTS[signal.kind](
                card_id=sla.card_id, number=sla.number, target=signal.target,
                deadline=signal.deadline or (clock.deadline if clock else None),
                at=signal.due_at, policy=sla.policy, service_id=sla.service_id)
        elif signal.kind == "completed":
            payload = SlaTargetCompleted(
                card_id=sla.card_id, number=sla.number, target=signal.target,
                met=bool(signal.met), started_at=signal.started_at, completed_at=signal.due_at,
                spent_seconds=signal.spent_seconds or 0.0,
                elapsed_seconds=max(0.0, (signal.due_at - signal.started_at).total_seconds()),
                paused_seconds=signal.paused_seconds or 0.0, cycle=signal.cycle or 1,
                policy=sla.policy, calendar=sla.calendar, service_id=sla.service_id)
        elif signal.kind == "reminder":
            assert sla.waiting_since is not None
            payload = SlaCustomerReminder(
                card_id=sla.card_id, number=sla.number, waiting_since=sla.waiting_since,
                days_waiting=(signal.due_at - sla.waiting_since).days,
                auto_close_at=sla.auto_close_at(), service_id=sla.service_id)
        else:
            assert sla.waiting_since is not None
            payload = SlaAutoClose(card_id=sla.card_id, number=sla.number,
                                   waiting_since=sla.waiting_since, service_id=sla.service_id)
        await self.uow.emit(payload, event_id=event_id)
        self.uow.after_commit(
            SIGNALS.labels(signal.kind, sla.service_id or "", signal.target or "").inc)

    # -- card events ---------------------------------------------------------------------

    async def card_created(self, card: CardSnapshot) -> None:
        # A card's events are handled in order and card.created is its first, so on the
        # message's first delivery the record is inserted blind; only a re-emitted
        # card.created (another event id) finds it there: its duplicate key fails this
        # attempt and the redelivery reads first.
        if not self.uow.first_delivery:
            sla, _ = await self.repo.record_for_card(card.card_id, self.uow.session)
            if sla is not None:
                return  # created already (a re-emitted event, or a later event made it)
        sla = await self.open_from(card, card.created_at)
        await self.save(sla, 0, [])

    async def card_moved(self, card: CardSnapshot) -> None:
        sla, version = await self.repo.record_for_card(card.card_id, self.uow.session)
        if sla is None:
            sla = await self.open_from(card, card.created_at)
        elif card.version <= sla.card_version:
            return  # an older state than the one we have: out of order, already applied
        policy, cal, _ = await self.policy_for(None, sla.policy)
        signals = sla.enter(StatusCategory(card.status_category), card.column_id,
                            card.updated_at, policy, cal)
        sla.card_version = card.version
        await self.save(sla, version, signals, policy=policy)

    async def card_updated(self, card: CardSnapshot, changed: tuple[str, ...]) -> None:
        sla, version = await self.repo.record_for_card(card.card_id, self.uow.session)
        if sla is None:
            await self.save(await self.open_from(card, card.created_at), 0, [])
            return
        if card.version <= sla.card_version:
            return
        sla.card_version = card.version
        # a board priority of the same level ("priority_key" alone) may have its own targets
        if {"priority", "priority_key", "service_id"} & set(changed):
            _, old_cal, _ = await self.policy_for(None, sla.policy)
            policy, cal, auto_close = await self.policy_for(card.service_id, card.sla_policy)
            sla.reprice(card.updated_at, policy, old_cal, cal, priority=card.priority,
                        priority_key=card.priority_key, service_id=card.service_id)
            sla.auto_close_after_days = auto_close
        await self.save(sla, version, [])

    async def public_comment(self, card_id: str, author_kind: str, at: datetime,
                             is_reply: bool) -> bool:
        """False when the card is not known yet (the caller retries later)."""
        sla, version = await self.repo.record_for_card(card_id, self.uow.session)
        if sla is None:
            return False
        policy, cal, _ = await self.policy_for(None, sla.policy)
        signals: list[Signal] = []
        if author_kind == "agent":
            signals = sla.agent_replied(at, policy, cal)
        elif author_kind == "customer" and is_reply:
            sla.customer_replied(at, policy, cal)
        else:
            return True
        await self.save(sla, version, signals, policy=policy)
        return True

    async def policy_edited(self, card_id: str, at: datetime) -> bool:
        """An admin changed the card's policy (or its calendar): re-price its open targets."""
        sla, version = await self.repo.record_for_card(card_id, self.uow.session)
        if sla is None or sla.closed_at is not None:
            return False
        old_cal = await self.repo.calendar(sla.calendar, self.uow.session) or cal_24x7()
        policy, cal, _ = await self.policy_for(None, sla.policy)
        sla.reprice(at, policy, old_cal, cal, reason=f"policy {policy.name} edited")
        await self.save(sla, version, [], policy=policy)
        return True

    # -- time ----------------------------------------------------------------------------

    async def fire_due(self, card_id: str, now: datetime, owner: str) -> list[Signal]:
        """Raise what is due on one claimed record; the lease owner check makes it once."""
        sla, version = await self.repo.record_for_card(card_id, self.uow.session)
        if sla is None:
            return []
        policy = await self.repo.policy(sla.policy, self.uow.session)
        signals = sla.due(now, policy.remind_after_days if policy else None)
        for signal in signals:
            sla.mark(signal, now)
        await self.save(sla, version, signals, lease_owner=owner, policy=policy)
        for signal in signals:
            if signal.kind in ("warning", "breached"):
                DETECTION_LAG.observe(max(0.0, (now - signal.due_at).total_seconds()))
        if signals:
            log.info("sla.fired", card_id=card_id, signals=[s.kind for s in signals],
                     lag=round((now - signals[0].due_at).total_seconds(), 3))
        return signals
