"""Automation: categories below a service that route requests, rules ("when <trigger>
[if <conditions>] then <actions>") evaluated on card events, checklist templates, and
request templates that run a chain of subtasks. See docs/automation.md."""

from __future__ import annotations

from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase


def install(app: FastAPI) -> None:
    from boards.automation.api import cards_router, router

    app.include_router(router)
    app.include_router(cards_router)


async def start(db: AsyncDatabase) -> None:
    from boards.automation.repository import AutomationRepository

    await AutomationRepository(db).ensure_indexes()
