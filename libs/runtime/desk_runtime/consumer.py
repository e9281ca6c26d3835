"""Idempotent bus consumers: manual ack after the effect is durable, poison to dead letters.

Each message is handled in one Mongo transaction that also records the event as
processed (`processed_events`), so a redelivered or duplicated event has no second
effect. A message that cannot be decoded or validated is moved to the queue's
dead-letter queue with its reason at once; one whose handler keeps failing is
retried with backoff and dead-lettered when it reaches the delivery limit. Either
way the queue keeps flowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from desk_contracts import Envelope, EventPayload
from desk_contracts.events import UnknownEvent, event_class
from desk_contracts.topology import DELIVERY_LIMIT, QueueSpec
from pydantic import ValidationError
from pymongo.errors import DuplicateKeyError

from desk_runtime.bus import Bus, decode_envelope
from desk_runtime.logging import bound_contextvars, get_logger
from desk_runtime.metrics import BUS_IN, CONSUMER_LAG, DEAD_LETTERED, HANDLER_SECONDS
from desk_runtime.unit_of_work import UnitOfWork

log = get_logger(__name__)

PROCESSED = "processed_events"

Handler = Callable[[UnitOfWork, EventPayload], Awaitable[None]]


class PermanentFailure(Exception):
    """The message can never succeed (e.g. refers to something that does not exist)."""


class Consumer:
    def __init__(self, runtime, spec: QueueSpec, handlers: dict[str, Handler]):
        self.runtime = runtime
        self.spec = spec
        self.handlers = handlers
        self.queue_name = runtime.topology.queue(spec)
        self._task: asyncio.Task | None = None
        self._channel = None

    @property
    def bus(self) -> Bus:
        return self.runtime.bus

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"consume-{self.queue_name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()

    async def _run(self) -> None:
        # Sequential per queue: keeps per-card event order and avoids write conflicts.
        self._channel = await self.bus.channel(prefetch=self.runtime.settings.prefetch)
        queue = await self._channel.get_queue(self.queue_name, ensure=False)
        async with queue.iterator() as messages:
            async for message in messages:
                try:
                    await self.handle(message)
                except asyncio.CancelledError:
                    raise
                except Exception:  # never let one message stop the consumer
                    log.exception("consumer.unexpected_error", queue=self.queue_name)
                    with contextlib.suppress(Exception):
                        await message.nack(requeue=True)

    async def handle(self, message: AbstractIncomingMessage) -> None:
        service = self.runtime.name
        try:
            envelope = decode_envelope(message.body)
        except (ValueError, ValidationError) as exc:
            await self._dead_letter(message, "malformed envelope", str(exc)[:500], "unknown")
            return
        with bound_contextvars(correlation_id=envelope.correlation_id,
                               event_id=str(envelope.event_id), event_type=envelope.type):
            handler = self.handlers.get(envelope.type)
            if handler is None:
                # Bound but not handled here (e.g. a newer version): nothing to do.
                BUS_IN.labels(service, self.queue_name, envelope.type, "ignored").inc()
                await message.ack()
                return
            try:
                payload = event_class(envelope.type, envelope.version).model_validate(
                    envelope.payload
                )
            except (UnknownEvent, ValidationError) as exc:
                await self._dead_letter(message, "invalid payload", str(exc)[:500], envelope.type)
                return
            started = time.perf_counter()
            try:
                duplicate = await self._process(envelope, payload, handler)
            except PermanentFailure as exc:
                await self._dead_letter(message, "refused", str(exc)[:500], envelope.type)
                return
            except Exception as exc:
                await self._retry_or_dead_letter(message, envelope, exc)
                return
            HANDLER_SECONDS.labels(service, self.queue_name, envelope.type).observe(
                time.perf_counter() - started
            )
            CONSUMER_LAG.labels(service, self.queue_name).set(
                max(0.0, (datetime.now(UTC) - envelope.occurred_at).total_seconds())
            )
            await message.ack()
            outcome = "duplicate" if duplicate else "processed"
            BUS_IN.labels(service, self.queue_name, envelope.type, outcome).inc()
            log.debug("consumer.handled", queue=self.queue_name, outcome=outcome)

    async def _process(self, envelope: Envelope, payload: EventPayload, handler: Handler) -> bool:
        """Apply the handler once; returns True when the event had been processed before."""
        runtime = self.runtime
        record_id = f"{self.spec.name}:{envelope.event_id}"
        if await runtime.db[PROCESSED].find_one({"_id": record_id}, {"_id": 1}):
            return True
        uow_ref: list[UnitOfWork] = []

        async def work(session) -> None:
            uow_ref.clear()
            # Written in the effect's transaction: a concurrent duplicate fails to commit.
            await runtime.db[PROCESSED].insert_one(
                {"_id": record_id, "type": envelope.type, "at": datetime.now(UTC)},
                session=session,
            )
            uow = UnitOfWork(runtime.db, session, runtime.settings.account_id,
                             correlation_id=envelope.correlation_id, causation=envelope)
            uow_ref.append(uow)
            await handler(uow, payload)

        try:
            async with runtime.client.start_session() as session:
                await session.with_transaction(work)
        except DuplicateKeyError:
            if await runtime.db[PROCESSED].find_one({"_id": record_id}, {"_id": 1}):
                return True
            raise
        if uow_ref and uow_ref[0].emitted:
            runtime.outbox_committed()
        return False

    async def _retry_or_dead_letter(self, message, envelope: Envelope, exc: Exception) -> None:
        count = int((message.headers or {}).get("x-delivery-count") or 0)
        if count + 1 >= DELIVERY_LIMIT:
            await self._dead_letter(message, "handler kept failing", repr(exc)[:500],
                                    envelope.type)
            return
        log.warning("consumer.retry", queue=self.queue_name, attempt=count + 1, error=repr(exc))
        BUS_IN.labels(self.runtime.name, self.queue_name, envelope.type, "retried").inc()
        # Back off before handing it back so a failing dependency is not hammered.
        await asyncio.sleep(min(0.2 * 2**count, 5.0))
        await message.nack(requeue=True)

    async def _dead_letter(self, message, reason: str, detail: str, event_type: str) -> None:
        """Keep the message, with why, in the queue's dead-letter queue; then ack it."""
        headers = dict(message.headers or {})
        headers.update({
            "x-dead-reason": reason,
            "x-dead-detail": detail,
            "x-original-queue": self.queue_name,
            "x-original-routing-key": message.routing_key or "",
            "x-dead-at": datetime.now(UTC).isoformat(),
        })
        await self.bus.dead_letter(
            aio_pika.Message(body=message.body, headers=headers,
                             content_type=message.content_type,
                             message_id=message.message_id,
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            self.queue_name,
        )
        await message.ack()
        DEAD_LETTERED.labels(self.runtime.name, self.queue_name, reason).inc()
        BUS_IN.labels(self.runtime.name, self.queue_name, event_type, "dead_lettered").inc()
        log.error("consumer.dead_lettered", queue=self.queue_name, reason=reason, detail=detail)
