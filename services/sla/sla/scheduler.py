"""Raises due SLA signals: claims due records with a lease so any replica can take over.

Deadlines live in the store (`next_due_at`, indexed), never only in memory. Each
replica claims one due record at a time with a lease, fires it in a transaction that
also checks it still holds the lease and the record's version, and releases it. A
replica that dies holding a lease delays that record by at most `lease_seconds`; a
replica that loses a race aborts its transaction, so a signal is published once.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from desk_runtime.logging import get_logger
from desk_runtime.service import ServiceRuntime
from desk_runtime.unit_of_work import UnitOfWork
from desk_runtime.worker import Worker

from sla.commands import Engine
from sla.metrics import CLOCKS
from sla.repository import DUE_HINTS, SlaRepository, StaleRecord
from sla.settings import SlaSettings

log = get_logger(__name__)
REPRICE_POLL_SECONDS = 5.0
FAILURE_BACKOFF_MAX_SECONDS = 30.0


class Scheduler:
    def __init__(self, runtime: ServiceRuntime, settings: SlaSettings):
        self.runtime = runtime
        self.settings = settings
        self.repo = SlaRepository(runtime.db)
        self.owner = f"sla-{uuid.uuid4().hex[:12]}"
        self._firing: Worker | None = None
        self._wake_at: datetime | None = None
        self._failures = 0

    def _engine(self, uow: UnitOfWork) -> Engine:
        return Engine(uow, default_policy=self.settings.default_policy,
                      warn_share=self.settings.warn_share)

    def start(self) -> None:
        s = self.settings
        poll = min(s.scheduler_poll_seconds, s.scheduler_idle_max_seconds)
        self._wake_at = None
        self._firing = self.runtime.tasks.worker(
            "sla-scheduler", self._fire_round, idle_start=poll,
            idle_max=max(s.scheduler_idle_max_seconds, FAILURE_BACKOFF_MAX_SECONDS))
        self.runtime.tasks.worker("sla-gauges", self._gauge_round, critical=False,
                                  idle_max=max(s.gauge_refresh_seconds, 0.5))
        self.runtime.tasks.worker("sla-reprice", self._reprice_round,
                                  idle_max=max(REPRICE_POLL_SECONDS, s.scheduler_poll_seconds))
        # a card event committed here may have set a nearer deadline: look again now
        self.runtime.on_commit(self._after_commit)

    def _after_commit(self) -> None:
        hint = DUE_HINTS.take()
        if self._firing is not None and hint is not None and (
                self._wake_at is None or hint < self._wake_at):
            self._firing.wake()

    async def stop(self) -> None:
        await self.runtime.tasks.stop({"sla-scheduler", "sla-gauges", "sla-reprice"})

    async def _gauge_round(self) -> float:
        """Clock counts for Prometheus, apart from the firing loop so they never delay it."""
        try:
            for state, n in (await self.repo.count_clocks()).items():
                CLOCKS.labels(state).set(n)
        except Exception:
            log.exception("sla.gauge_error")
        return self.settings.gauge_refresh_seconds

    async def _reprice_round(self) -> float:
        """Re-price open clocks of edited policies, in batches, resumable after a crash."""
        try:
            lease = lambda: datetime.now(UTC) + timedelta(  # noqa: E731
                seconds=self.settings.lease_seconds)
            job = await self.repo.claim_reprice_job(self.owner, lease())
            if job is None:
                # jobs are rare (an admin edits a policy): look every few seconds
                return REPRICE_POLL_SECONDS
            # the edit may have been made on another replica: price with what is stored
            self.repo.forget_policy(job["_id"])
            after = job.get("after", "")
            while ids := await self.repo.open_cards_of_policy(job["_id"], after):
                for card_id in ids:
                    await self._reprice_one(card_id)
                after = ids[-1]
                if not await self.repo.advance_reprice_job(job, after, lease()):
                    return 0  # edited again: the job starts over with the newest policy
            await self.repo.finish_reprice_job(job)
            log.info("sla.policy_repriced", policy=job["_id"])
            return 0
        except Exception:
            log.exception("sla.reprice_error")
            return self.settings.scheduler_poll_seconds

    async def _reprice_one(self, card_id: str) -> None:
        for _ in range(5):
            try:
                await self.runtime.transact(
                    lambda uow: self._engine(uow).policy_edited(card_id, datetime.now(UTC)))
                return
            except StaleRecord:
                await asyncio.sleep(0.05)

    async def _fire_round(self) -> float:
        """Fire what is due, then say how long nothing will be (the worker sleeps that long
        unless a nearer deadline is committed here meanwhile)."""
        self._wake_at = None
        try:
            fired = await self.tick()
            self._failures = 0
            if fired:
                return 0
            sleep = await self._idle_seconds()
        except Exception:
            # the store may be away: keep the scheduler alive and look again soon
            self._failures += 1
            log.exception("sla.scheduler_error")
            return min(self.settings.scheduler_poll_seconds * 2 ** self._failures,
                       FAILURE_BACKOFF_MAX_SECONDS)
        self._wake_at = datetime.now(UTC) + timedelta(seconds=sleep)
        return sleep

    async def _idle_seconds(self) -> float:
        """Sleep until the earliest deadline, at most `scheduler_idle_max_seconds`.

        A deadline set by a card event in this process wakes the loop at once; one set by
        another replica is that replica's to fire, so a long sleep here misses nothing.
        """
        longest = self.settings.scheduler_idle_max_seconds
        earliest = await self.repo.earliest_due(datetime.now(UTC) + timedelta(seconds=longest))
        if earliest is None:
            return longest
        return min(longest, max(0.005, (earliest - datetime.now(UTC)).total_seconds()))

    async def tick(self, now: datetime | None = None, limit: int = 500) -> int:
        """Fire every record due by `now` (at most `limit`); returns how many were handled.

        Claims a small batch, fires its records concurrently (each in its own
        transaction), and repeats until nothing is due.
        """
        handled = 0
        while handled < limit:
            now_ = now or datetime.now(UTC)
            lease = now_ + timedelta(seconds=self.settings.lease_seconds)
            batch: list[str] = []
            while len(batch) < self.settings.fire_concurrency:
                card_id = await self.repo.claim_due_record(now_, self.owner, lease)
                if card_id is None:
                    break
                batch.append(card_id)
            if not batch:
                break
            handled += len(batch)
            await asyncio.gather(*(self._fire(c, now_) for c in batch))
        return handled

    async def _fire(self, card_id: str, now: datetime) -> None:
        try:
            await self.runtime.transact(
                lambda uow: self._engine(uow).fire_due(card_id, now, self.owner))
        except StaleRecord:
            # a card event or another replica changed it first; it will be due again
            log.info("sla.fire_raced", card_id=card_id)
        except Exception:
            log.exception("sla.fire_failed", card_id=card_id)
