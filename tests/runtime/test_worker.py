"""The background-worker primitive: rounds, wake-ups, idle back-off, failures, graceful stop."""

from __future__ import annotations

import asyncio

import pytest
from desk_runtime.tasks import BackgroundTasks


async def _until(check, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_a_woken_worker_runs_at_once_and_an_idle_one_backs_off():
    tasks = BackgroundTasks("test")
    rounds: list[float] = []

    async def round_fn():
        rounds.append(asyncio.get_running_loop().time())
        return None  # idle

    worker = tasks.worker("idle", round_fn, idle_start=5.0, idle_max=8.0)
    await _until(lambda: worker.waiting == 5.0)  # idle: waits idle_start before looking again
    assert len(rounds) == 1
    worker.wake()
    await _until(lambda: len(rounds) == 2)  # the wake-up cut the wait short
    await _until(lambda: worker.waiting == 5.0)  # a wake-up resets the back-off
    assert tasks.health() == {"idle": True}
    await tasks.stop()


@pytest.mark.asyncio
async def test_idle_waits_double_up_to_the_cap():
    tasks = BackgroundTasks("test")
    waits: list[float | None] = []
    worker = None

    async def round_fn():
        waits.append(worker.waiting if worker else None)
        return None

    worker = tasks.worker("doubling", round_fn, idle_start=0.05, idle_max=0.2)
    await _until(lambda: len(waits) >= 5)
    assert waits[1:5] == [0.05, 0.1, 0.2, 0.2]
    await tasks.stop()


@pytest.mark.asyncio
async def test_work_found_runs_the_next_round_without_waiting():
    tasks = BackgroundTasks("test")
    backlog = [1, 2, 3, 4, 5]
    done: list[int] = []

    async def round_fn():
        if not backlog:
            return None
        done.append(backlog.pop(0))
        return 0

    tasks.worker("drain", round_fn, idle_start=30.0, idle_max=30.0)
    await _until(lambda: done == [1, 2, 3, 4, 5])
    await tasks.stop()


@pytest.mark.asyncio
async def test_a_failing_round_is_restarted_and_health_tells_the_truth():
    tasks = BackgroundTasks("test")
    calls = {"n": 0}

    async def round_fn():
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("store away")
        return None

    tasks.worker("flaky", round_fn, idle_start=5.0, idle_max=5.0)
    await _until(lambda: calls["n"] == 1)
    await asyncio.sleep(0.05)
    assert tasks.health() == {"flaky": False}  # backing off after the failure
    await _until(lambda: calls["n"] == 2)  # restarted after the supervisor's back-off
    await _until(lambda: tasks.health() == {"flaky": True})
    await tasks.stop()


@pytest.mark.asyncio
async def test_stop_lets_the_running_round_finish():
    tasks = BackgroundTasks("test")
    finished: list[bool] = []
    started = asyncio.Event()

    async def round_fn():
        started.set()
        await asyncio.sleep(0.2)
        finished.append(True)
        return 0

    worker = tasks.worker("graceful", round_fn)
    await started.wait()
    worker.stop()
    await asyncio.wait_for(worker.supervised.task, 5)
    assert finished == [True]  # the round in progress completed; no new one began
    await tasks.stop()


def test_a_worker_refuses_nonsense_back_off():
    tasks = BackgroundTasks("test")
    with pytest.raises(ValueError):
        tasks.worker("bad", lambda: None, idle_start=0, idle_max=1)
