"""The e-mail channel's adapter: its doors (SMTP listener, IMAP poller, the MTA's HTTP pipe)
and the processing workers behind them, started and stopped together."""

from __future__ import annotations

from collections.abc import Sequence

from desk_contracts.channels import EMAIL
from desk_runtime.service import ServiceRuntime
from fastapi import APIRouter

from intake.attachments import AttachmentStore
from intake.channel import ChannelAdapter
from intake.mail import http
from intake.mail.imap import ImapPoller
from intake.mail.ingest import MailIngest
from intake.mail.smtp import SmtpListener
from intake.settings import IntakeSettings


class MailChannel(ChannelAdapter):
    name = EMAIL
    request_on_card = True  # its Message-ID threads the card, those copied may answer

    def __init__(self, runtime: ServiceRuntime, settings: IntakeSettings,
                 attachments: AttachmentStore):
        super().__init__(runtime, settings, attachments)
        self.ingest = MailIngest(runtime, settings, attachments)
        self.smtp = SmtpListener(self.ingest, host=settings.smtp_host, port=settings.smtp_port,
                                 domain=settings.inbound_domain,
                                 max_bytes=settings.max_message_bytes)
        self.imap = ImapPoller(self.ingest, settings.imap_poll_seconds, settings.link_secret)

    def routers(self) -> Sequence[APIRouter]:
        return (http.router, http.admin)

    async def start(self) -> None:
        self.ingest.start()
        if self.settings.smtp_port:
            await self.smtp.start()
        self.imap.start(self.runtime.tasks)

    async def stop(self) -> None:
        await self.imap.stop()
        await self.smtp.stop()
        await self.ingest.stop()
