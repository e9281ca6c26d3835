"""The agent workspace in the browser: sign-in sessions, pages, static assets, live updates.

`install(app)` adds the routers, serves `static/` at /assets and starts this replica's
live-update feed (boards.web.live), a subscriber of the runtime's broker.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from desk_runtime.logging import get_logger
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

log = get_logger(__name__)


def install(app: FastAPI) -> None:
    from boards.web import attachments, live, pages, session

    app.include_router(session.router)
    app.include_router(attachments.router)
    app.include_router(live.router)
    app.include_router(pages.router)
    app.mount("/assets", StaticFiles(directory=Path(__file__).parent / "static"), name="assets")
    hub = live.LiveHub(app.state.runtime)
    hub.subscribe()
    app.state.live_hub = hub
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        async with inner(a):
            runtime = a.state.runtime
            with contextlib.suppress(Exception):  # an index is an optimisation here
                await session.ensure_indexes(runtime.db)
            with contextlib.suppress(ValueError):  # signals can only be set on the main thread
                hub.watch_shutdown()
            try:
                yield
            finally:
                await hub.stop()

    app.router.lifespan_context = lifespan
