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


async def send_mail(msg: EmailMessage, smtp: SmtpConfig) -> None:
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
        code = getattr(exc, "code", None)
        if code is None or 500 <= int(code) < 600 or isinstance(
                exc, aiosmtplib.SMTPRecipientsRefused):
            raise MailRefused(str(exc)) from exc
        raise
