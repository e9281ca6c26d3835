"""Talking to Telegram: sending and editing messages, files, and where updates come from
(the webhook endpoint, or long polling whose offset is stored so a restart continues).

Long polling is done by one intake replica at a time, the holder of the `telegram:poller`
lease (Telegram itself refuses two concurrent getUpdates for one bot); the offset is
written with the lease's fencing token."""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from desk_contracts.channels import TELEGRAM
from desk_runtime.http import Forbidden, NotFound
from desk_runtime.lease import Leases
from desk_runtime.logging import get_logger
from desk_runtime.metrics import REJECTED_INPUT
from desk_runtime.worker import Worker
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from intake.domain.dialog import Button, Say, Text
from intake.repository import IntakeRepository
from intake.telegram.client import BotApi, TelegramError
from intake.telegram.settings import TelegramConfig
from intake.telegram.texts import t

log = get_logger(__name__)
ALLOWED_UPDATES = ["message", "callback_query"]
# how long to wait before trying Telegram again after a failed call
POLL_RETRY_SECONDS = 1.0
DELETE_WEBHOOK_RETRY_SECONDS = 2.0
POLL_LEASE = "telegram:poller"
SET_WEBHOOK_RETRY_SECONDS = 5.0

router = APIRouter(prefix="/v1/telegram", tags=["telegram"])


def render(text: Text | str, lang: str) -> str:
    """A bot text in `lang`, its parameters rendered too (a parameter may be a text)."""
    if isinstance(text, str):
        return text
    params = {k: render(v, lang) if isinstance(v, Text) else v for k, v in text.params.items()}
    return t(text.key, lang, **params)


def _keyboard(rows: tuple[tuple[Button, ...], ...], lang: str) -> list[list[dict]] | None:
    return [[{"text": render(b.label, lang), "callback_data": b.data} for b in row]
            for row in rows] or None


class BotTransport:
    """The bot's side of the Bot API; with no bot configured, sending does nothing."""

    def __init__(self, config: TelegramConfig, repo: IntakeRepository):
        self.config = config
        self.repo = repo
        self.api: BotApi | None = None
        self._webhook_deleted = False

    @property
    def enabled(self) -> bool:
        return self.config.mode != "off" and bool(self.config.token)

    def open(self) -> None:
        self.api = BotApi(self.config.token, self.config.api_base)

    def reset(self) -> None:
        """A new configuration: polling deletes a webhook again before its first poll."""
        self._webhook_deleted = False

    async def close(self) -> None:
        if self.api is not None:
            api, self.api = self.api, None
            await api.close()

    # -- sending ----------------------------------------------------------------------------

    async def send(self, chat_id: int, text: str, keyboard: list[list[dict]] | None = None,
                   reply_to: int | None = None) -> dict | None:
        if self.api is None:
            return None
        markup = {"inline_keyboard": keyboard} if keyboard else None
        return await self.api.call("sendMessage", chat_id=chat_id, text=text,
                                   reply_markup=markup, reply_to_message_id=reply_to)

    async def say(self, chat_id: int, lang: str, said: Say) -> None:
        await self.send(chat_id, render(said.text, lang), _keyboard(said.keyboard, lang))

    async def answer_callback(self, query: dict, note: Text | None, lang: str) -> None:
        if self.api is not None:
            with contextlib.suppress(TelegramError):
                await self.api.call("answerCallbackQuery", callback_query_id=query["id"],
                                    text=render(note, lang) if note else None)

    async def mark_chosen(self, query: dict) -> None:
        """Show the choice in the question and drop its buttons (no second press)."""
        message = query.get("message") or {}
        pressed = next((b.get("text") for row in (message.get("reply_markup") or {})
                        .get("inline_keyboard", []) for b in row
                        if b.get("callback_data") == query.get("data")), None)
        if self.api is None or not message.get("message_id") or not message.get("text"):
            return
        text = message["text"] + (f"\n→ {pressed}" if pressed else "")
        with contextlib.suppress(TelegramError):
            await self.api.call("editMessageText", chat_id=message["chat"]["id"],
                                message_id=message["message_id"], text=text)

    async def download(self, file_id: str) -> bytes:
        data, _ = await self.api.download(file_id)
        return data

    # -- update sources ---------------------------------------------------------------------

    async def set_webhook_round(self, worker: Worker) -> float:
        """Tell Telegram where the webhook is; done (the worker stops) once it took it."""
        try:
            await self.api.call("setWebhook", url=self.config.webhook_url,
                                secret_token=self.config.webhook_secret or None,
                                allowed_updates=ALLOWED_UPDATES)
        except Exception as exc:
            log.warning("telegram.set_webhook_failed", error=str(exc))
            return SET_WEBHOOK_RETRY_SECONDS
        worker.stop()
        return 0

    async def poll_round(self, handle: Callable[[dict], Awaitable[None]],
                         leases: Leases) -> float:
        """One long poll under the poller's lease: every update handed to `handle`, the
        offset stored after each. A replica without the lease looks again within a third
        of its TTL, so it takes over soon after the holder dies."""
        try:
            lease = await leases.acquire(POLL_LEASE)
        except Exception as exc:  # noqa: BLE001 (store away: the next round asks again)
            log.warning("telegram.poll_failed", error=str(exc))
            return POLL_RETRY_SECONDS
        if lease is None:
            return leases.ttl / 3
        async with leases.keeping(lease):
            return await self._poll_held(handle, lease)

    async def _poll_held(self, handle: Callable[[dict], Awaitable[None]], lease) -> float:
        if not self._webhook_deleted:
            try:
                await self.api.call("deleteWebhook")
            except Exception as exc:
                log.warning("telegram.delete_webhook_failed", error=str(exc))
                return DELETE_WEBHOOK_RETRY_SECONDS
            self._webhook_deleted = True
        try:
            updates = await self.api.call(
                "getUpdates", offset=await self.repo.polling_offset(),
                timeout=self.config.poll_timeout_seconds, allowed_updates=ALLOWED_UPDATES)
            for update in updates:
                lease.check()  # taken over meanwhile: the new holder fetches these again
                await handle(update)
                await self.repo.save_polling_offset(update["update_id"] + 1, lease)
        except Exception as exc:
            log.warning("telegram.poll_failed", error=str(exc))
            return POLL_RETRY_SECONDS
        return 0


@router.post("/webhook")
async def webhook(request: Request) -> JSONResponse:
    """Telegram's webhook; refuses anything without the configured secret header."""
    bot = request.app.state.channels[TELEGRAM]
    config = bot.config
    if config.mode != "webhook" or not config.token:
        raise NotFound("the Telegram webhook is not enabled")
    given = request.headers.get("x-telegram-bot-api-secret-token", "")
    if not config.webhook_secret or not hmac.compare_digest(given.encode(),
                                                            config.webhook_secret.encode()):
        REJECTED_INPUT.labels("intake", TELEGRAM, "bad_webhook_secret").inc()
        raise Forbidden("wrong or missing X-Telegram-Bot-Api-Secret-Token")
    try:
        update: Any = await request.json()
    except ValueError:
        REJECTED_INPUT.labels("intake", TELEGRAM, "bad_json").inc()
        return JSONResponse({"ok": False, "error": "body is not JSON"}, status_code=400)
    if not isinstance(update, dict):
        return JSONResponse({"ok": False, "error": "an update is a JSON object"},
                            status_code=400)
    # an exception answers 500 and Telegram redelivers; a poison update is given up on
    await bot.router.handle_or_give_up(update)
    return JSONResponse({"ok": True})
