"""Notify: the app factory and its lifespan."""

from __future__ import annotations

from functools import partial

from desk_runtime.http import create_service_app
from desk_runtime.service import ServiceRuntime
from fastapi import FastAPI

from notify.api import admin
from notify.consumers import events
from notify.consumers.planner import Planner
from notify.dispatcher import Dispatcher
from notify.repository import NotifyRepository
from notify.settings import NotifySettings


def create_app(settings: NotifySettings | None = None) -> FastAPI:
    settings = settings or NotifySettings()
    runtime = ServiceRuntime("notify", settings)
    dispatcher = Dispatcher(runtime, settings)
    planner = Planner(settings, dispatcher)
    context = events.Context(settings=settings, planner=planner)
    for purpose, event_type, handler in events.HANDLERS:
        runtime.on(purpose, event_type)(partial(handler, ctx=context))

    async def on_start() -> None:
        await NotifyRepository(runtime.db).ensure_indexes()
        dispatcher.start()

    app = create_service_app(runtime, title="Service desk — notify", on_start=on_start,
                             on_stop=dispatcher.stop)
    app.state.settings = settings
    app.state.dispatcher = dispatcher
    app.state.planner = planner
    app.include_router(admin.router)
    return app
