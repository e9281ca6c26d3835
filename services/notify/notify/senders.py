"""The channels notify speaks: SMTP, the Telegram Bot API and Slack (webhook or Web API).

Each sender turns a rendered message into one channel call and classifies what went
wrong: `RateLimited` (the channel said wait; not an attempt), `SendError(permanent=True)`
(retrying cannot help: unknown chat, revoked webhook, refused address) or any other
exception (transient; retried with backoff). `SENDERS` is the registry the dispatcher
builds its workers from: a new channel is one sender class added there (customer channels
are named in `desk_contracts.channels`, agent-only ones in `notify.domain.routes`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

import aiosmtplib
import httpx
from desk_contracts.channels import EMAIL, TELEGRAM
from desk_contracts.reply_token import reply_address
from desk_runtime.mail import SmtpConfig, refused_for_good

from notify.domain.messages import build_email
from notify.domain.routes import SLACK
from notify.domain.templates import Rendered
from notify.settings import NotifySettings

TELEGRAM_MAX_TEXT = 4096
SMTP_IDLE_SECONDS = 5.0  # an SMTP connection no mail used for this long is closed


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

    async def close(self) -> None: ...


def _retry_after(value: Any, default: float = 1.0) -> float:
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return default


class EmailSender:
    channel = EMAIL

    def __init__(self, settings: NotifySettings, client: httpx.AsyncClient | None = None):
        self.settings = settings
        self.connections = SmtpConnections(settings.smtp)

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
        await self.connections.send(msg)
        return message_id

    async def close(self) -> None:
        await self.connections.close()


class SmtpConnections:
    """Connections to the SMTP relay, kept open while mail flows: a send takes an idle one
    (or opens one), so the workers sending at once each have their own and none waits for
    another's; a mail costs one SMTP transaction instead of a connection, a greeting, maybe
    TLS and a login as well. A connection idle for SMTP_IDLE_SECONDS is closed (relays drop
    idle clients anyway), and all are at stop.

    A kept connection the relay dropped meanwhile is replaced once before the send counts
    as failed; a refused recipient or message (5xx) fails for good, anything else is
    retried by the dispatcher."""

    def __init__(self, config: SmtpConfig):
        self.config = config
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []  # with when each went idle
        self._reaper: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task] = set()

    async def send(self, msg: EmailMessage) -> None:
        client = self._take()
        if client is not None:
            try:
                await self._transaction(client, msg)
                return
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code != 421:  # 421: the relay is closing this connection
                    raise
            except ConnectionError:  # dropped while it waited (SMTPServerDisconnected)
                pass
        client = aiosmtplib.SMTP(
            hostname=self.config.host, port=self.config.port,
            username=self.config.username or None, password=self.config.password or None,
            use_tls=self.config.security == "tls",
            start_tls=self.config.security == "starttls",
            timeout=self.config.timeout_seconds)
        try:
            await client.connect()
        except BaseException:
            client.close()
            raise
        await self._transaction(client, msg)

    async def _transaction(self, client: aiosmtplib.SMTP, msg: EmailMessage) -> None:
        """One mail on `client`, which goes back to the idle ones if it is still usable."""
        try:
            await client.send_message(msg)
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPResponseException) as exc:
            code = getattr(exc, "code", None)
            if code == 421:  # the relay is closing this connection
                self._discard(client)
                raise
            self._give_back(client)  # the relay said no to this mail; the session is fine
            if refused_for_good(exc):
                raise SendError(str(exc), permanent=True) from exc
            raise
        except BaseException:
            self._discard(client)  # dropped, timed out, cancelled: its state is unknown
            raise
        self._give_back(client)

    def _take(self) -> aiosmtplib.SMTP | None:
        while self._idle:
            client, _ = self._idle.pop()  # the most recently used: the likeliest alive
            if client.is_connected:
                return client
            self._discard(client)
        return None

    def _give_back(self, client: aiosmtplib.SMTP) -> None:
        if not client.is_connected:
            return
        self._idle.append((client, time.monotonic()))
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().call_later(SMTP_IDLE_SECONDS,
                                                                 self._close_idle)

    def _close_idle(self) -> None:
        self._reaper = None
        now = time.monotonic()
        stale = [c for c, since in self._idle if now - since >= SMTP_IDLE_SECONDS]
        self._idle = [(c, since) for c, since in self._idle if now - since < SMTP_IDLE_SECONDS]
        for client in stale:
            self._discard(client)
        if self._idle:
            oldest = min(since for _, since in self._idle)
            self._reaper = asyncio.get_running_loop().call_later(
                max(0.01, oldest + SMTP_IDLE_SECONDS - now), self._close_idle)

    def _discard(self, client: aiosmtplib.SMTP) -> None:
        """Close a connection politely (QUIT) in the background, or at once if it is gone."""
        if not client.is_connected:
            client.close()
            return
        task = asyncio.ensure_future(self._quit(client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _quit(client: aiosmtplib.SMTP) -> None:
        try:
            await client.quit(timeout=2)
        except Exception:  # noqa: BLE001 (closing anyway)
            client.close()

    async def close(self) -> None:
        """Close every kept connection (a stop)."""
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        idle, self._idle = self._idle, []
        for client, _ in idle:
            self._discard(client)
        if self._closing:
            await asyncio.wait(self._closing, timeout=3)


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

    async def close(self) -> None:
        """Nothing of its own: the HTTP client is the dispatcher's, which closes it."""


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

    async def close(self) -> None:
        """Nothing of its own: the HTTP client is the dispatcher's, which closes it."""


SENDERS: dict[str, type[Sender]] = {
    sender.channel: sender for sender in (EmailSender, TelegramSender, SlackSender)}
