"""Live updates for open boards: bus events fanned out to browsers as server-sent events.

Every boards replica binds its own exclusive, auto-delete queue to `card.*.v1` and
`comment.added.v1`, so every replica hears every change whichever replica (or consumer)
made it, and passes it to the SSE clients connected to it that may see that board.
The browser only learns "card X on board B changed" and re-reads the card through the
API with its own rights, so nothing an agent may not see travels this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from desk_runtime.bus import decode_envelope
from desk_runtime.logging import get_logger
from desk_runtime.service import ServiceRuntime
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from faststream.middlewares import AckPolicy
from faststream.rabbit import Channel, RabbitQueue
from faststream.rabbit.annotations import RabbitMessage

from boards.auth import Agent, current_agent
from boards.repository import CardRepository
from boards.web.metrics import LIVE_CLIENTS, LIVE_EVENTS

log = get_logger(__name__)
BINDINGS = ("card.*.v1", "comment.added.v1", "sla.warning.v1", "sla.breached.v1",
            "sla.met.v1", "sla.clock_changed.v1")
SLA_SETTLE_TRIES = 20  # x 0.25 s: how long to wait for boards' own consumer to store a signal
HEARTBEAT_SECONDS = 15.0
CLIENT_BUFFER = 256

router = APIRouter(tags=["live"])


@dataclass(eq=False)
class Client:
    agent: Agent
    board: str | None  # None: every board the agent may see
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(CLIENT_BUFFER))
    overflowed: bool = False

    def wants(self, board_id: str | None) -> bool:
        if board_id is None or not self.agent.can_see_board(board_id):
            return False
        return self.board is None or self.board == board_id


class LiveHub:
    def __init__(self, runtime: ServiceRuntime):
        self.runtime = runtime
        self.cards = CardRepository(runtime.db)
        self.clients: set[Client] = set()
        self._tasks: set[asyncio.Task] = set()
        self._queue: RabbitQueue | None = None

    def subscribe(self) -> None:
        """Register this replica's own queue as a FastStream subscriber (before the bus starts).

        The queue is exclusive and auto-deleted, named per replica; FastStream binds its
        first key, `bind_all` the rest once connected. aio-pika's robust channel declares,
        binds and consumes it again after a broker restart.
        """
        bus = self.runtime.bus
        self._queue = RabbitQueue(self.runtime.topology.name(
            f"boards.live.{uuid.uuid4().hex[:12]}"), exclusive=True, auto_delete=True,
                                  routing_key=BINDINGS[0])
        subscriber = bus.broker.subscriber(self._queue, bus.exchange,
                                           channel=Channel(prefetch_count=64),
                                           ack_policy=AckPolicy.ACK_FIRST, no_reply=True,
                                           include_in_schema=False)
        subscriber(self._on_message)
        self.runtime.after_bus_connected(self.bind_all)

    async def bind_all(self) -> None:
        bus = self.runtime.bus
        queue = await bus.broker.declare_queue(self._queue)
        exchange = await bus.broker.declare_exchange(bus.exchange)
        for key in BINDINGS[1:]:
            await queue.bind(exchange, routing_key=key, robust=True)
        log.info("live.started", queue=self._queue.name)

    def watch_shutdown(self) -> None:
        """End the SSE streams as soon as the process is told to stop.

        Uvicorn waits for open responses before it runs the app's shutdown, and an event
        stream never finishes by itself: chain onto its SIGTERM/SIGINT handlers so the
        streams close first (the browsers reconnect to another replica and resync).
        """
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue

            def handler(signum, frame, previous=previous) -> None:
                loop.call_soon_threadsafe(self.close_streams)
                previous(signum, frame)
            signal.signal(sig, handler)

    def close_streams(self) -> None:
        for client in list(self.clients):
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait(None)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.close_streams()  # the browsers reconnect

    async def _board_of(self, payload: dict) -> str | None:
        card = payload.get("card")
        if isinstance(card, dict) and card.get("board_id"):
            return card["board_id"]
        card_id = payload.get("card_id") or payload.get("child_id")
        if not card_id:
            return None
        return await self.cards.board_of_card(card_id)

    async def _on_message(self) -> None:
        # the message from the broker's context rather than a `RabbitMessage` parameter,
        # which FastDepends resolves in a worker thread (a thread hand-off per event)
        message: RabbitMessage = self.runtime.bus.broker.context.get_local("message")
        if not self.clients:
            return  # nobody watches a board on this replica: not even worth decoding
        try:
            envelope = decode_envelope(message.body)
        except Exception:  # a broken message must not stop the feed; it is only a hint
            LIVE_EVENTS.labels("undecodable").inc()
            return
        payload = envelope.payload
        if envelope.type.startswith("sla."):
            # boards' consumer stores the signal on the card in its own time (and emits no
            # card event for it): pass it on once the card shows it, so a re-read sees it
            task = asyncio.create_task(self._after_sla_stored(envelope.type, payload))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        board = await self._board_of(payload)
        card_id = (payload.get("card") or {}).get("card_id") or payload.get("card_id") \
            or payload.get("child_id")
        data = {"type": envelope.type, "card_id": card_id, "board_id": board,
                "version": (payload.get("card") or {}).get("version"),
                "by": payload.get("moved_by") or (payload.get("author") or {}).get("name"),
                "parent_id": payload.get("parent_id")}
        self.publish(board, data)

    async def _after_sla_stored(self, kind: str, payload: dict) -> None:
        state = kind.split(".", 1)[1]
        card_id, target = payload.get("card_id"), payload.get("target")
        found = None
        for _ in range(SLA_SETTLE_TRIES):
            found = await self.cards.sla_shown(card_id)
            shown = found[1].get(target) or {} if found else {}
            if found and (shown.get("clock") == payload.get("clock") if state == "clock_changed"
                          else shown.get("state") == state):
                break
            await asyncio.sleep(0.25)
        if found:
            board = found[0]
            self.publish(board, {"type": kind, "card_id": card_id, "board_id": board,
                                 "version": None, "by": None, "parent_id": None})

    def publish(self, board: str | None, data: dict) -> None:
        for client in list(self.clients):
            if not client.wants(board):
                continue
            try:
                client.queue.put_nowait(data)
                LIVE_EVENTS.labels("sent").inc()
            except asyncio.QueueFull:
                # a stalled tab: tell it to reload once it reads again, never block the feed
                client.overflowed = True
                LIVE_EVENTS.labels("dropped_slow").inc()

    async def stream(self, client: Client, request: Request) -> AsyncIterator[str]:
        self.clients.add(client)
        LIVE_CLIENTS.inc()
        try:
            yield "retry: 2000\nevent: hello\ndata: {}\n\n"
            while True:
                if await request.is_disconnected():
                    return
                try:
                    item = await asyncio.wait_for(client.queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if item is None:
                    return
                if client.overflowed:
                    client.overflowed = False
                    yield "event: resync\ndata: {}\n\n"
                yield f"event: change\ndata: {json.dumps(item)}\n\n"
        finally:
            self.clients.discard(client)
            LIVE_CLIENTS.dec()


@router.get("/v1/live", include_in_schema=True)
async def live(request: Request, board: str | None = Query(None),
               agent: Agent = Depends(current_agent)) -> StreamingResponse:
    """Server-sent events `change` {type, card_id, board_id, version} for the boards you see."""
    hub: LiveHub = request.app.state.live_hub
    client = Client(agent, board)
    return StreamingResponse(hub.stream(client, request), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
