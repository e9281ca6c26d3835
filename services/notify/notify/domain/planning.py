"""Who hears about what, on which channel, and with which template variables (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from desk_contracts.catalog import ServiceDefinition, StatusCategory
from desk_contracts.channels import CHANNELS, EMAIL, TELEGRAM
from desk_contracts.events import AttachmentRef, CardSnapshot, Person, excerpt  # noqa: F401
from desk_contracts.signed_link import sign_link

from notify.domain.templates import CUSTOMER_KINDS, LANGUAGES

_YES = {"en": ("yes", "no"), "ru": ("да", "нет")}


def language_of(service: ServiceDefinition | None) -> str:
    return service.language if service else "en"


def customer_language(card: CardSnapshot, service: ServiceDefinition | None) -> str:
    """What a customer notification is written in.

    The customer's own language when the service answers in it and the desk has texts
    for it (a German or unknown one falls back); otherwise the service's language.
    """
    spoken = card.language if card.language in LANGUAGES else None
    if spoken and (service is None or service.answer_in_customer_language):
        return spoken
    return language_of(service)


def customer_targets(kind: str, requester: Person | None, card_channel: str,
                     preferences: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(channel, recipient) pairs a customer notification goes to.

    Without preferences the customer hears on the channel they wrote from: Telegram
    requesters in Telegram, everyone else by e-mail. Preferences (kind → channels)
    override that; an empty list mutes the kind.
    """
    if requester is None or kind not in CUSTOMER_KINDS:
        return []
    chat_id = requester.telegram_chat_id
    if chat_id is None and preferences:
        chat_id = preferences.get("telegram_chat_id")
    chosen = (preferences or {}).get("channels", {}).get(kind)
    if chosen is None:
        if card_channel == TELEGRAM and chat_id is not None:
            chosen = [TELEGRAM]
        else:
            chosen = [EMAIL] if requester.email else ([TELEGRAM] if chat_id else [])
    # how the customer is reached, by each channel's kind of address
    addresses = {"email": requester.email.lower() if requester.email else None,
                 "chat_id": str(chat_id) if chat_id is not None else None}
    out: list[tuple[str, str]] = []
    for channel in chosen:
        spec = CHANNELS.get(channel)
        address = addresses.get(spec.address_kind) if spec and spec.notify else None
        if address is not None:
            out.append((channel, address))
    return out


def status_change_announced(card: CardSnapshot, from_category: StatusCategory,
                            service: ServiceDefinition | None) -> bool:
    """A move is announced when the customer-facing status really changes to one the service
    chose to announce (its `notify_on`); moves between columns of one status say nothing."""
    if StatusCategory(from_category) == StatusCategory(card.status_category):
        return False
    notify_on = service.notify_on if service else ServiceDefinition.model_fields[
        "notify_on"].default
    if card.status_category not in notify_on:
        return False
    if service is not None:
        lang = service.language
        if service.status_name(from_category, lang) == service.status_name(
                card.status_category, lang):
            return False
    return True


def status_name(service: ServiceDefinition | None, category: StatusCategory | str,
                fallback: str, language: str) -> str:
    return service.status_name(category, language) if service else fallback


def card_context(card: CardSnapshot, service: ServiceDefinition | None, *, language: str,
                 portal_url: str, boards_url: str) -> dict[str, Any]:
    """The variables every template gets (see templates.sample_context)."""
    name = card.requester.name if card.requester and card.requester.name else ""
    return {
        "language": language,
        "customer_name": name,
        "card": {
            "id": card.card_id, "number": card.number, "title": card.title,
            "status": status_name(service, card.status_category, card.customer_status,
                                  language),
            "priority": str(card.priority), "board_id": card.board_id,
            "column_id": card.column_id, "lane_id": card.lane_id,
            "url": f"{portal_url.rstrip('/')}/requests/{card.card_id}",
            "agent_url": f"{boards_url.rstrip('/')}/cards/{card.number}",
        },
        "service": {"id": card.service_id or "",
                    "name": service.name.get(language) if service else ""},
    }


def visible_fields(card: CardSnapshot, service: ServiceDefinition | None,
                   language: str) -> list[dict[str, str]]:
    """The card's customer-visible field values with their labels, for agent replies."""
    defs = {f.key: f for f in service.fields} if service else {}
    out: list[dict[str, str]] = []
    for key, value in card.customer_fields.items():
        field = defs.get(key)
        if field is not None and not field.show_to_customer:
            continue
        labels = {o.value: o.label.get(language) for o in field.options} if field else {}
        if isinstance(value, bool):
            shown = _YES.get(language, _YES["en"])[0 if value else 1]
        elif isinstance(value, list):
            shown = ", ".join(labels.get(str(v), str(v)) for v in value)
        else:
            shown = labels.get(str(value), str(value))
        out.append({"label": field.label.get(language) if field else key, "value": shown})
    return out


def attachment_links(attachments: tuple[AttachmentRef, ...]) -> list[dict[str, Any]]:
    return [{"filename": a.filename, "url": a.url or "", "size": a.size} for a in attachments]


def rating_links(card_id: str, *, portal_url: str, secret: str, days: int,
                 now: datetime | None = None) -> list[dict[str, Any]]:
    """Five links that each open the portal's confirmation page (a GET never votes)."""
    expires = (now or datetime.now(UTC)) + timedelta(days=days)
    token = sign_link("rate", card_id, secret.encode(), expires_at=expires)
    base = f"{portal_url.rstrip('/')}/requests/{card_id}/rate"
    return [{"score": s, "url": f"{base}?score={s}&t={token}"} for s in range(1, 6)]


def rating_keyboard(card_id: str) -> dict[str, Any]:
    """Telegram inline keyboard: intake turns the callback into `request.rated`."""
    return {"inline_keyboard": [[{"text": "★" * s, "callback_data": f"rate:{card_id}:{s}"}
                                 for s in range(1, 6)]]}


def follow_up_thread(thread: dict[str, Any]) -> dict[str, Any]:
    """Mail headers that thread a later message under the card's first one (the
    customer's own Message-ID, then the acknowledgment's)."""
    refs = list(thread.get("references") or [])
    if thread.get("root"):
        refs.append(thread["root"])
    return {"in_reply_to": refs[-1] if refs else None, "references": refs}
