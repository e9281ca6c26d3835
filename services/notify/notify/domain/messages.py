"""What notify says and to whom: notification ids and the e-mails it renders (no I/O)."""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from desk_contracts.catalog import ServiceDefinition
from desk_contracts.events import CardSnapshot

_NAMESPACE = uuid.UUID("6f1c4cf2-5b8e-4d53-9a47-2a57a0f0c0de")
ORIGIN_HEADER = "X-Desk-Origin"


def notification_id(cause_event_id: str, kind: str, recipient: str) -> str:
    """The same cause, kind and recipient always give the same id: a redelivery sends nothing."""
    return str(uuid.uuid5(_NAMESPACE, f"{cause_event_id}|{kind}|{recipient.lower()}"))


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


_ACK = {
    "en": {
        "subject": "[{number}] {title}",
        "greeting": "Hello{name},",
        "body": "We have received your request {number} ({service}).",
        "status": "Status: {status}.",
        "follow": "You can follow it at {url} or simply reply to this e-mail.",
        "signature": "Service desk",
    },
    "ru": {
        "subject": "[{number}] {title}",
        "greeting": "Здравствуйте{name},",
        "body": "Мы получили ваше обращение {number} ({service}).",
        "status": "Статус: {status}.",
        "follow": "Следить за ним можно на {url} или просто ответив на это письмо.",
        "signature": "Служба поддержки",
    },
}


def render_acknowledgment(card: CardSnapshot, service: ServiceDefinition | None, *,
                          portal_url: str, language: str | None = None) -> RenderedMail:
    lang = language or (service.language if service else "en")
    t = _ACK.get(lang, _ACK["en"])
    name = card.requester.name if card.requester and card.requester.name else ""
    values = {
        "number": card.number,
        "title": card.title,
        "name": f", {name}" if name else "",
        "service": service.name.get(lang) if service else "",
        "status": service.status_name(card.status_category, lang) if service
        else card.customer_status,
        "url": f"{portal_url.rstrip('/')}/requests/{card.number}",
    }
    paragraphs = [t["greeting"].format(**values), t["body"].format(**values)]
    if service and service.auto_reply:
        paragraphs.append(service.auto_reply.get(lang))
    paragraphs += [t["status"].format(**values), t["follow"].format(**values)]
    text = "\n\n".join(paragraphs) + "\n\n-- \n" + t["signature"] + "\n"
    html_body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    html_doc = (f'<!doctype html><html lang="{lang}"><body>{html_body}'
                f"<p>— {html.escape(t['signature'])}</p></body></html>")
    return RenderedMail(subject=t["subject"].format(**values), text=text, html=html_doc)


def build_email(mail: RenderedMail, *, to: str, mail_from: str, message_id: str,
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
