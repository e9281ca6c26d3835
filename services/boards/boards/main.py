"""Boards: the app factory and its start/stop hooks."""

from __future__ import annotations

from functools import partial

from desk_runtime.http import create_service_app
from desk_runtime.service import ServiceRuntime
from fastapi import FastAPI

from boards import automation, demo, kb, stats, web
from boards.api import admin, cards, search, views
from boards.automation import demo as automation_demo
from boards.application.catalog import publish_service
from boards.consumers import HANDLERS
from boards.repository import Repositories
from boards.repository.views import SavedViewRepository
from boards.settings import BoardsSettings


def create_app(settings: BoardsSettings | None = None) -> FastAPI:
    settings = settings or BoardsSettings()
    runtime = ServiceRuntime("boards", settings)
    for purpose, event_type, handler in HANDLERS:
        runtime.on(purpose, event_type)(partial(handler, settings=settings))
    app: FastAPI

    async def on_start() -> None:
        repos = Repositories.of(runtime.db)
        await repos.ensure_indexes()
        await repos.cards.backfill_list_fields()
        await repos.cards.backfill_search()
        await SavedViewRepository(runtime.db).ensure_indexes()
        await automation.start(runtime, settings)
        if settings.demo_catalog:
            await load_demo(runtime)
        await stats.start(runtime, settings)
        await kb.start(runtime)
        await web.start(app)

    async def on_stop() -> None:
        await web.stop(app)

    app = create_service_app(runtime, title="Service desk — boards", on_start=on_start,
                             on_stop=on_stop)
    app.state.settings = settings
    app.include_router(cards.router)
    app.include_router(admin.router)
    app.include_router(search.router)
    app.include_router(views.router)
    stats.install(app)
    kb.install(app)
    automation.install(app)
    web.install(app)
    return app


async def load_demo(runtime: ServiceRuntime) -> None:
    """Create the demo board and services unless they exist already."""
    catalog = Repositories.of(runtime.db).catalog
    if await catalog.board(demo.SUPPORT_BOARD["_id"]) is None:
        await catalog.save_board(dict(demo.SUPPORT_BOARD))
    for service in demo.demo_services():
        if await catalog.service(service.id) is None:
            await runtime.transact(lambda uow, s=service: publish_service(uow, s))
    await automation_demo.load(runtime)
