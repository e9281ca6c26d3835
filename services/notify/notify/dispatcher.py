"""Sends recorded notifications: retries with backoff, gives up visibly, never blocks consuming."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from datetime import UTC, datetime, timedelta

import aiosmtplib
from desk_contracts.events import CardSnapshot, NotificationFailed, NotificationSent
from desk_contracts.reply_token import reply_address
from desk_runtime.mail import MailRefused, send_mail
from desk_runtime.logging import bound_contextvars, get_logger
from desk_runtime.service import ServiceRuntime

from notify.domain.messages import build_email, render_acknowledgment
from notify.repository import NotifyRepository
from notify.settings import NotifySettings

log = get_logger(__name__)
LEASE = timedelta(seconds=60)


class DeliveryError(Exception):
    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class Dispatcher:
    def __init__(self, runtime: ServiceRuntime, settings: NotifySettings):
        self.runtime = runtime
        self.settings = settings
        self.repo = NotifyRepository(runtime.db)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notify-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                delivery = await self.repo.claim_due(self.worker, LEASE)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("dispatch.claim_failed", error=str(exc))
                delivery = None
            if delivery is None:
                await asyncio.sleep(self.settings.dispatch_poll_seconds)
                continue
            with bound_contextvars(correlation_id=delivery.get("correlation_id"),
                                   notification_id=delivery["_id"]):
                await self.deliver(delivery)

    async def deliver(self, delivery: dict) -> None:
        try:
            message_id = await self.send(delivery)
        except Exception as exc:
            permanent = isinstance(exc, DeliveryError) and exc.permanent
            await self._failed(delivery, exc, permanent)
            return
        now = datetime.now(UTC)

        async def mark(uow) -> None:
            await self.repo.deliveries.update_one(
                {"_id": delivery["_id"]},
                {"$set": {"status": "sent", "sent_at": now, "message_id": message_id,
                          "claimed_until": None}},
                session=uow.session,
            )
            await uow.emit(NotificationSent(
                notification_id=delivery["_id"], cause_event_id=delivery["cause_event_id"],
                channel=delivery["channel"], recipient=delivery["recipient"],
                kind=delivery["kind"], card_id=delivery.get("card_id"), message_id=message_id,
            ))

        await self.runtime.transact(mark, correlation_id=delivery.get("correlation_id"))
        log.info("notification.sent", kind=delivery["kind"], channel=delivery["channel"])

    async def _failed(self, delivery: dict, exc: Exception, permanent: bool) -> None:
        attempts = delivery.get("attempts", 1)
        error = f"{type(exc).__name__}: {exc}"[:500]
        if not permanent and attempts < self.settings.max_attempts:
            delay = self.settings.retry_base_seconds * 2 ** (attempts - 1)
            await self.repo.deliveries.update_one(
                {"_id": delivery["_id"]},
                {"$set": {"status": "retrying", "last_error": error, "claimed_until": None,
                          "next_attempt_at": datetime.now(UTC) + timedelta(seconds=delay)}},
            )
            log.warning("notification.retry", error=error, attempts=attempts, delay=delay)
            return

        async def mark(uow) -> None:
            await self.repo.deliveries.update_one(
                {"_id": delivery["_id"]},
                {"$set": {"status": "failed", "last_error": error, "claimed_until": None,
                          "failed_at": datetime.now(UTC)}},
                session=uow.session,
            )
            await uow.emit(NotificationFailed(
                notification_id=delivery["_id"], cause_event_id=delivery["cause_event_id"],
                channel=delivery["channel"], recipient=delivery["recipient"],
                kind=delivery["kind"], card_id=delivery.get("card_id"), error=error,
            ))

        await self.runtime.transact(mark, correlation_id=delivery.get("correlation_id"))
        log.error("notification.failed", error=error, attempts=attempts)

    async def send(self, delivery: dict) -> str:
        if delivery["channel"] != "email":
            raise DeliveryError(f"no sender for channel {delivery['channel']!r}", permanent=True)
        card = CardSnapshot.model_validate(delivery["context"]["card"])
        service = await self.repo.service(card.service_id)
        mail = render_acknowledgment(card, service, portal_url=self.settings.portal_url)
        message_id = f"{delivery['_id']}@{self.settings.inbound_domain}"
        reply_to = reply_address(card.service_id or "desk", card.number,
                                 self.settings.reply_token_secret.encode(),
                                 self.settings.inbound_domain)
        msg = build_email(mail, to=delivery["recipient"], mail_from=self.settings.mail_from,
                          message_id=message_id, reply_to=reply_to,
                          to_name=card.requester.name if card.requester else None)
        try:
            await send_mail(msg, self.settings.smtp)
        except MailRefused as exc:
            raise DeliveryError(str(exc), permanent=True) from exc
        return message_id
