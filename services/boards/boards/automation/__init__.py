"""Automation: categories below a service that route requests, rules ("when <trigger>
[if <conditions>] then <actions>") evaluated on card events, checklist templates, and
request templates that run a chain of subtasks. See docs/automation.md."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    from boards.automation.api import cards_router, router

    app.include_router(router)
    app.include_router(cards_router)


async def start(runtime, settings) -> None:
    """Indexes, and the clock that runs timed rules (time in a column, schedules)."""
    from boards.automation.application import timer_round
    from boards.automation.repository import AutomationRepository

    await AutomationRepository(runtime.db).ensure_indexes()
    every = settings.automation_timer_seconds
    runtime.tasks.worker("automation-clock", lambda: timer_round(runtime, settings),
                         idle_start=every, idle_max=every)
