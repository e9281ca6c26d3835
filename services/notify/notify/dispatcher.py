"""Sends recorded notifications: retries with backoff, gives up visibly, never blocks consuming.

Each channel has its own pool of workers claiming only that channel's deliveries, so a
slow SMTP relay or a rate-limited Slack webhook never holds up the others. A delivery
whose chat/webhook is paced or told to wait is put back with a later due time (no
attempt spent) instead of a worker sleeping on it. A worker takes a batch of due
deliveries at a time (`dispatch_batch`) and records the sends together (`deliver_batch`).

Deliveries the consumers record are usually handed over straight away: recorded already
claimed by this process (as a claim would leave them) and, once their transaction commits,
queued in memory for the channel's workers, which take them before looking in the store.
So a new notification costs no claim round trips at all. The store claim remains for
everything else: deliveries recorded while the hand-over queue was full or the process
stopping, retries, deferrals, and whatever another process left behind.

Any number of notify replicas may dispatch. A claim is fenced: each claim of a delivery
increments its `claim` token, and no one else can claim the delivery before its lease
(`claimed_until`, LEASE from the claim) runs out. Right before sending, the claimer makes
sure its claim still holds: while more than CLAIM_MARGIN of the lease it set is left, that
alone proves it (no one could have taken the delivery over); past that — a worker that
stalled (a long pause, a frozen VM), a batch whose earlier sends took long — it confirms
its token in the store (extending the claim by LEASE), so a replica that was taken over
does not send. What it writes afterwards (retry, deferral, failure) matches only its own
token. CLAIM_MARGIN outlasts a send (the senders' own timeouts); a pause of more than that
between the check and the send itself is the one window no store can fence. A process
that dies leaves its claims to run out: then any replica claims them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import socket
import time
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta

import httpx
from desk_contracts.channels import EMAIL
from desk_contracts.events import NotificationFailed, NotificationSent
from desk_runtime.logging import bound_contextvars, get_logger
from desk_runtime.mongo import bounded
from desk_runtime.service import ServiceRuntime
from desk_runtime.worker import Worker

from notify.domain.templates import MessageTemplate, Rendered, default_template, render
from notify.metrics import (
    EVENT_TO_SENT_SECONDS,
    NOTIFICATIONS,
    PENDING,
    RECORD_RETRIES,
    REQUEST_TO_ACK_SECONDS,
    SEND_SECONDS,
)
from notify.ratelimit import RateLimiter
from notify.repository import NotifyRepository, claimed_on_record
from notify.senders import SENDERS, RateLimited, Sender, SendError
from notify.settings import NotifySettings

log = get_logger(__name__)
LEASE = timedelta(seconds=60)
# a claim with more than this left of its lease holds without asking the store (a send
# takes far less: the SMTP timeout is 20 s)
CLAIM_MARGIN = LEASE / 2
# deliveries waiting in memory for a channel's workers; past this the planner records
# them unclaimed and the workers claim them from the store as before
HANDOFF_MAX = 200
RECORD_RETRY_START = 0.5
RECORD_RETRY_MAX = 10.0
SENT_EVENTS = uuid.UUID("6f1d6a52-8f0e-4d8e-9a43-2b7c1e5d9a10")  # notification.sent ids
# A channel that keeps answering "wait" is eventually treated as failing.
MAX_DEFERRALS = 50
# Pacing delays shorter than this are slept in the worker; longer ones defer the delivery.
SLEEP_BELOW_SECONDS = 0.05
TEMPLATE_CACHE_SECONDS = 5.0
IDLE_MAX_SECONDS = 10.0
GAUGE_SECONDS = 15.0
RELEASE_SECONDS = 3.0  # a stop waits this long at most to hand claimed deliveries back


class ChannelWorkers:
    """One channel's workers. A wake-up goes to one idle worker, not to all at once; when
    all are in a round, each is told to look again (a round that just found nothing might
    otherwise sleep past the delivery that woke it)."""

    def __init__(self) -> None:
        self.workers: list[Worker] = []
        self.busy: set[int] = set()

    def wake(self) -> None:
        idle = [w for i, w in enumerate(self.workers) if i not in self.busy]
        for worker in idle[:1] or self.workers:
            worker.wake()


class Dispatcher:
    def __init__(self, runtime: ServiceRuntime, settings: NotifySettings):
        self.runtime = runtime
        self.settings = settings
        self.repo = NotifyRepository(runtime.db)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.http = httpx.AsyncClient()
        self.senders: dict[str, Sender] = {
            channel: sender(settings, self.http) for channel, sender in SENDERS.items()}
        pacing = {channel: sender.pacing(settings) for channel, sender in SENDERS.items()}
        # per chat/webhook, and a channel's overall limit
        self.limiters = {channel: RateLimiter(p.per_key)
                         for channel, p in pacing.items() if p.per_key is not None}
        self.overall = {channel: RateLimiter(p.overall)
                        for channel, p in pacing.items() if p.overall is not None}
        self._channels = {channel: ChannelWorkers() for channel in self.senders}
        self._gauge: Worker | None = None
        self._stopping = False
        self._in_flight: dict[str, int | None] = {}  # delivery → its claim token
        self._handed: dict[str, deque[dict]] = {channel: deque() for channel in self.senders}
        self._releasing: set[asyncio.Task] = set()
        self._drained = asyncio.Event()
        self._drained.set()
        self._templates: dict[tuple[str, str], tuple[float, MessageTemplate | None]] = {}

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        tasks = self.runtime.tasks
        poll = min(self.settings.dispatch_poll_seconds, IDLE_MAX_SECONDS)
        for channel, pool in self._channels.items():
            for i in range(max(1, SENDERS[channel].workers(self.settings))):
                pool.workers.append(tasks.worker(
                    f"notify-{channel}-{i}", functools.partial(self._round, channel, i),
                    idle_start=poll, idle_max=IDLE_MAX_SECONDS))
        self._gauge = tasks.worker("notify-queue-gauge", self._gauge_round, critical=False,
                                   idle_max=GAUGE_SECONDS)

    async def stop(self) -> None:
        """Graceful: no new claims; a send in flight finishes and is recorded, so nothing is
        sent twice; whatever cannot finish in time is handed back untried."""
        self._stopping = True
        for pool in self._channels.values():
            for worker in pool.workers:
                worker.stop()
        if self._gauge is not None:
            self._gauge.stop()
        if self._in_flight:
            log.info("dispatch.draining", in_flight=len(self._in_flight))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), self.settings.stop_grace_seconds)
        names = {t.name for t in self.runtime.tasks.tasks if t.name.startswith("notify-")}
        await self.runtime.tasks.stop(names)
        # hand back what is still claimed (in flight, or handed over and not yet taken)
        claims = dict(self._in_flight)
        for queue in self._handed.values():
            claims.update((d["_id"], d.get("claim")) for d in queue)
            queue.clear()
        if claims:
            await self._release(claims)
        if self._releasing:
            await asyncio.wait(self._releasing, timeout=RELEASE_SECONDS)
        for sender in self.senders.values():
            with contextlib.suppress(Exception):
                await sender.close()
        await self.http.aclose()

    async def _release(self, claims: dict[str, int | None]) -> None:
        """Hand claimed deliveries back untried, all at once and within one bound: with the
        store away each release would otherwise wait out server selection in turn (its
        claim then simply expires, and another worker takes the delivery)."""
        releases = [self.repo.release_delivery(delivery_id, claim)
                    for delivery_id, claim in claims.items()]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*releases, return_exceptions=True),
                                   RELEASE_SECONDS)

    # --- hand-over from the consumers ---------------------------------------------------
    def claim_on_record(self, delivery: dict) -> dict:
        """`delivery` as the planner records it: claimed by this process if it will send it
        right after the commit (pending and due now, its channel known and its hand-over
        queue not full, the dispatcher not stopping), else as it is, for the workers to
        claim from the store."""
        queue = self._handed.get(delivery["channel"])
        now = datetime.now(UTC)
        if (self._stopping or queue is None or len(queue) >= HANDOFF_MAX
                or delivery.get("status") != "pending" or delivery["next_attempt_at"] > now):
            return delivery
        return claimed_on_record(delivery, self.worker, now + LEASE)

    def hand_over(self, deliveries: list[dict]) -> None:
        """Deliveries were recorded and their transaction committed (`uow.after_commit`):
        one worker of each of their channels looks at once. Those recorded claimed by this
        process are queued for its workers, which send them without claiming them in the
        store; the others (recorded unclaimed) the woken worker claims. A dispatcher that
        began to stop hands its own back instead (due at once, for any replica).

        The wake-up belongs to the transaction that recorded the deliveries, and happens
        only after it committed: a wake-up noted while it ran and spent by another
        transaction's commit would leave the worker asleep in its idle back-off (up to
        IDLE_MAX_SECONDS) with the mail waiting."""
        mine = [d for d in deliveries if d.get("claimed_by") == self.worker]
        if self._stopping:
            if mine:
                task = asyncio.ensure_future(self._release(
                    {d["_id"]: d.get("claim") for d in mine}))
                self._releasing.add(task)
                task.add_done_callback(self._releasing.discard)
            return
        for delivery in mine:
            self._handed[delivery["channel"]].append(delivery)
        self.wake({d["channel"] for d in deliveries})

    def _take_handed(self, channel: str) -> list[dict]:
        queue = self._handed[channel]
        return [queue.popleft() for _ in range(min(self.settings.dispatch_batch, len(queue)))]

    def wake(self, channels: set[str] | None = None) -> None:
        """Deliveries became due (committed: `hand_over`; an admin's retry): one worker of
        each channel looks, and keeps claiming while it finds work, instead of every worker
        at once."""
        for name, pool in self._channels.items():
            if channels is None or name in channels:
                pool.wake()

    def templates_changed(self) -> None:
        self._templates.clear()

    def _bounded(self):
        """A bound on one store call outside a transaction (a transaction has its own).
        The embedded store retries a plain write that meets another transaction's
        uncommitted change for as long as that transaction lives — one its client gave up
        on lives until the store reaps it — so an unbounded call could hold a worker (and
        the mail behind it) for good; bounded, it fails, and the worker backs off and
        tries again."""
        return bounded(self.settings.transaction_timeout_seconds)

    # --- one worker round ---------------------------------------------------------------
    async def _round(self, channel: str, index: int) -> float | None:
        busy = self._channels[channel].busy
        busy.add(index)
        try:
            return await self._claim_and_deliver(channel)
        finally:
            busy.discard(index)

    async def _claim_and_deliver(self, channel: str) -> float | None:
        """Send a batch of due deliveries of `channel` (0: look again at once), or say how
        long nothing falls due (None: nothing waits at all; the worker backs off).

        Handed-over deliveries come first. Once none are left the store is looked at only
        after the idle poll (`dispatch_poll_seconds`), not at once: in a burst the next
        commit wakes the worker with more handed over long before, and whatever waits in
        the store only (a retry, a deferral, another replica's leftovers) is found then."""
        if self._stopping:
            return None
        batch = self._take_handed(channel)
        handed = bool(batch)
        if not batch:
            try:
                with self._bounded():
                    batch = await self.repo.claim_due_deliveries(
                        self.worker, LEASE, channel, self.settings.dispatch_batch)
            except Exception as exc:  # noqa: BLE001 (store hiccup: log, back off, poll again)
                log.warning("dispatch.claim_failed", error=str(exc))
                return None
        if not batch:
            return await self._until_due(channel)
        for delivery in batch:
            self._in_flight[delivery["_id"]] = delivery.get("claim")
        self._drained.clear()
        try:
            await self.deliver_batch(batch)
        except Exception:  # the leases expire and other attempts follow
            log.exception("dispatch.unexpected_error")
        finally:
            for delivery in batch:
                self._in_flight.pop(delivery["_id"], None)
            if not self._in_flight:
                self._drained.set()
        if handed and not self._handed[channel]:
            return self.settings.dispatch_poll_seconds
        return 0

    async def _until_due(self, channel: str) -> float | None:
        """Nothing due: sleep until the next delivery falls due, or longer and longer while
        nothing waits at all (a recorded delivery wakes the worker at once)."""
        try:
            with self._bounded():
                due = await self.repo.next_due_at(channel)
        except Exception:  # noqa: BLE001
            return None
        if due is None:
            return None
        return max(0.01, (due - datetime.now(UTC)).total_seconds())

    async def _gauge_round(self) -> float:
        with contextlib.suppress(Exception), self._bounded():
            counts = await self.repo.pending_by_channel()
            for channel in self.senders:
                PENDING.labels(channel).set(counts.get(channel, 0))
        return GAUGE_SECONDS

    # --- deliveries ---------------------------------------------------------------------
    async def deliver(self, delivery: dict) -> None:
        await self.deliver_batch([delivery])

    async def deliver_batch(self, batch: list[dict]) -> None:
        """Send claimed deliveries, in order, and record those that went out together.

        A batch costs a handful of store statements whatever its size (a read of the
        suppressed addresses, one confirmation of the claims whose lease no longer proves
        them — usually none —, one transaction recording the sends), so under a burst the
        mail keeps pace with the cards instead of each message waiting its turn in the
        store several times. The price: a process killed (not stopped) mid-batch leaves up
        to a batch of sends unrecorded, sent again when their claims run out
        (`dispatch_batch`)."""
        with self._bounded():
            suppressed = await self.repo.suppressed_among(
                [d["recipient"] for d in batch
                 if d["channel"] == EMAIL and d.get("audience") == "customer"])
        ready = []
        for delivery in batch:
            with self._about(delivery):
                prepared = await self._prepare(delivery, suppressed)
            if prepared is not None:
                ready.append((delivery, *prepared))
        if not ready:
            return
        held = await self._holding([d for d, *_ in ready])
        sent: list[tuple[dict, str]] = []
        for delivery, sender, rendered, key in ready:
            with self._about(delivery):
                # checked again right before its own send: the batch's earlier sends may
                # have used up the margin (then the store confirms it)
                if delivery["_id"] not in held or not await self._holding([delivery]):
                    # taken over while this worker stalled (or settled by its new claimer):
                    # the delivery is someone else's now; sending it here would send it twice
                    NOTIFICATIONS.labels(delivery["channel"], delivery["kind"],
                                         "claim_lost").inc()
                    log.warning("dispatch.claim_lost", claim=delivery.get("claim"))
                    continue
                message_id = await self._send(delivery, sender, rendered, key)
            if message_id is not None:
                sent.append((delivery, message_id))
        if sent:
            await self._record_sent(sent)
        for delivery, _ in sent:
            self._observe_sent(delivery)

    def _claim_holds(self, delivery: dict) -> bool:
        """This process's claim provably still holds the delivery without asking the store:
        more than CLAIM_MARGIN is left of the lease it set (no one can claim it sooner)."""
        until = delivery.get("claimed_until")
        return (delivery.get("claimed_by") == self.worker and isinstance(until, datetime)
                and datetime.now(UTC) + CLAIM_MARGIN < until)

    async def _holding(self, deliveries: list[dict]) -> set[str]:
        """Which of `deliveries` this worker's claims still hold: by their lease, or else
        confirmed (and extended by LEASE) in the store, in one write for all."""
        unproven = [d for d in deliveries if not self._claim_holds(d)]
        until = datetime.now(UTC) + LEASE
        with self._bounded():
            confirmed = await self.repo.confirm_claims(unproven, LEASE) if unproven else set()
        for delivery in unproven:
            if delivery["_id"] in confirmed:
                delivery["claimed_until"] = until  # no later than the store's
        return ({d["_id"] for d in deliveries} - {d["_id"] for d in unproven}) | confirmed

    @staticmethod
    def _about(delivery: dict):
        return bound_contextvars(correlation_id=delivery.get("correlation_id"),
                                 notification_id=delivery["_id"])

    async def _prepare(self, delivery: dict, suppressed: set[str]
                       ) -> tuple[Sender, Rendered, str | None] | None:
        """What sending needs (sender, rendered message, pacing key), or None when the
        delivery was settled instead (suppressed, no sender, broken template, deferred)."""
        channel = delivery["channel"]
        if channel == EMAIL and delivery.get("audience") == "customer" and \
                (delivery.get("recipient") or "").lower() in suppressed:
            await self._finish(delivery, "suppressed", "address bounced; suppressed")
            return None
        sender = self.senders.get(channel)
        if sender is None:
            await self._failed(delivery, SendError(f"no sender for {channel!r}", permanent=True))
            return None
        try:
            rendered = await self.render(delivery)
        except Exception as exc:  # noqa: BLE001 (whatever breaks a template fails it)
            await self._failed(delivery, SendError(f"template: {exc}", permanent=True))
            return None
        key = sender.rate_key(delivery)
        if key is not None and not await self._pace(delivery, key):
            return None
        return sender, rendered, key

    async def _send(self, delivery: dict, sender: Sender, rendered: Rendered,
                    key: str | None) -> str | None:
        """The message id of a send that went out, or None (deferred, retried or failed)."""
        channel = delivery["channel"]
        started = time.perf_counter()
        try:
            message_id = await sender.send(delivery, rendered)
        except RateLimited as exc:
            if key is not None:
                self.limiters[channel].block(key, exc.retry_after)
            await self._defer(delivery, exc.retry_after, str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 (unknown errors are transient: retried)
            SEND_SECONDS.labels(channel).observe(time.perf_counter() - started)
            await self._failed(delivery, exc)
            return None
        SEND_SECONDS.labels(channel).observe(time.perf_counter() - started)
        return message_id

    @staticmethod
    def _observe_sent(delivery: dict) -> None:
        channel, kind = delivery["channel"], delivery["kind"]
        NOTIFICATIONS.labels(channel, kind, "sent").inc()
        log.info("notification.sent", kind=kind, channel=channel,
                 correlation_id=delivery.get("correlation_id"), notification_id=delivery["_id"])
        event_at = delivery.get("event_at")
        if isinstance(event_at, datetime):
            EVENT_TO_SENT_SECONDS.labels(channel, kind).observe(
                max((datetime.now(UTC) - event_at).total_seconds(), 0.0))
        received = (delivery.get("context") or {}).get("request_received_at")
        if kind == "acknowledgment" and received:
            REQUEST_TO_ACK_SECONDS.labels(channel).observe(max(
                (datetime.now(UTC) - datetime.fromisoformat(received)).total_seconds(), 0.0))

    async def _pace(self, delivery: dict, key: str) -> bool:
        """Take a send slot for this chat/webhook (and the channel's overall one) or defer."""
        channel = delivery["channel"]
        limiter = self.limiters[channel]
        while (delay := limiter.reserve(key)) > 0:
            if delay > SLEEP_BELOW_SECONDS:
                await self._defer(delivery, delay, f"paced: {key.split(':')[0]}")
                return False
            await asyncio.sleep(delay)  # a few ms: cheaper than putting it back
        overall = self.overall.get(channel)
        if overall is not None:
            # a channel's overall limit only ever costs a few milliseconds of waiting
            while (delay := overall.reserve("global")) > 0:
                await asyncio.sleep(delay)
        return True

    async def _defer(self, delivery: dict, seconds: float, reason: str) -> None:
        NOTIFICATIONS.labels(delivery["channel"], delivery["kind"], "rate_limited").inc()
        if delivery.get("deferrals", 0) >= MAX_DEFERRALS:
            await self._failed(delivery, SendError(f"kept being rate limited: {reason}"))
            return
        with self._bounded():
            await self.repo.defer_delivery(
                delivery["_id"], datetime.now(UTC) + timedelta(seconds=seconds), reason,
                delivery.get("claim"))

    async def render(self, delivery: dict) -> Rendered:
        key = (delivery["kind"], delivery.get("language") or "en")
        cached = self._templates.get(key)
        if cached is None or cached[0] < time.monotonic():
            custom = await self.repo.custom_template(*key)
            cached = (time.monotonic() + TEMPLATE_CACHE_SECONDS, custom)
            self._templates[key] = cached
        template = cached[1] or default_template(*key)
        return render(template, delivery.get("context") or {})

    # --- outcomes -----------------------------------------------------------------------
    async def _sent(self, delivery: dict, message_id: str) -> None:
        await self._record_sent([(delivery, message_id)])

    async def _record_sent(self, sent: list[tuple[dict, str]]) -> None:
        """Record sends that went out, in one transaction. They must not be lost: an
        unrecorded send is sent again once its claim runs out. So a busy or absent store is
        waited out (the claims held meanwhile), and a record retried after a lost answer is
        recognised (the delivery is already `sent`; its event has one id whatever the
        attempt)."""
        async def mark(uow) -> None:
            # a time of each attempt's own: it tells this record's writes from those of
            # an earlier attempt that committed although its answer was lost
            fresh = await self.repo.mark_sent_many([(d["_id"], m) for d, m in sent],
                                                   datetime.now(UTC), uow.session)
            for delivery, message_id in sent:
                if delivery["_id"] not in fresh:
                    continue
                await uow.emit(NotificationSent(
                    notification_id=delivery["_id"], cause_event_id=delivery["cause_event_id"],
                    channel=delivery["channel"], recipient=delivery["recipient"],
                    kind=delivery["kind"], card_id=delivery.get("card_id"),
                    message_id=message_id,
                ), event_id=uuid.uuid5(SENT_EVENTS, delivery["_id"]),
                    correlation_id=delivery.get("correlation_id"))

        correlation = sent[0][0].get("correlation_id") if len(sent) == 1 else None
        delay = RECORD_RETRY_START
        while True:
            try:
                await self.runtime.transact(mark, correlation_id=correlation, kind="dispatch")
                break
            except Exception as exc:  # noqa: BLE001 (whatever it was, the sends happened)
                RECORD_RETRIES.inc()
                log.warning("dispatch.record_retry", error=repr(exc)[:300], retry_in=delay,
                            deliveries=len(sent))
                with contextlib.suppress(Exception), self._bounded():
                    await self.repo.hold_claims([d for d, _ in sent], self.worker, LEASE)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECORD_RETRY_MAX)

    async def _finish(self, delivery: dict, status: str, reason: str) -> None:
        with self._bounded():
            await self.repo.mark_settled(delivery["_id"], status, reason,
                                         delivery.get("claim"))
        NOTIFICATIONS.labels(delivery["channel"], delivery["kind"], status).inc()

    async def _failed(self, delivery: dict, exc: Exception) -> None:
        attempts = delivery.get("attempts", 1)
        permanent = isinstance(exc, SendError) and exc.permanent
        error = f"{type(exc).__name__}: {exc}"[:500]
        if not permanent and attempts < self.settings.max_attempts:
            delay = min(self.settings.retry_base_seconds * 2 ** (attempts - 1),
                        self.settings.retry_max_seconds) * random.uniform(0.9, 1.1)
            with self._bounded():
                await self.repo.schedule_retry(delivery["_id"], error,
                                               datetime.now(UTC) + timedelta(seconds=delay),
                                               delivery.get("claim"))
            NOTIFICATIONS.labels(delivery["channel"], delivery["kind"], "retried").inc()
            log.warning("notification.retry", error=error, attempts=attempts, delay=delay)
            return

        async def mark(uow) -> None:
            await self.repo.mark_failed(delivery["_id"], error, datetime.now(UTC), uow.session,
                                        delivery.get("claim"))
            await uow.emit(NotificationFailed(
                notification_id=delivery["_id"], cause_event_id=delivery["cause_event_id"],
                channel=delivery["channel"], recipient=delivery["recipient"],
                kind=delivery["kind"], card_id=delivery.get("card_id"), error=error,
            ))

        await self.runtime.transact(mark, correlation_id=delivery.get("correlation_id"))
        NOTIFICATIONS.labels(delivery["channel"], delivery["kind"], "failed").inc()
        log.error("notification.failed", error=error, attempts=attempts)
