"""The channel registry agrees with the events' channel field."""

from __future__ import annotations

import typing

from desk_contracts import channels
from desk_contracts.events import Channel


def test_every_event_channel_is_registered_and_nothing_else():
    assert set(typing.get_args(Channel)) == set(channels.CHANNELS)


def test_notify_delivers_by_email_and_telegram_only():
    assert channels.customer_channels() == (channels.EMAIL, channels.TELEGRAM)
    assert channels.label(channels.EMAIL, "ru") == "Эл. почта"
    assert channels.label("unknown-channel") == "unknown-channel"
