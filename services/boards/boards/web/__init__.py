"""The agent workspace in the browser: sign-in sessions, pages, static assets, live updates.

`install(app)` adds the routers, serves `static/` at /assets and subscribes this
replica's live-update feed (boards.web.live) to the runtime's broker; `start(app)` and
`stop(app)` are the app's start/stop hooks for what needs a running loop.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from boards.repository import AgentRepository
from boards.web.admin.repository import AuditRepository


def install(app: FastAPI) -> None:
    from boards.web import admin, attachments, live, pages, session, table

    app.include_router(session.router)
    app.include_router(attachments.router)
    app.include_router(live.router)
    app.include_router(pages.router)
    admin.install(app)
    app.include_router(table.router)
    app.mount("/assets", StaticFiles(directory=Path(__file__).parent / "static"), name="assets")
    hub = live.LiveHub(app.state.runtime)
    hub.subscribe()
    app.state.live_hub = hub


async def start(app: FastAPI) -> None:
    with contextlib.suppress(Exception):  # an index is an optimisation here
        await AgentRepository(app.state.runtime.db).ensure_session_indexes()
        await AuditRepository(app.state.runtime.db).ensure_indexes()
    with contextlib.suppress(ValueError):  # signals can only be set on the main thread
        app.state.live_hub.watch_shutdown()


async def stop(app: FastAPI) -> None:
    await app.state.live_hub.stop()  # the browsers reconnect
