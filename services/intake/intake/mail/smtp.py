"""The SMTP listener for `<service>[+<reply token>]@<inbound domain>` (aiosmtpd).

It runs aiosmtpd's protocol on intake's own event loop, so the handler writes the raw
message to the store with the same client the rest of intake uses and answers 250 only
after that write is committed. Recipients outside our domain or of unknown services are
refused at RCPT time (550), oversized messages at DATA time (552, by aiosmtpd), and a
store failure answers 451 so the sending server retries: a message is never lost.
"""

from __future__ import annotations

import asyncio

from aiosmtpd.smtp import SMTP, Envelope, Session
from desk_contracts.channels import EMAIL
from desk_runtime.logging import get_logger
from desk_runtime.metrics import REJECTED_INPUT

from intake.mail.ingest import MailIngest
from intake.repository import IntakeRepository

log = get_logger(__name__)


class InboundHandler:
    def __init__(self, ingest: MailIngest, inbound_domain: str):
        self.ingest = ingest
        self.domain = inbound_domain
        self.reply_only = {p.lower() for p in ingest.settings.reply_only_local_parts}
        self.repo: IntakeRepository = ingest.repo

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,  # noqa: N802
                          address: str, rcpt_options: list[str]) -> str:
        rcpt = await self.ingest.recipient(address)
        if rcpt is None:
            REJECTED_INPUT.labels("intake", EMAIL, "foreign_recipient").inc()
            return f"550 5.7.1 <{address}>: relaying denied, not a mailbox of this service desk"
        if rcpt.token is None and rcpt.service not in self.reply_only:
            service = await self.repo.service(rcpt.service)
            if service is None or not service.active:
                REJECTED_INPUT.labels("intake", EMAIL, "unknown_service").inc()
                return f"550 5.1.1 <{address}>: no such service mailbox"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session,  # noqa: N802
                          envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        recipients = [r for r in [await self.ingest.recipient(a) for a in envelope.rcpt_tos]
                      if r is not None]
        try:
            accepted = await self.ingest.accept(raw, recipients, source="smtp",
                                                envelope_sender=envelope.mail_from or "")
        except Exception as exc:
            log.error("smtp.store_failed", error=str(exc))
            return "451 4.3.0 Temporary failure storing the message, please retry"
        ids = ",".join(i for i, _ in accepted)
        return f"250 2.0.0 OK queued as {ids}"


class SmtpListener:
    def __init__(self, ingest: MailIngest, *, host: str, port: int, domain: str,
                 max_bytes: int):
        self.handler = InboundHandler(ingest, domain)
        self.host = host
        self.port = port
        self.max_bytes = max_bytes
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def factory() -> SMTP:
            return SMTP(self.handler, data_size_limit=self.max_bytes, enable_SMTPUTF8=True,
                        decode_data=False, hostname=self.handler.domain,
                        ident="service desk intake")

        self.server = await loop.create_server(factory, host=self.host, port=self.port)
        log.info("smtp.listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
