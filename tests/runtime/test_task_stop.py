"""Stopping background tasks is bounded: a lost cancellation or a task that will not end
never holds up a service's stop (tests/e2e/test_shutdown.py stops whole processes)."""

from __future__ import annotations

import asyncio
import time

import pytest
from desk_runtime.tasks import BackgroundTasks


@pytest.mark.asyncio
async def test_a_worker_whose_cancellation_was_lost_still_stops():
    """A round that swallows its cancellation (as `asyncio.wait_for` may on Python 3.11
    when its own timeout fires at the same moment) used to loop on for ever after
    `stop()`; the worker is now told to stop as well, and cancelled again."""
    tasks = BackgroundTasks("test")
    rounds = 0
    entered = asyncio.Event()

    async def round_fn():
        nonlocal rounds
        rounds += 1
        entered.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            pass  # lost: the round goes on as if its wait had ended
        return 0  # "did work": the loop would start the next round at once

    worker = tasks.worker("swallower", round_fn)
    await entered.wait()
    started = time.monotonic()
    await tasks.stop()
    assert time.monotonic() - started < 2.0
    assert worker.stopping and worker.supervised.task.done()
    assert rounds == 1  # no round after the stop


@pytest.mark.asyncio
async def test_a_task_that_never_ends_is_left_behind_after_the_timeout():
    tasks = BackgroundTasks("test")
    entered = asyncio.Event()
    refusing = True

    async def stubborn():
        entered.set()
        while True:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                if not refusing:
                    raise
                # refuses every cancellation (until the test lets it go)

    supervised = tasks.spawn("stubborn", stubborn)
    await entered.wait()
    started = time.monotonic()
    await tasks.stop(timeout=1.5)
    took = time.monotonic() - started
    assert 1.4 < took < 3.0, took
    assert tasks.tasks == []  # forgotten by the service, which goes on stopping
    assert not supervised.task.done()
    refusing = False  # let the test's event loop end cleanly
    supervised.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await supervised.task
