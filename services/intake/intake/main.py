"""Intake: the app factory and its lifespan (HTTP API, SMTP listener, IMAP poller, bot)."""

from __future__ import annotations

from desk_runtime.http import create_service_app
from desk_runtime.metrics import REJECTED_INPUT
from desk_runtime.service import ServiceRuntime
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from intake.api import access, attachments, mail, requests
from intake.attachments import AttachmentStore
from intake.consumers import cards, customers
from intake.mail.imap import ImapPoller
from intake.mail.ingest import MailIngest
from intake.mail.smtp import SmtpListener
from intake.repository import IntakeRepository
from intake.settings import IntakeSettings
from intake.telegram import bot as telegram_bot


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    runtime = ServiceRuntime("intake", settings)
    cards.register(runtime)
    customers.register(runtime)
    public_url = settings.public_url or f"http://{settings.http_host}:{settings.http_port}"
    store = AttachmentStore(runtime.db, link_secret=settings.link_secret, public_url=public_url,
                            max_bytes=settings.max_attachment_bytes)
    ingest = MailIngest(runtime, settings, store)
    smtp = SmtpListener(ingest, host=settings.smtp_host, port=settings.smtp_port,
                        domain=settings.inbound_domain, max_bytes=settings.max_message_bytes)
    imap = ImapPoller(ingest, settings.imap_poll_seconds, settings.link_secret)
    bot = telegram_bot.TelegramBot(runtime, settings, store)

    async def catalog_loaded() -> bool:
        # requests for a service intake has not heard of yet would get 404: not ready
        # until boards' catalog has arrived (at least one service known)
        return await IntakeRepository(runtime.db).has_catalog()

    runtime.readiness["catalog"] = catalog_loaded

    async def on_start() -> None:
        await IntakeRepository(runtime.db).ensure_indexes()
        await store.ensure_indexes()
        ingest.start()
        if settings.smtp_port:
            await smtp.start()
        imap.start(runtime.tasks)
        await bot.start()

    async def on_stop() -> None:
        await bot.stop()
        await imap.stop()
        await smtp.stop()
        await ingest.stop()

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
        REJECTED_INPUT.labels("intake", "api", "invalid_body").inc()
        return JSONResponse({"error": "invalid", "message": "some fields are invalid",
                             "details": {"fields": fields}}, status_code=422)

    app.state.attachments = store
    app.state.ingest = ingest
    app.state.imap = imap
    app.state.telegram = bot
    app.include_router(requests.router)
    app.include_router(attachments.router)
    app.include_router(mail.router)
    app.include_router(mail.admin)
    app.include_router(access.router)
    app.include_router(telegram_bot.router)
    return app
