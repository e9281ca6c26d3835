"""Portal: the app factory and its lifespan."""

from __future__ import annotations

from desk_runtime.http import create_service_app
from desk_runtime.service import ServiceRuntime
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from portal import commands
from portal.api import admin, help_centre, pages, signin
from portal.api.web import (
    PACKAGE,
    Portal,
    SecurityHeaders,
    current_customer,
    not_found,
    render,
)
from portal.consumers import cards
from portal.domain.access import AccessConfig
from portal.repository import PortalRepository
from portal.settings import PortalSettings


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    settings = settings or PortalSettings()
    runtime = ServiceRuntime("portal", settings)
    cards.register(runtime)

    async def on_start() -> None:
        await PortalRepository(runtime.db).ensure_indexes()
        seed = AccessConfig.seed(settings)
        await commands.seed_access(runtime, seed.allow, dict(seed.groups),
                                   dict(seed.organisations))

    app = create_service_app(runtime, title="Service desk — customer portal", on_start=on_start)
    app.state.settings = settings
    app.state.portal = Portal(runtime, settings)
    app.include_router(signin.router)
    app.include_router(pages.router)
    app.include_router(help_centre.router)
    app.include_router(admin.router)
    app.mount("/static", StaticFiles(directory=PACKAGE / "static"), name="static")

    app.add_middleware(SecurityHeaders, settings=settings)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        customer = await current_customer(request)
        if exc.status_code == 404:
            return not_found(request, customer)
        return render(request, "error.html", exc.status_code, customer=customer,
                      code=exc.status_code, title_key="error.generic",
                      text_key="error.generic_text")

    return app
