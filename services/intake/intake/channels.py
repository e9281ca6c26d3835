"""The channels intake takes requests by: one adapter per channel, registered here.

Adding a channel = its adapter package (with its settings) + one line below (+ its name
in `desk_contracts.channels`).
"""

from __future__ import annotations

from intake.channel import ChannelAdapter
from intake.mail.adapter import MailChannel
from intake.telegram.adapter import TelegramChannel
from intake.web.adapter import WebChannel

# started in this order, stopped in the reverse
ADAPTERS: tuple[type[ChannelAdapter], ...] = (WebChannel, MailChannel, TelegramChannel)


def adapter_for(name: str | None) -> type[ChannelAdapter]:
    """The adapter of channel `name`; a channel intake has no adapter for (the portal,
    an agent) gets the defaults."""
    return next((a for a in ADAPTERS if a.name == name), ChannelAdapter)
