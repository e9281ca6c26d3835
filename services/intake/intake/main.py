"""Intake: the app factory and its lifespan (the channels' doors, the admin and file APIs)."""

from __future__ import annotations

from desk_contracts.channels import API
from desk_runtime.http import create_service_app
from desk_runtime.metrics import REJECTED_INPUT
from desk_runtime.service import ServiceRuntime
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from intake.api import access, attachments
from intake.attachments import AttachmentStore
from intake.channels import ADAPTERS
from intake.consumers import cards, customers
from intake.repository import IntakeRepository
from intake.settings import IntakeSettings


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    runtime = ServiceRuntime("intake", settings)
    cards.register(runtime)
    customers.register(runtime)
    repo = IntakeRepository(runtime.db)
    public_url = settings.public_url or f"http://{settings.http_host}:{settings.http_port}"
    store = AttachmentStore(repo, link_secret=settings.link_secret, public_url=public_url,
                            max_bytes=settings.max_attachment_bytes)
    channels = [adapter(runtime, settings, store) for adapter in ADAPTERS]

    async def catalog_loaded() -> bool:
        # requests for a service intake has not heard of yet would get 404: not ready
        # until boards' catalog has arrived (at least one service known)
        return await repo.has_catalog()

    runtime.readiness["catalog"] = catalog_loaded

    async def on_start() -> None:
        await repo.ensure_indexes()
        for channel in channels:
            await channel.start()

    async def on_stop() -> None:
        for channel in reversed(channels):
            await channel.stop()

    app = create_service_app(runtime, title="Service desk — intake", on_start=on_start,
                             on_stop=on_stop)
    app.state.settings = settings

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        """One message per field (`requester.email`: ...), like field-value errors."""
        fields: dict[str, str] = {}
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "header")]
            fields.setdefault(".".join(loc) or "body", str(err.get("msg", "is invalid")))
        REJECTED_INPUT.labels("intake", API, "invalid_body").inc()
        return JSONResponse({"error": "invalid", "message": "some fields are invalid",
                             "details": {"fields": fields}}, status_code=422)

    app.state.attachments = store
    app.state.channels = {channel.name: channel for channel in channels}
    for channel in channels:
        for router in channel.routers():
            app.include_router(router)
    app.include_router(attachments.router)
    app.include_router(access.router)
    return app
