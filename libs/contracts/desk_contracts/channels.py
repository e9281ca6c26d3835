"""The channels a request can come by and a customer can be answered on: one registry.

A channel's name appears in events (`RequestReceived.channel`, `card.channel`, delivery
records), so names are stable; everything that branches on a channel (intake's adapters,
notify's senders, the portal's preferences) takes them from here instead of literals.
"""

from __future__ import annotations

from dataclasses import dataclass

EMAIL = "email"
TELEGRAM = "telegram"
PORTAL = "portal"
API = "api"
AGENT = "agent"


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    label_en: str
    label_ru: str
    address_kind: str | None  # how a customer is reached on it: "email", "chat_id", or None
    replies: bool  # a customer can answer a card by this channel
    notify: bool  # notify can deliver customer messages by this channel


CHANNELS: dict[str, ChannelSpec] = {
    spec.name: spec for spec in (
        ChannelSpec(EMAIL, "E-mail", "Эл. почта", "email", replies=True, notify=True),
        ChannelSpec(TELEGRAM, "Telegram", "Telegram", "chat_id", replies=True, notify=True),
        ChannelSpec(PORTAL, "Portal", "Портал", None, replies=True, notify=False),
        ChannelSpec(API, "API", "API", None, replies=False, notify=False),
        ChannelSpec(AGENT, "Agent", "Агент", None, replies=False, notify=False),
    )
}


def customer_channels() -> tuple[str, ...]:
    """The channels notify can deliver a customer message by, in preference order."""
    return tuple(name for name, spec in CHANNELS.items() if spec.notify)


def label(name: str, language: str = "en") -> str:
    spec = CHANNELS.get(name)
    if spec is None:
        return name
    return spec.label_ru if language == "ru" else spec.label_en
