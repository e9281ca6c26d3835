"""The test SMTP server, able to answer DATA slowly, so a send can be caught in flight.

A message counts as received as soon as its DATA is complete (as a real MTA that has
queued it), before the slow answer: a sender stopped while waiting for that answer and
sending again later makes the customer receive it twice, which is what a test must see.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading

from aiosmtpd.controller import Controller

from tests.support.infra import free_port
from tests.support.mail import MailSink


class _SlowHandler:
    def __init__(self, sink: "SlowMailSink"):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        rcpts = [r.lower() for r in envelope.rcpt_tos]
        with self.sink.lock:
            self.sink.messages.append((list(envelope.rcpt_tos), msg, envelope.content))
            delay = self.sink.delay
            waiters = [(addr, ev) for addr, ev in self.sink.data_seen.items() if addr in rcpts]
        for _, ev in waiters:
            ev.set()
        if delay:
            await asyncio.sleep(delay)
        return "250 OK"


class SlowMailSink(MailSink):
    """MailSink whose DATA answer waits `delay` seconds (0: answer at once)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages = []
        self.lock = threading.Lock()
        self.delay = 0.0
        self.data_seen: dict[str, threading.Event] = {}
        self.controller = Controller(_SlowHandler(self), hostname="127.0.0.1", port=self.port)

    def watch(self, address: str) -> threading.Event:
        """An event set when a message to `address` has been fully transmitted."""
        ev = threading.Event()
        with self.lock:
            self.data_seen[address.lower()] = ev
        return ev
