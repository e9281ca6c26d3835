"""A service's runtime: its store, its bus connection, outbox relay and consumers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from desk_contracts import Envelope
from desk_contracts.topology import Topology, queue_spec
from pymongo.asynchronous.database import AsyncDatabase

from desk_runtime.bus import Bus
from desk_runtime.consumer import PROCESSED, Consumer, Handler
from desk_runtime.logging import configure_logging, get_logger
from desk_runtime.mongo import create_client, ping
from desk_runtime.outbox import OutboxRelay, ensure_outbox_indexes
from desk_runtime.settings import ServiceSettings
from desk_runtime.unit_of_work import UnitOfWork

T = TypeVar("T")
log = get_logger(__name__)


class ServiceRuntime:
    def __init__(self, name: str, settings: ServiceSettings):
        self.name = name
        self.settings = settings
        self.topology = Topology(settings.bus_namespace)
        self.client = create_client(settings.mongo_url, app_name=f"desk-{name}")
        self.db: AsyncDatabase = self.client[settings.database_name(name)]
        self.bus = Bus(settings.amqp_url, self.topology, name)
        self.relay = OutboxRelay(self.db, self.bus, name, settings.outbox_poll_seconds)
        self.consumers: list[Consumer] = []
        self._handlers: dict[str, dict[str, Handler]] = {}

    def on(self, purpose: str, event_type: str) -> Callable[[Handler], Handler]:
        """Register a handler for `event_type` on this service's `<service>.<purpose>` queue."""

        def register(fn: Handler) -> Handler:
            self._handlers.setdefault(purpose, {})[event_type] = fn
            return fn

        return register

    async def start(self) -> None:
        configure_logging(self.name, self.settings.log_level, self.settings.log_json)
        await ensure_outbox_indexes(self.db)
        await self.db[PROCESSED].create_index("at", expireAfterSeconds=30 * 24 * 3600)
        await self.bus.connect()
        if self.settings.outbox_relay:
            self.relay.start()
        for purpose, handlers in self._handlers.items():
            consumer = Consumer(self, queue_spec(f"{self.name}.{purpose}"), handlers)
            consumer.start()
            self.consumers.append(consumer)
        log.info("service.started", consumers=[c.queue_name for c in self.consumers])

    async def stop(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        self.consumers.clear()
        await self.relay.stop()
        await self.bus.close()
        await self.client.close()

    async def ready(self) -> dict[str, bool]:
        return {"store": await ping(self.client), "broker": self.bus.ready}

    def outbox_committed(self) -> None:
        if self.settings.outbox_relay:
            self.relay.notify()

    async def transact(
        self,
        work: Callable[[UnitOfWork], Awaitable[T]],
        *,
        correlation_id: str | None = None,
        causation: Envelope | None = None,
    ) -> T:
        """Run `work` in one transaction whose emitted events go out through the outbox."""
        last: list[UnitOfWork] = []

        async def run(session) -> T:
            uow = UnitOfWork(self.db, session, self.settings.account_id,
                             correlation_id=correlation_id, causation=causation)
            last[:] = [uow]
            return await work(uow)

        async with self.client.start_session() as session:
            result = await session.with_transaction(run)
        if last and last[0].emitted:
            self.outbox_committed()
        return result
