"""The channels notify speaks: SMTP, the Telegram Bot API and Slack (webhook or Web API).

Each sender turns a rendered message into one channel call and classifies what went
wrong: `RateLimited` (the channel said wait; not an attempt), `SendError(permanent=True)`
(retrying cannot help: unknown chat, revoked webhook, refused address) or any other
exception (transient; retried with backoff). `SENDERS` is the registry the dispatcher
builds its workers from: a new channel is one sender class added there (customer channels
are named in `desk_contracts.channels`, agent-only ones in `notify.domain.routes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from desk_contracts.channels import EMAIL, TELEGRAM
from desk_contracts.reply_token import reply_address
from desk_runtime.mail import MailRefused, send_mail

from notify.domain.messages import build_email
from notify.domain.routes import SLACK
from notify.domain.templates import Rendered
from notify.settings import NotifySettings

TELEGRAM_MAX_TEXT = 4096


class SendError(Exception):
    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class RateLimited(Exception):
    def __init__(self, retry_after: float, message: str = "rate limited"):
        super().__init__(f"{message} (retry after {retry_after:g}s)")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Pacing:
    """Sends per second a channel accepts: to one chat/webhook, and overall (None: unpaced)."""

    per_key: float | None = None
    overall: float | None = None


class Sender(Protocol):
    channel: str

    def __init__(self, settings: NotifySettings, client: httpx.AsyncClient) -> None: ...

    @staticmethod
    def workers(settings: NotifySettings) -> int: ...

    @staticmethod
    def pacing(settings: NotifySettings) -> Pacing: ...

    def rate_key(self, delivery: dict) -> str | None: ...

    async def send(self, delivery: dict, rendered: Rendered) -> str: ...


def _retry_after(value: Any, default: float = 1.0) -> float:
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return default


class EmailSender:
    channel = EMAIL

    def __init__(self, settings: NotifySettings, client: httpx.AsyncClient | None = None):
        self.settings = settings

    @staticmethod
    def workers(settings: NotifySettings) -> int:
        return settings.email_workers

    @staticmethod
    def pacing(settings: NotifySettings) -> Pacing:
        return Pacing()

    def rate_key(self, delivery: dict) -> str | None:
        return None  # the SMTP relay paces us itself (4xx answers are retried)

    async def send(self, delivery: dict, rendered: Rendered) -> str:
        s = self.settings
        message_id = f"{delivery['_id']}@{s.inbound_domain}"
        ctx = delivery.get("context") or {}
        thread = delivery.get("thread") or {}
        reply_to = None
        if delivery.get("audience", "customer") == "customer":
            card = ctx.get("card") or {}
            service_id = (ctx.get("service") or {}).get("id") or "desk"
            # The signed token lets intake thread the customer's answer to this request.
            reply_to = reply_address(service_id, card["number"], s.reply_token_secret.encode(),
                                     s.inbound_domain)
        try:
            msg = build_email(rendered, to=delivery["recipient"], mail_from=s.mail_from,
                              message_id=message_id, reply_to=reply_to,
                              in_reply_to=thread.get("in_reply_to"),
                              references=thread.get("references") or None,
                              to_name=ctx.get("customer_name") or None
                              if delivery.get("audience", "customer") == "customer" else None)
        except ValueError as exc:
            # A header the email package refuses (a line break in a name or address, e.g.
            # recorded before contracts refused them) fails the same way on every retry.
            raise SendError(f"cannot build the message: {exc}", permanent=True) from exc
        try:
            await send_mail(msg, s.smtp)
        except MailRefused as exc:
            raise SendError(str(exc), permanent=True) from exc
        return message_id


class TelegramSender:
    channel = TELEGRAM

    def __init__(self, settings: NotifySettings, client: httpx.AsyncClient):
        self.config = settings.telegram
        self.client = client

    @staticmethod
    def workers(settings: NotifySettings) -> int:
        return settings.telegram_workers

    @staticmethod
    def pacing(settings: NotifySettings) -> Pacing:
        # the overall limit (~30/s) only ever costs a few milliseconds of waiting
        return Pacing(per_key=settings.telegram.per_chat_per_second,
                      overall=settings.telegram.global_per_second)

    def rate_key(self, delivery: dict) -> str | None:
        return f"chat:{delivery['target'].get('chat_id')}"

    async def send(self, delivery: dict, rendered: Rendered) -> str:
        if not self.config.token:
            raise SendError("Telegram is not configured (NOTIFY_TELEGRAM__TOKEN)", permanent=True)
        text = f"{rendered.subject}\n\n{rendered.text}".strip()
        if len(text) > TELEGRAM_MAX_TEXT:
            text = text[: TELEGRAM_MAX_TEXT - 1] + "…"
        body: dict[str, Any] = {"chat_id": delivery["target"]["chat_id"], "text": text,
                                "disable_web_page_preview": True}
        if delivery["target"].get("reply_markup"):
            body["reply_markup"] = delivery["target"]["reply_markup"]
        url = f"{self.config.api_base.rstrip('/')}/bot{self.config.token}/sendMessage"
        response = await self.client.post(url, json=body, timeout=self.config.timeout_seconds)
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code == 429 or data.get("error_code") == 429:
            raise RateLimited(_retry_after((data.get("parameters") or {}).get("retry_after")),
                              "Telegram: " + str(data.get("description", "Too Many Requests")))
        if response.status_code >= 500:
            raise SendError(f"Telegram answered {response.status_code}")
        if not data.get("ok"):
            # 400 chat not found, 403 bot blocked by the user: retrying cannot help.
            raise SendError(f"Telegram: {data.get('description') or response.status_code}",
                            permanent=400 <= response.status_code < 500)
        return f"tg:{data['result']['chat']['id']}:{data['result']['message_id']}"


def slack_escape(text: str) -> str:
    """Slack reads `<...>` as links and mentions: a customer writing `<!channel>` must not
    ping a whole channel, so the three control characters are escaped as Slack asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackSender:
    channel = SLACK

    def __init__(self, settings: NotifySettings, client: httpx.AsyncClient):
        self.config = settings.slack
        self.client = client

    @staticmethod
    def workers(settings: NotifySettings) -> int:
        return settings.slack_workers

    @staticmethod
    def pacing(settings: NotifySettings) -> Pacing:
        return Pacing(per_key=settings.slack.per_target_per_second)

    def rate_key(self, delivery: dict) -> str | None:
        target = delivery["target"]
        return target.get("webhook_url") or f"bot:{target.get('channel')}"

    async def send(self, delivery: dict, rendered: Rendered) -> str:
        target = delivery["target"]
        text = f"*{slack_escape(rendered.subject)}*\n{slack_escape(rendered.text)}".strip()
        if target.get("webhook_url"):
            return await self._webhook(target["webhook_url"], text)
        return await self._bot(target["channel"], text)

    async def _webhook(self, url: str, text: str) -> str:
        response = await self.client.post(url, json={"text": text},
                                          timeout=self.config.timeout_seconds)
        if response.status_code == 429:
            raise RateLimited(_retry_after(response.headers.get("retry-after")), "Slack webhook")
        if response.status_code >= 500:
            raise SendError(f"Slack webhook answered {response.status_code}")
        if response.status_code != 200:
            # 400 invalid_payload, 403 action_prohibited, 404 no_service, 410 channel_is_archived
            raise SendError(f"Slack webhook: {response.status_code} {response.text[:200]}",
                            permanent=True)
        return "slack:webhook"

    async def _bot(self, channel: str, text: str) -> str:
        if not self.config.bot_token:
            raise SendError("Slack bot token is not configured (NOTIFY_SLACK__BOT_TOKEN)",
                            permanent=True)
        response = await self.client.post(
            f"{self.config.api_base.rstrip('/')}/chat.postMessage",
            json={"channel": channel, "text": text},
            headers={"Authorization": f"Bearer {self.config.bot_token}"},
            timeout=self.config.timeout_seconds)
        if response.status_code == 429:
            raise RateLimited(_retry_after(response.headers.get("retry-after")), "Slack API")
        if response.status_code >= 500:
            raise SendError(f"Slack API answered {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise SendError(f"Slack API: unreadable answer {response.status_code}") from None
        if not data.get("ok"):
            error = data.get("error", "unknown_error")
            if error == "ratelimited":
                raise RateLimited(_retry_after(response.headers.get("retry-after")), "Slack API")
            transient = error in ("internal_error", "fatal_error", "service_unavailable",
                                  "request_timeout")
            raise SendError(f"Slack API: {error}", permanent=not transient)
        return f"slack:{data.get('channel', channel)}:{data.get('ts', '')}"


SENDERS: dict[str, type[Sender]] = {
    sender.channel: sender for sender in (EmailSender, TelegramSender, SlackSender)}
