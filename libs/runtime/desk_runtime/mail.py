"""Sending e-mail over SMTP (TLS and auth configurable), shared by every service that mails."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Literal

import aiosmtplib
from pydantic import BaseModel


class SmtpConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = 1025
    security: Literal["none", "starttls", "tls"] = "none"
    username: str = ""
    password: str = ""
    timeout_seconds: float = 20.0


class MailRefused(Exception):
    """The server refused the recipient or the message: retrying will not help."""


def refused_for_good(exc: BaseException) -> bool:
    """Whether an SMTP error refuses the recipient or the message for good (a refused
    recipient, a 5xx answer to the message): retrying will not help. Anything else — a
    4xx, a dropped connection — may pass later."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return True
    code = getattr(exc, "code", None)
    return isinstance(exc, aiosmtplib.SMTPDataError) and (code is None or 500 <= int(code) < 600)


async def send_mail(msg: EmailMessage, smtp: SmtpConfig) -> None:
    """One mail over its own connection (a one-off: a sign-in code, a test mail)."""
    try:
        await aiosmtplib.send(
            msg,
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username or None,
            password=smtp.password or None,
            use_tls=smtp.security == "tls",
            start_tls=smtp.security == "starttls",
            timeout=smtp.timeout_seconds,
        )
    except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPDataError) as exc:
        if refused_for_good(exc):
            raise MailRefused(str(exc)) from exc
        raise
