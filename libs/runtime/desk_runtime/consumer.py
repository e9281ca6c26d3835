"""Idempotent consumers as FastStream subscribers: ack after commit, poison to dead letters.

FastStream delivers, reconnects and re-subscribes; what is ours is the policy around a
handler, written once here:

* **ack after commit** — subscribers run with `AckPolicy.MANUAL`; a message is acked only
  when its effect and its processed-event record (`processed_events`) committed together,
  so a redelivered or duplicated event has no second effect;
* **dead letters with a reason** — `DeadLetterMiddleware` moves a message that cannot be
  decoded, fails its contract or is refused by its handler (`PermanentFailure`) to the
  queue's dead-letter queue with `x-dead-reason`/`x-dead-detail` headers, then acks it;
* **transient is not poison** — a store or broker outage never counts toward the
  delivery limit: the handler is retried in place with backoff until the store is back;
  only a handler that keeps failing for another reason is dead-lettered at the limit;
* **per-card order** — events of one card are handled one at a time (in arrival order)
  while events of different cards run in parallel, up to the channel's prefetch;
* **nothing to do, no transaction** — a handler marked `only_when(predicate)` does
  nothing for an event its predicate rejects (decided from the event alone, e.g. an
  internal note where only public comments matter): such a message is acknowledged
  without touching the store, counted with outcome `skipped`;
* **correlation** — `CorrelationMiddleware` binds the envelope's correlation id into
  structlog's context for everything the handler logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import aio_pika.exceptions as amqp_errors
import aiormq.exceptions as aiormq_errors
from desk_contracts import Envelope, EventPayload
from desk_contracts.events import UnknownEvent, event_class
from desk_contracts.topology import DELIVERY_LIMIT, PARTITION_HEADER, QueueSpec, Topology
from faststream import BaseMiddleware
from faststream.middlewares import AckPolicy
from faststream.rabbit import Channel, RabbitBroker, RabbitQueue
from faststream.rabbit.schemas.queue import QueueType
from faststream.rabbit.annotations import RabbitMessage
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure, PyMongoError

from desk_runtime.bus import CORRELATION_HEADER, event_queue, partition_key
from desk_runtime.logging import bound_contextvars, get_logger
from desk_runtime.mongo import StoreUnavailable
from desk_runtime.metrics import (
    BUS_IN,
    CONSUMER_LAG,
    DEAD_LETTERED,
    HANDLER_SECONDS,
    TRANSIENT_WAITS,
)
from desk_runtime.unit_of_work import UnitOfWork

log = get_logger(__name__)

PROCESSED = "processed_events"
# a message waiting out a store outage looks again at most this long after the store is back
TRANSIENT_BACKOFF_MAX = 10.0

Handler = Callable[[UnitOfWork, EventPayload], Awaitable[None]]


def only_when(predicate: Callable[[Any], bool]) -> Callable[[Handler], Handler]:
    """Declare that a handler does nothing for an event `predicate(event)` is false for.

    The consumer then acknowledges such an event without a transaction: no
    processed-event record, no reads, no commit (a no-op needs no idempotency). The
    predicate sees only the validated payload and must mirror the handler's own early
    returns, which stay in the handler (a direct call still behaves the same).
    """

    def mark(handler: Handler) -> Handler:
        handler.only_when = predicate  # type: ignore[attr-defined]
        return handler

    return mark


def relevance(handler: Any) -> Callable[[Any], bool] | None:
    """The handler's `only_when` predicate (looked up through `functools.partial`)."""
    while handler is not None:
        predicate = getattr(handler, "only_when", None)
        if predicate is not None:
            return predicate
        handler = getattr(handler, "func", None)
    return None


class PermanentFailure(Exception):
    """The message can never succeed (e.g. refers to something that does not exist)."""


class DeadLetter(Exception):
    """Raised inside a consumer to park the message with a reason (caught by the middleware)."""

    def __init__(self, reason: str, detail: str, event_type: str = "unknown"):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.event_type = reason, detail, event_type


def is_transient(exc: BaseException) -> bool:
    """Infrastructure away (store or broker), not a fault of the message."""
    if isinstance(exc, ConnectionFailure | StoreUnavailable):  # store unreachable
        return True
    if isinstance(exc, PyMongoError) and exc.timeout:  # our bound on a transaction ran out
        return True
    if isinstance(exc, PyMongoError) and (
            exc.has_error_label("TransientTransactionError")
            or exc.has_error_label("RetryableWriteError")
            or exc.has_error_label("UnknownTransactionCommitResult")):
        return True
    return isinstance(exc, ConnectionError | amqp_errors.AMQPConnectionError
                      | amqp_errors.ChannelInvalidStateError
                      | aiormq_errors.ChannelInvalidStateError)


class Turn:
    """A message's place in its card's line: it waits for the message before it."""

    __slots__ = ("_locks", "key", "_before", "_mine")

    def __init__(self, locks: KeyedLocks, key: str, before: asyncio.Future | None,
                 mine: asyncio.Future):
        self._locks, self.key, self._before, self._mine = locks, key, before, mine

    async def wait(self) -> None:
        if self._before is not None and not self._before.done():
            await asyncio.shield(self._before)

    def release(self) -> None:
        if not self._mine.done():
            self._mine.set_result(None)
        if self._locks.tails.get(self.key) is self._mine:
            del self._locks.tails[self.key]


class KeyedLocks:
    """Per-card lines: a message takes its place when it is received, in delivery order.

    The place is reserved synchronously as the message arrives (a middleware's
    `on_receive`), before anything can suspend, so the order of the line is the order
    the broker delivered in; the handler then waits for the message before it.
    """

    def __init__(self) -> None:
        self.tails: dict[str, asyncio.Future] = {}

    def reserve(self, key: str) -> Turn:
        mine = asyncio.get_running_loop().create_future()
        before = self.tails.get(key)
        self.tails[key] = mine
        return Turn(self, key, before, mine)


_TURN: ContextVar[Turn | None] = ContextVar("desk_turn", default=None)


def ordering_middleware(runtime) -> type[BaseMiddleware]:
    """Reserves each message's place in its card's line as it is received."""

    class OrderingMiddleware(BaseMiddleware):
        async def on_receive(self) -> None:
            _TURN.set(None)
            raw = self.msg
            queue = getattr(self.context.get("handler_"), "queue", None)
            if getattr(queue, "name", None) not in runtime.ordered_queues:
                return
            # the key the publisher put in the header (and partitioned by); read from the
            # body only for a message published without it (decoding every body twice
            # was 7 % of boards' time in a burst)
            key = (getattr(raw, "headers", None) or {}).get(PARTITION_HEADER)
            if isinstance(key, bytes):
                key = key.decode("utf-8", "replace")
            if not isinstance(key, str) or not key:
                try:
                    body = json.loads(raw.body)
                    key = partition_key(body.get("payload") or {}, str(body.get("event_id")))
                except (ValueError, AttributeError, TypeError):
                    return  # not an envelope: the dead-letter middleware deals with it
            _TURN.set(runtime.card_locks.reserve(key))

        async def after_processed(self, exc_type=None, exc_val=None, exc_tb=None) -> bool:
            turn = _TURN.get()
            if turn is not None:
                turn.release()
            return False

    return OrderingMiddleware


class CorrelationMiddleware(BaseMiddleware):
    """Binds the message's correlation id (and id/type) into structlog's context."""

    async def consume_scope(self, call_next, msg):
        headers = msg.headers or {}
        with bound_contextvars(correlation_id=headers.get(CORRELATION_HEADER)
                               or msg.correlation_id,
                               event_id=msg.message_id,
                               routing_key=getattr(msg.raw_message, "routing_key", None)):
            return await call_next(msg)


def dead_letter_middleware(runtime) -> type[BaseMiddleware]:
    """A middleware class bound to `runtime` (FastStream builds one instance per message)."""

    class DeadLetterMiddleware(BaseMiddleware):
        """Parks a message that can never succeed, with why, in its queue's dead letters."""

        async def consume_scope(self, call_next, msg):
            subscriber = self.context.get("handler_")
            queue = getattr(getattr(subscriber, "queue", None), "name", None) or "unknown"
            # the partitions of a queue share its dead-letter queue (routing key: its name)
            queue = runtime.topology.logical_queue(queue)
            try:
                return await call_next(msg)
            except DeadLetter as exc:
                await park(runtime, msg, queue, exc.reason, exc.detail, exc.event_type)
            except (ValidationError, ValueError) as exc:  # body is not an envelope
                await park(runtime, msg, queue, "malformed envelope", str(exc)[:500], "unknown")
            return None

    return DeadLetterMiddleware


async def park(runtime, msg, queue_name: str, reason: str, detail: str,
               event_type: str) -> None:
    """Keep the message, with why, in its queue's dead-letter queue; then ack it."""
    raw = msg.raw_message
    headers = dict(raw.headers or {})
    headers.update({
        "x-dead-reason": reason,
        "x-dead-detail": detail,
        "x-original-queue": queue_name,
        "x-original-routing-key": raw.routing_key or "",
        "x-dead-at": datetime.now(UTC).isoformat(),
    })
    await runtime.bus.dead_letter(raw.body, queue_name, headers, raw.content_type,
                                  raw.message_id)
    await msg.ack()
    DEAD_LETTERED.labels(runtime.name, queue_name, reason).inc()
    BUS_IN.labels(runtime.name, queue_name, event_type, "dead_lettered").inc()
    log.error("consumer.dead_lettered", queue=queue_name, reason=reason, detail=detail)


class Consumer:
    """One service queue: a FastStream subscriber per partition this replica owns, each
    applying the policy above."""

    def __init__(self, runtime, spec: QueueSpec, handlers: dict[str, Handler]):
        self.runtime = runtime
        self.spec = spec
        self.handlers = handlers
        self.relevant = {t: p for t, h in handlers.items() if (p := relevance(h)) is not None}
        self.queue_name = runtime.topology.queue(spec)
        self._stop = asyncio.Event()  # the service is stopping
        # a subscriber per partition this replica owns (desk_runtime.membership decides
        # which), created when first owned and started/stopped as ownership moves; the
        # partitions stay single-active-consumer queues, so even a replica that has not
        # let go yet never consumes a partition beside its new owner
        self.subscribers: dict[int, Any] = {}
        # one line per card per process, shared by all its queues: events of one card are
        # handled one at a time even when they arrive on different queues (their
        # transactions would otherwise conflict on the card and retry each other)
        runtime.ordered_queues.update(runtime.topology.partition_queues(spec))

    def consuming(self, index: int) -> bool:
        """This process's consumer is on partition `index` (and its channel is open)."""
        s = self.subscribers.get(index)
        return bool(s is not None and s.running and s._queue_obj is not None
                    and s._consumer_tag and not s._queue_obj.channel.is_closed)

    def started(self, index: int) -> bool:
        """A subscriber runs for partition `index` (its consumer may be waiting for the
        connection to come back: aio-pika restores it then, so it is not started again)."""
        s = self.subscribers.get(index)
        return bool(s is not None and s.running)

    async def take_partition(self, index: int) -> None:
        """Start consuming partition `index` (FastStream subscriber started at runtime)."""
        sub = self.subscribers.get(index)
        if sub is None:
            sub = self.subscribers[index] = subscribe(
                self.runtime.bus.broker, self.runtime.topology, self.spec, partition=index,
                prefetch=self.runtime.settings.prefetch, consume=self.consume)
        if not sub.running:
            await sub.start()

    async def release_partition(self, index: int) -> None:
        """Stop consuming partition `index` after what the broker delivered is acknowledged.

        The broker consumer is cancelled first (nothing more is delivered; what was is
        still dispatched to the handler), then the messages in hand finish (each acked or
        handed back), then the subscriber stops. FastStream's own `stop()` alone would
        stop handling before cancelling, leaving prefetched messages unacknowledged in a
        channel that stays open — so those would wait, and the next owner would overtake
        them.
        """
        sub = self.subscribers.get(index)
        if sub is None or not sub.running:
            return
        queue, tag = sub._queue_obj, sub._consumer_tag
        if queue is not None and tag:
            # on a closed channel the broker took back what it had delivered; the cancel
            # (which fails to reach it) still keeps aio-pika from restoring the consumer
            # when the connection comes back
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
            sub._consumer_tag = None
        # deliveries read before the cancel-ok reach the handler through two task hops
        quiet = 0
        while quiet < 3:
            await asyncio.sleep(0.02)
            quiet = quiet + 1 if sub.lock.qsize == 0 else 0
        await sub.stop()

    def stopping(self) -> None:
        self._stop.set()

    async def consume(self, envelope: Envelope) -> None:
        # The message comes from the broker's context, not as a `RabbitMessage` parameter:
        # FastDepends resolves such a context parameter with a synchronous call it runs in
        # a worker thread, a thread hand-off on every message (9 % of boards' time in a
        # burst, by a profile).
        message: RabbitMessage = self.runtime.bus.broker.context.get_local("message")
        with bound_contextvars(correlation_id=envelope.correlation_id,
                               event_id=str(envelope.event_id), event_type=envelope.type):
            turn = _TURN.get()
            if turn is not None:
                await turn.wait()  # the card's earlier events first
            try:
                await self.handle(envelope, message)
            finally:
                if turn is not None:
                    turn.release()

    async def handle(self, envelope: Envelope, message) -> None:
        service = self.runtime.name
        handler = self.handlers.get(envelope.type)
        if handler is None:
            # Bound but not handled here (e.g. a newer version): nothing to do.
            BUS_IN.labels(service, self.queue_name, envelope.type, "ignored").inc()
            await message.ack()
            return
        try:
            payload = event_class(envelope.type, envelope.version).model_validate(
                envelope.payload)
        except (UnknownEvent, ValidationError) as exc:
            raise DeadLetter("invalid payload", str(exc)[:500], envelope.type) from None
        relevant = self.relevant.get(envelope.type)
        if relevant is not None and not relevant(payload):
            await message.ack()
            BUS_IN.labels(service, self.queue_name, envelope.type, "skipped").inc()
            return
        started = time.perf_counter()
        waited = 0
        while True:
            try:
                duplicate = await self._process(envelope, payload, handler,
                                                attempt=delivery_count(message))
                break
            except PermanentFailure as exc:
                raise DeadLetter("refused", str(exc)[:500], envelope.type) from None
            except Exception as exc:
                if is_transient(exc) and not self._stop.is_set():
                    # the store (or broker) is away: wait for it, the message is not at fault
                    delay = min(0.5 * 2 ** waited, TRANSIENT_BACKOFF_MAX)
                    waited += 1
                    TRANSIENT_WAITS.labels(service, self.queue_name).inc()
                    log.warning("consumer.store_unavailable", queue=self.queue_name,
                                retry_in=delay, error=repr(exc)[:300])
                    with contextlib.suppress(TimeoutError):  # a stop ends the wait at once
                        await asyncio.wait_for(self._stop.wait(), delay)
                    if not self._stop.is_set():
                        continue
                if is_transient(exc):
                    # shutting down mid-outage: hand it back without spending a delivery
                    await message.nack(requeue=True)
                    return
                await self._retry_or_dead_letter(message, envelope, exc)
                return
        HANDLER_SECONDS.labels(service, self.queue_name, envelope.type).observe(
            time.perf_counter() - started)
        CONSUMER_LAG.labels(service, self.queue_name).set(
            max(0.0, (datetime.now(UTC) - envelope.occurred_at).total_seconds()))
        await message.ack()
        outcome = "duplicate" if duplicate else "processed"
        BUS_IN.labels(service, self.queue_name, envelope.type, outcome).inc()
        log.debug("consumer.handled", queue=self.queue_name, outcome=outcome)

    async def _process(self, envelope: Envelope, payload: EventPayload, handler: Handler,
                       *, attempt: int = 0) -> bool:
        """Apply the handler once (its effect, its processed-event record and the events
        it emits in one transaction, maybe shared with other events: group_commit.py);
        returns True when the event had been processed before."""
        return await self.runtime.group_commit.process(
            f"{self.spec.name}:{envelope.event_id}", envelope, payload, handler,
            attempt=attempt, urgent=self.spec.urgent)

    async def _retry_or_dead_letter(self, message, envelope: Envelope, exc: Exception) -> None:
        count = delivery_count(message)
        if count + 1 >= DELIVERY_LIMIT:
            raise DeadLetter("handler kept failing", repr(exc)[:500], envelope.type)
        log.warning("consumer.retry", queue=self.queue_name, attempt=count + 1, error=repr(exc))
        BUS_IN.labels(self.runtime.name, self.queue_name, envelope.type, "retried").inc()
        # Back off before handing it back so a failing handler is not spun.
        await asyncio.sleep(min(0.2 * 2 ** count, 5.0))
        await message.nack(requeue=True)


def delivery_count(message) -> int:
    """Earlier deliveries of this message (the quorum queue's `x-delivery-count`)."""
    return int((message.raw_message.headers or {}).get("x-delivery-count") or 0)


def subscribe(broker: RabbitBroker, topology: Topology, spec: QueueSpec, *, prefetch: int,
              consume: Callable[..., Awaitable[None]], partition: int | None = None):
    """Register `consume` as the FastStream subscriber of one partition of `spec`'s queue
    (manual ack). Without a partition it describes the logical queue (for the AsyncAPI
    document, whose readers publish to the exchange and never see partitions)."""
    if partition is None:
        queue = RabbitQueue(topology.queue(spec), queue_type=QueueType.QUORUM, durable=True,
                            arguments=topology.queue_arguments(spec))
    else:
        queue = event_queue(topology, spec, partition)
    subscriber = broker.subscriber(
        queue,
        channel=Channel(prefetch_count=prefetch),
        ack_policy=AckPolicy.MANUAL,
        no_reply=True,
        title=f"{spec.name}:consume",
        description=(f"{spec.description} Bound to: {', '.join(spec.bindings)}. Consumed "
                     f"from {topology.partitions} partitions `{spec.name}.p<i>` (quorum, single "
                     f"active consumer) behind the consistent-hash exchange `{spec.name}`, "
                     f"keyed by the `x-partition-key` header (the card)."),
    )
    subscriber(consume)
    return subscriber
