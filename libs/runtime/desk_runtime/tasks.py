"""Background tasks a service runs beside its consumers (relays, workers, pollers, schedulers).

`BackgroundTasks.spawn()` supervises a loop: if it raises (the store or broker went away,
a bug), the failure is logged and counted, and the loop is started again after a backoff
that grows to 10 s — a background task never dies silently. `/readyz` reports each
task (`healthy`: running, not backing off after a failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable

from desk_runtime.logging import get_logger
from desk_runtime.metrics import TASK_RESTARTS, TASK_UP
from desk_runtime.worker import Round, Worker

log = get_logger(__name__)

BACKOFF_START = 0.5
# at most this long between tries: a task is back within seconds of its store or broker
BACKOFF_MAX = 10.0
STOP_TIMEOUT = 5.0  # how long stopping waits for cancelled tasks to unwind
RECANCEL_SECONDS = 1.0  # a task still running this long after its cancel is cancelled again


class Supervised:
    def __init__(self, service: str, name: str, run: Callable[[], Awaitable[None]],
                 *, critical: bool = True):
        self.service = service
        self.name = name
        self.run = run
        self.critical = critical  # counts toward readiness
        self.failures = 0
        self.last_error: str | None = None
        self.task: asyncio.Task | None = None
        self.stopping = False
        # what tells the loop itself to stop (a Worker's `stop`), beside the cancellation
        self.stopper: Callable[[], None] | None = None

    @property
    def healthy(self) -> bool:
        """Running and not backing off after a failure (a loop that finished is not)."""
        return self.task is not None and not self.task.done() and self.failures == 0

    def start(self) -> None:
        self.task = asyncio.create_task(self._supervise(), name=f"{self.service}-{self.name}")

    def ok(self) -> None:
        """Called by a loop after a successful round: clears a past failure."""
        if self.failures:
            log.info("task.recovered", task=self.name, after_failures=self.failures)
        self.failures = 0
        self.last_error = None
        TASK_UP.labels(self.service, self.name).set(1)

    def stop(self) -> None:
        """Tell the loop to stop (it is not started again) and cancel it."""
        self.stopping = True
        if self.stopper is not None:
            self.stopper()
        if self.task is not None:
            self.task.cancel()

    async def _supervise(self) -> None:
        TASK_UP.labels(self.service, self.name).set(1)
        while not self.stopping:
            try:
                await self.run()
                log.info("task.finished", task=self.name)  # e.g. a worker told to stop
                TASK_UP.labels(self.service, self.name).set(0)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (any failure: log, back off, restart)
                self.failures += 1
                self.last_error = repr(exc)[:300]
                log.warning("task.failed", task=self.name, failures=self.failures,
                            error=self.last_error)
            TASK_RESTARTS.labels(self.service, self.name).inc()
            TASK_UP.labels(self.service, self.name).set(0)
            if self.stopping:
                break
            delay = min(BACKOFF_START * 2 ** (self.failures - 1), BACKOFF_MAX)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
        TASK_UP.labels(self.service, self.name).set(0)


class BackgroundTasks:
    """The supervised tasks of one service, started and stopped together."""

    def __init__(self, service: str):
        self.service = service
        self.tasks: list[Supervised] = []

    def spawn(self, name: str, run: Callable[[], Awaitable[None]], *,
              critical: bool = True) -> Supervised:
        task = Supervised(self.service, name, run, critical=critical)
        self.tasks.append(task)
        task.start()
        return task

    def worker(self, name: str, round_fn: Round, *, idle_start: float = 0.5, idle_max: float = 15.0,
               critical: bool = True) -> Worker:
        """Start a supervised `desk_runtime.worker.Worker` running `round_fn` (see there)."""
        worker = Worker(self.service, name, round_fn, idle_start=idle_start, idle_max=idle_max)
        worker.supervised = self.spawn(name, worker.run, critical=critical)
        worker.supervised.stopper = worker.stop
        return worker

    def health(self) -> dict[str, bool]:
        return {t.name: t.healthy for t in self.tasks if t.critical}

    async def stop(self, names: set[str] | None = None, *,
                   timeout: float = STOP_TIMEOUT) -> None:
        """Stop the chosen tasks (all by default): each is told to stop and cancelled, and
        waited for at most `timeout` seconds (cancelled again meanwhile: a cancellation
        can be lost, e.g. inside `asyncio.wait_for` on Python 3.11 when its own timeout
        fires at the same moment, and the loop would go on)."""
        chosen = [t for t in self.tasks if names is None or t.name in names]
        for supervised in chosen:
            supervised.stop()
        await cancel_and_wait([t.task for t in chosen if t.task is not None], timeout=timeout)
        self.tasks = [t for t in self.tasks if t not in chosen]


async def cancel_and_wait(tasks: list[asyncio.Task], *, timeout: float | None = None) -> None:
    """Cancel every task, then wait until each has finished unwinding; empties `tasks`.

    A task still running a moment after its cancel is cancelled again (a lost
    cancellation). With `timeout`, a task still unwinding after that long (one that keeps
    swallowing its cancellation) is logged and left behind instead of holding up a stop
    for ever.
    """
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        wait = RECANCEL_SECONDS if deadline is None else min(RECANCEL_SECONDS,
                                                             deadline - loop.time())
        if wait <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=wait)
    for task in pending:
        log.warning("task.stop_timed_out", task=task.get_name(), after=timeout)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: a loop that ended in an error was logged
    tasks.clear()
