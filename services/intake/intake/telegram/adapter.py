"""The Telegram channel's adapter: the bot's transport, update router and outbox, started
and stopped together, and what the channel adds to a new card (the promised number)."""

from __future__ import annotations

from collections.abc import Sequence

from desk_contracts.channels import TELEGRAM
from desk_contracts.events import NotificationSent
from desk_runtime.service import ServiceRuntime
from desk_runtime.worker import Worker
from fastapi import APIRouter

from intake.attachments import AttachmentStore
from intake.channel import ChannelAdapter
from intake.repository import IntakeRepository
from intake.settings import IntakeSettings
from intake.telegram import outbox, transport
from intake.telegram.outbox import TelegramOutbox
from intake.telegram.router import UpdateRouter
from intake.telegram.transport import BotTransport

POLL_IDLE_MAX = 5.0


class TelegramChannel(ChannelAdapter):
    name = TELEGRAM

    def __init__(self, runtime: ServiceRuntime, settings: IntakeSettings,
                 attachments: AttachmentStore):
        super().__init__(runtime, settings, attachments)
        self.config = settings.telegram
        repo = IntakeRepository(runtime.db)
        self.transport = BotTransport(self.config, repo)
        self.router = UpdateRouter(runtime, repo, self.transport, attachments)
        self.outbox = TelegramOutbox(repo, self.transport, runtime.leases)
        self._workers: list[Worker] = []

    def routers(self) -> Sequence[APIRouter]:
        return (transport.router,)

    async def start(self) -> None:
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
        sender = tasks.worker("telegram-outbox", self.outbox.send_round,
                              idle_max=outbox.OUTBOX_IDLE_SECONDS)
        self._workers.append(sender)
        # a consumer that queued a message commits: send it now, not at the next look
        self.runtime.on_commit(sender.wake)

    async def stop(self) -> None:
        await self.runtime.tasks.stop({"telegram-poll", "telegram-hook", "telegram-outbox"})
        self._workers.clear()
        await self.transport.close()

    card_created = staticmethod(outbox.queue_numbered)

    @staticmethod
    def sent_message_key(event: NotificationSent) -> str:
        # notify reports a Telegram message by its id in the chat; replies name the chat too
        key = event.message_id.strip().strip("<>")
        return key if key.startswith("tg:") else f"tg:{event.recipient}:{key}"
