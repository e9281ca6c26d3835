"""Boards: the app factory and its lifespan."""

from __future__ import annotations

from desk_runtime.http import create_service_app
from desk_runtime.service import ServiceRuntime
from fastapi import FastAPI

from boards import demo
from boards.api import admin, cards
from boards.commands import publish_service
from boards.consumers import requests, sla
from boards.repository import BoardsRepository
from boards.settings import BoardsSettings
from boards.stats import install as install_stats
from boards.stats import register as register_stats
from boards.web import install as install_web


def create_app(settings: BoardsSettings | None = None) -> FastAPI:
    settings = settings or BoardsSettings()
    runtime = ServiceRuntime("boards", settings)
    requests.register(runtime, settings)
    sla.register(runtime)
    register_stats(runtime)

    async def on_start() -> None:
        repo = BoardsRepository(runtime.db)
        await repo.ensure_indexes()
        await repo.backfill_list_fields()
        if settings.demo_catalog:
            await load_demo(runtime)

    app = create_service_app(runtime, title="Service desk — boards", on_start=on_start)
    app.state.settings = settings
    app.include_router(cards.router)
    app.include_router(admin.router)
    install_stats(app)
    install_web(app)
    return app


async def load_demo(runtime: ServiceRuntime) -> None:
    """Create the demo board and services unless they exist already."""
    repo = BoardsRepository(runtime.db)
    if await repo.get_board(demo.SUPPORT_BOARD["_id"]) is None:
        await repo.save_board(dict(demo.SUPPORT_BOARD))
    for service in demo.demo_services():
        if await repo.get_service(service.id) is None:
            await runtime.transact(lambda uow, s=service: publish_service(uow, s))
