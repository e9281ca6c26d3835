"""What notify says and to whom: notification ids and the e-mails it renders (no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from notify.domain.templates import Rendered

_NAMESPACE = uuid.UUID("6f1c4cf2-5b8e-4d53-9a47-2a57a0f0c0de")
ORIGIN_HEADER = "X-Desk-Origin"


def notification_id(cause_event_id: str, kind: str, recipient: str) -> str:
    """The same cause, kind and recipient always give the same id: a redelivery sends nothing."""
    return str(uuid.uuid5(_NAMESPACE, f"{cause_event_id}|{kind}|{recipient.lower()}"))


def build_email(mail: Rendered, *, to: str, mail_from: str, message_id: str,
                reply_to: str | None = None, in_reply_to: str | None = None,
                references: list[str] | None = None, to_name: str | None = None,
                origin: str = "notify") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = formataddr((to_name or "", to))
    msg["Subject"] = mail.subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = f"<{message_id}>"
    if reply_to:
        msg["Reply-To"] = reply_to
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    # Marks our own mail so intake never turns it into a request (loop protection).
    msg[ORIGIN_HEADER] = origin
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    return msg
