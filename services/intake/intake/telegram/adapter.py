"""The Telegram channel's adapter: the bot's transport, update router and outbox, started
and stopped together, and what the channel adds to a new card (the promised number).

The bot's settings are the stored ones an admin saved (intake.telegram.bot_config), else
the environment's; a replica applies a saved change at once when it took the change, and
the others when they see its revision (a look at one document every few seconds)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from desk_contracts.channels import TELEGRAM
from desk_contracts.events import NotificationSent
from desk_runtime.logging import get_logger
from desk_runtime.secretbox import SecretBox
from desk_runtime.service import ServiceRuntime
from desk_runtime.worker import Worker
from fastapi import APIRouter

from intake.attachments import AttachmentStore
from intake.channel import ChannelAdapter
from intake.repository import IntakeRepository
from intake.settings import IntakeSettings
from intake.telegram import bot_config, outbox, transport
from intake.telegram.outbox import TelegramOutbox
from intake.telegram.router import UpdateRouter
from intake.telegram.settings import TelegramConfig
from intake.telegram.transport import BotTransport

log = get_logger(__name__)
POLL_IDLE_MAX = 5.0
# how soon another replica's saved change of the bot is applied here
CONFIG_LOOK_SECONDS = 3.0
BOT_WORKERS = {"telegram-poll", "telegram-hook", "telegram-outbox"}


class TelegramChannel(ChannelAdapter):
    name = TELEGRAM
    request_on_card = True  # the dialog the card's number is told in

    def __init__(self, runtime: ServiceRuntime, settings: IntakeSettings,
                 attachments: AttachmentStore):
        super().__init__(runtime, settings, attachments)
        self.config = settings.telegram
        self.repo = repo = IntakeRepository(runtime.db)
        self.transport = BotTransport(self.config, repo)
        self.router = UpdateRouter(runtime, repo, self.transport, attachments)
        self.outbox = TelegramOutbox(repo, self.transport, runtime.leases)
        self._workers: list[Worker] = []
        self._sender: Worker | None = None
        self._revision = 0
        self._applying = asyncio.Lock()
        self._box = SecretBox(settings.link_secret, "telegram")
        # a consumer that queued a message commits: send it now, not at the next look
        runtime.on_commit(lambda: self._sender.wake() if self._sender else None)

    def routers(self) -> Sequence[APIRouter]:
        return (transport.router, bot_config.router)

    async def start(self) -> None:
        stored = await self.repo.telegram_bot()
        self._revision = (stored or {}).get("revision", 0)
        self._use(bot_config.effective(self.settings.telegram, stored, self._box))
        await self._start_bot()
        self.runtime.tasks.worker("telegram-config", self._look_at_config,
                                  idle_max=CONFIG_LOOK_SECONDS, critical=False)

    def _use(self, config: TelegramConfig) -> None:
        self.config = self.transport.config = config
        self.transport.reset()

    async def apply(self, config: TelegramConfig, revision: int) -> None:
        """Run the bot as `config` says from now on (a saved change of revision
        `revision`); an older revision than the one running is ignored."""
        async with self._applying:
            if revision <= self._revision:
                return
            self._revision = revision
            await self._stop_bot()
            self._use(config)
            await self._start_bot()
        log.info("telegram.bot_reconfigured", mode=config.mode, revision=revision)

    async def _look_at_config(self) -> float:
        stored = await self.repo.telegram_bot()
        if stored and stored.get("revision", 0) > self._revision:
            await self.apply(bot_config.effective(self.settings.telegram, stored, self._box),
                             stored["revision"])
        return CONFIG_LOOK_SECONDS

    async def _start_bot(self) -> None:
        if not self.transport.enabled:
            return
        self.transport.open()
        tasks = self.runtime.tasks
        if self.config.mode == "polling":
            self._workers.append(tasks.worker(
                "telegram-poll", lambda: self.transport.poll_round(
                    self.router.handle_or_give_up, self.runtime.leases),
                idle_max=POLL_IDLE_MAX))
        elif self.config.webhook_url:
            hook: Worker = tasks.worker("telegram-hook",
                                        lambda: self.transport.set_webhook_round(hook),
                                        idle_max=POLL_IDLE_MAX, critical=False)
            self._workers.append(hook)
        self._sender = tasks.worker("telegram-outbox", self.outbox.send_round,
                                    idle_max=outbox.OUTBOX_IDLE_SECONDS)
        self._workers.append(self._sender)

    async def _stop_bot(self) -> None:
        self._sender = None
        await self.runtime.tasks.stop(BOT_WORKERS)
        self._workers.clear()
        await self.transport.close()

    async def stop(self) -> None:
        await self.runtime.tasks.stop({"telegram-config"})
        await self._stop_bot()

    card_created = staticmethod(outbox.queue_numbered)

    @staticmethod
    def sent_message_key(event: NotificationSent) -> str:
        # notify reports a Telegram message by its id in the chat; replies name the chat too
        key = event.message_id.strip().strip("<>")
        return key if key.startswith("tg:") else f"tg:{event.recipient}:{key}"
