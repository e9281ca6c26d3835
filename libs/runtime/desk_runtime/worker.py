"""The one background-worker primitive: do a round, then sleep until woken or due again.

Every background loop of a service (relays, dispatchers, schedulers, pollers) is a
`Worker`: the service writes only what one round does; starting, stopping, waking,
idle back-off, failure back-off, logging and metrics live here (failures are handled by
the supervising `tasks.Supervised`, which restarts the worker after a growing delay).

A round returns how long there is nothing to do:
- `0` — it did work; the next round starts at once;
- a positive number — nothing is due for that many seconds (capped by `idle_max`);
- `None` — idle with no known deadline: wait `idle_start`, doubling up to `idle_max`.

`wake()` cuts any wait short (call it from `runtime.on_commit` when new work was written),
and resets the idle back-off. `stop()` is graceful: the current round finishes, then the
worker returns (a finished worker is not restarted).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from desk_runtime.logging import get_logger
from desk_runtime.metrics import WORKER_ROUNDS

log = get_logger(__name__)

Round = Callable[[], Awaitable[float | None]]


class Worker:
    def __init__(self, service: str, name: str, round_fn: Round, *,
                 idle_start: float = 0.5, idle_max: float = 15.0):
        if idle_start <= 0 or idle_max < idle_start:
            raise ValueError("need 0 < idle_start <= idle_max")
        self.service = service
        self.name = name
        self.round_fn = round_fn
        self.idle_start = idle_start
        self.idle_max = idle_max
        self.supervised = None  # set by BackgroundTasks.worker(): a good round clears failures
        self.last_round_at: float | None = None  # monotonic time of the last finished round
        self.waiting: float | None = None  # the last wait between rounds (what an idle worker sleeps)
        self._wake = asyncio.Event()
        self._stopping = False
        self._idle = idle_start

    def wake(self) -> None:
        """New work may be waiting: end the current wait (a running round is not disturbed)."""
        self._idle = self.idle_start
        self._wake.set()

    def stop(self) -> None:
        """Finish the current round, then return instead of waiting for the next one."""
        self._stopping = True
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def run(self) -> None:
        """The loop (run under `Supervised`, which restarts it after an exception)."""
        while not self._stopping:
            self._wake.clear()
            outcome = "idle"
            try:
                pause = await self.round_fn()
            except asyncio.CancelledError:
                raise
            except Exception:
                WORKER_ROUNDS.labels(self.service, self.name, "failed").inc()
                self._idle = self.idle_start
                raise
            self.last_round_at = time.monotonic()
            if self.supervised is not None:
                self.supervised.ok()
            if pause is None:
                wait = self._idle
                self._idle = min(self._idle * 2, self.idle_max)
            else:
                wait = min(max(float(pause), 0.0), self.idle_max)
                self._idle = self.idle_start
                if wait == 0:
                    outcome = "worked"
            WORKER_ROUNDS.labels(self.service, self.name, outcome).inc()
            if self._stopping:
                break
            if wait > 0:
                self.waiting = wait
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
            else:
                await asyncio.sleep(0)  # let others run between busy rounds
        log.info("worker.stopped", worker=self.name)
