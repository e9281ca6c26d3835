"""A service's runtime: its store, its FastStream broker, outbox relay, consumers, tasks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from desk_contracts import Envelope
from desk_contracts.topology import Topology, queue_spec
import pymongo
from faststream.rabbit.prometheus import RabbitPrometheusMiddleware
from opentelemetry.trace import TracerProvider
from prometheus_client import REGISTRY
from pymongo.asynchronous.database import AsyncDatabase

from desk_runtime.bus import Bus
from desk_runtime.group_commit import GroupCommit
from desk_runtime.lease import Leases
from desk_runtime.consumer import (
    PROCESSED,
    Consumer,
    CorrelationMiddleware,
    Handler,
    KeyedLocks,
    dead_letter_middleware,
    ordering_middleware,
)
from desk_runtime.logging import LevelGatedLogger, configure_logging, get_logger
from desk_runtime.membership import PartitionAssignment
from desk_runtime.metrics import STORE_TRANSACTIONS
from desk_runtime.mongo import (
    create_client,
    in_transaction,
    ping,
    store_unavailable_stops_retries,
)
from desk_runtime.outbox import IDLE_POLL_MAX, OutboxRelay, ensure_outbox_indexes
from desk_runtime.settings import ServiceSettings
from desk_runtime.tasks import BackgroundTasks
from desk_runtime.tracing import Tracing
from desk_runtime.unit_of_work import UnitOfWork

T = TypeVar("T")
log = get_logger(__name__)

READY_TIMEOUT = 0.8
# Stopping (SIGTERM): how long each step may take, so a stop ends within seconds even when
# the store and the broker are gone (an orchestrator kills a process that overstays).
STOP_PING_SECONDS = 1.0  # is the store there at all? (decides the two below)
STOP_GRACE_WITHOUT_STORE = 2.0  # in-flight handlers, when none of them can commit
STOP_STORE_SECONDS = 3.0  # every farewell write together (leases, member record, marks)
STOP_CLIENT_SECONDS = 2.0  # closing the store client (it ends its sessions)
STOP_STORE_SECONDS_WITHOUT_STORE = 0.5  # each of the two when the store did not answer
STOP_TRACING_SECONDS = 5.0  # exporting buffered spans
STOP_STEP_SLACK = 1.0  # a step's wall-clock bound over its own budget
_FASTSTREAM_METRICS: RabbitPrometheusMiddleware | None = None


def faststream_metrics() -> RabbitPrometheusMiddleware:
    """FastStream's own Prometheus middleware, once per process (its metrics are global)."""
    global _FASTSTREAM_METRICS
    if _FASTSTREAM_METRICS is None:
        _FASTSTREAM_METRICS = RabbitPrometheusMiddleware(registry=REGISTRY, app_name="desk")
    return _FASTSTREAM_METRICS


class ServiceRuntime:
    def __init__(self, name: str, settings: ServiceSettings, *,
                 tracer_provider: TracerProvider | None = None):
        self.name = name
        self.settings = settings
        # traces: off unless an OTLP endpoint is set or a provider handed in (tests)
        self.tracing = Tracing(name, settings, tracer_provider)
        self.topology = Topology(settings.bus_namespace, settings.bus_partitions)
        self.client = create_client(settings.mongo_url, app_name=f"desk-{name}")
        self.db: AsyncDatabase = self.client[settings.database_name(name)]
        self.bus = Bus(settings.amqp_url, self.topology, name, middlewares=(
            ordering_middleware(self), *self.tracing.broker_middlewares(),
            faststream_metrics(), CorrelationMiddleware,
            dead_letter_middleware(self)),
            logger=LevelGatedLogger("faststream"))
        self.relay = OutboxRelay(self.db, self.bus, name, settings.outbox_poll_seconds)
        # what this process commits is left to it for this long (then any relay's fallback)
        self.committer_lease = timedelta(seconds=settings.outbox_committer_lease_seconds)
        self.tasks = BackgroundTasks(name)
        # a turn in the store: at most `store_transactions` transactions at once
        self.store_slots = asyncio.Semaphore(settings.store_transactions)
        # consumed events waiting for the store go to it together
        self.group_commit = GroupCommit(self, batch=settings.consumer_batch,
                                        transactions=settings.consumer_transactions)
        # singleton work (one replica at a time) takes a lease from here
        self.leases = Leases(self.db, name, settings.lease_seconds)
        self.consumers: list[Consumer] = []
        # which partitions of its queues this replica consumes, agreed with the others
        self.assignment = PartitionAssignment(name, self.db, self.leases,
                                              self.topology.partitions, self.consumers)
        self.card_locks = KeyedLocks()
        self.ordered_queues: set[str] = set()
        self._handlers: dict[str, dict[str, Handler]] = {}
        # extra readiness checks a service adds (e.g. intake: its catalog copy is loaded)
        self.readiness: dict[str, Callable[[], Awaitable[bool]]] = {}
        self._bus_started = asyncio.Event()
        self._after_bus: list[Callable[[], Awaitable[None]]] = []
        self._commit_listeners: list[Callable[[], None]] = []

    def on(self, purpose: str, event_type: str) -> Callable[[Handler], Handler]:
        """Register a handler for `event_type` on this service's `<service>.<purpose>` queue."""

        def register(fn: Handler) -> Handler:
            self._handlers.setdefault(purpose, {})[event_type] = fn
            return fn

        return register

    def after_bus_connected(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `hook` once the broker is first connected (e.g. extra bindings)."""
        self._after_bus.append(hook)

    async def start(self) -> None:
        configure_logging(self.name, self.settings.log_level, self.settings.log_json)
        for purpose, handlers in self._handlers.items():
            self.consumers.append(Consumer(self, queue_spec(f"{self.name}.{purpose}"), handlers))
        await self._until_store_answers()
        await ensure_outbox_indexes(self.db)
        await self.db[PROCESSED].create_index("at", expireAfterSeconds=30 * 24 * 3600)
        self.tasks.spawn("bus", self._connect_bus)
        if self.settings.outbox_relay:
            self.relay.worker = self.tasks.worker("outbox-relay", self.relay.round,
                                                  idle_max=IDLE_POLL_MAX)
        try:  # usually the broker answers at once; if not, we start and say "not ready"
            await asyncio.wait_for(self._bus_started.wait(), self.settings.bus_start_wait_seconds)
        except TimeoutError:
            log.warning("service.broker_unavailable_at_start")
        log.info("service.started", consumers=[c.queue_name for c in self.consumers])

    async def _until_store_answers(self) -> None:
        """Start-up waits for the store (an orchestrator may start us before it)."""
        delay = 0.5
        while not await ping(self.client, timeout=5.0):
            log.warning("service.store_unavailable", retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _connect_bus(self) -> None:
        """Connect once (with backoff, by the supervisor); afterwards aio-pika reconnects."""
        if not self._bus_started.is_set():
            await self.bus.start()
            for hook in self._after_bus:
                await hook()
            self._bus_started.set()
            log.info("bus.connected")
            if self.consumers:
                self.tasks.worker("partitions", self.assignment.round,
                                  idle_start=self.assignment.interval,
                                  idle_max=self.assignment.interval)
        await asyncio.Event().wait()  # stays alive; the robust connection does the rest

    async def stop(self) -> None:
        """A graceful stop that is bounded even when the store or the broker is gone.

        Consuming stops first and FastStream lets the handlers in flight finish (each
        acks only after its commit); background tasks are cancelled; then the farewell
        writes (partition and singleton leases released, the member record removed, the
        outbox's published marks) share one short store budget, and the client closes.
        With the store unreachable nothing in flight can commit, so the handlers get only
        `STOP_GRACE_WITHOUT_STORE` and the farewell writes are skipped after a short try:
        what was not acknowledged goes back to its queue when the connection closes (a
        duplicate of something committed meets its processed-event record), the leases
        and the member record expire on their own, and unmarked outbox entries are
        published again by the fallback (consumers deduplicate them). Every step is also
        bounded by a wall clock, so SIGTERM ends the process in a few seconds instead of
        one 3 s server selection per write (18.7 s measured with the store killed).
        """
        started = time.monotonic()
        self._stop_seconds: dict[str, float] = {}
        for consumer in self.consumers:
            consumer.stopping()
        self.assignment.stopping()  # no partition taken while the subscribers stop
        store_up = await ping(self.client, timeout=STOP_PING_SECONDS)
        grace = None if store_up else STOP_GRACE_WITHOUT_STORE
        # FastStream waits for in-flight handlers (its graceful timeout, or `grace`)
        await self._stop_step("bus", self.bus.close(grace=grace))
        await self._stop_step("tasks", self.tasks.stop())
        budget = STOP_STORE_SECONDS if store_up else STOP_STORE_SECONDS_WITHOUT_STORE
        with pymongo.timeout(budget):  # one deadline shared by every farewell write
            # after the subscribers stopped: partitions handed on, the next replica takes
            # over at once
            await self._stop_step("partitions", self.assignment.stop(), budget)
            await self._stop_step("leases", self.leases.release_all(), budget)
            await self._stop_step("outbox", self.relay.flush(), budget)
        self.consumers.clear()
        # closing ends the client's server sessions (one more store command)
        closing = STOP_CLIENT_SECONDS if store_up else STOP_STORE_SECONDS_WITHOUT_STORE
        with pymongo.timeout(closing):
            await self._stop_step("store", self.client.close(), closing)
        await self._stop_step("tracing", self.tracing.shutdown(), STOP_TRACING_SECONDS)
        log.info("service.stopped", store_reachable=store_up,
                 seconds=round(time.monotonic() - started, 2), steps=self._stop_seconds)

    async def _stop_step(self, step: str, work: Awaitable[object],
                         timeout: float | None = None) -> None:
        """One step of `stop`: bounded by `timeout` (a safety net over the step's own
        bounds), and a failure is logged, never raised — the next steps still run."""
        started = time.monotonic()
        try:
            if timeout is None:
                await work
            else:
                await asyncio.wait_for(work, timeout + STOP_STEP_SLACK)
        except TimeoutError:
            log.warning("service.stop_step_timed_out", step=step)
        except Exception as exc:  # noqa: BLE001 (stopping: report and go on)
            log.warning("service.stop_step_failed", step=step, error=repr(exc)[:300])
        finally:
            self._stop_seconds[step] = round(time.monotonic() - started, 2)

    async def ready(self) -> dict[str, bool]:
        """What /readyz reports; every check answers within READY_TIMEOUT."""
        checks: dict[str, bool] = {"store": await ping(self.client, timeout=READY_TIMEOUT),
                                   "broker": self.bus.ready}
        # its share of the partitions consumed (a replica whose share is none is ready too)
        checks["consumers"] = checks["broker"] and (not self.consumers
                                                   or self.assignment.attached)
        checks.update({f"task:{k}": v for k, v in self.tasks.health().items() if k != "bus"})
        for name, check in self.readiness.items():
            try:
                checks[name] = await asyncio.wait_for(check(), READY_TIMEOUT)
            except Exception:  # noqa: BLE001 (a check that cannot answer is a "no")
                checks[name] = False
        return checks

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every local commit (a command's or a consumer's): work that
        the commit may have created is picked up at once instead of by polling (e.g. a
        scheduler whose next deadline moved, a channel outbox with a new entry)."""
        self._commit_listeners.append(listener)

    def committed(self, envelopes: list[Envelope]) -> None:
        if envelopes and self.settings.outbox_relay:
            self.relay.committed(envelopes)
        for listener in self._commit_listeners:
            listener()

    async def transact(
        self,
        work: Callable[[UnitOfWork], Awaitable[T]],
        *,
        correlation_id: str | None = None,
        causation: Envelope | None = None,
        kind: str = "command",
    ) -> T:
        """Run `work` in one transaction whose emitted events go out through the outbox."""
        last: list[UnitOfWork] = []

        async def run(session) -> T:
            uow = UnitOfWork(self.db, session, self.settings.account_id,
                             correlation_id=correlation_id, causation=causation,
                             committer_lease=self.committer_lease)
            last[:] = [uow]
            with store_unavailable_stops_retries():
                result = await work(uow)
                await uow.flush()
                return result

        # bounded: with the store gone, the driver would retry a transaction for two
        # minutes; the caller (an HTTP request, a consumer's backoff) decides instead
        async with self.store_slots:
            result = await in_transaction(self.client, run,
                                          seconds=self.settings.transaction_timeout_seconds)
        STORE_TRANSACTIONS.labels(self.name, kind).inc()
        if last:
            last[0].committed()
        self.committed(last[0].emitted if last else [])
        return result
