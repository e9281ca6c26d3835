"""Background tasks a service runs beside its consumers (workers, pollers, schedulers)."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel_and_wait(tasks: list[asyncio.Task]) -> None:
    """Cancel every task, then wait until each has finished unwinding; empties `tasks`."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    tasks.clear()
