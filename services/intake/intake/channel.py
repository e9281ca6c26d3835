"""The seam between intake's core and a channel: what one channel's adapter provides.

A channel (e-mail, Telegram, the web API) is one adapter package with its settings. Its
adapter turns what arrives on the channel into `accept_request` calls (intake.application)
and reply events, and may owe the requester something once their card exists. The core
never branches on a channel's name: it asks the adapter registered for it
(intake.channels).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from desk_contracts.events import CardSnapshot, NotificationSent
from desk_runtime.service import ServiceRuntime
from desk_runtime.unit_of_work import UnitOfWork
from fastapi import APIRouter

from intake.attachments import AttachmentStore
from intake.repository import IntakeRepository
from intake.settings import IntakeSettings


class ChannelAdapter:
    """One channel: its doors (HTTP routes, listeners, pollers) and its hooks."""

    name: ClassVar[str]  # a `desk_contracts.channels` name
    # Whether a new card's thread entry needs the request this channel recorded (the
    # first mail's Message-ID and those it was copied to; the Telegram dialog). A web-API
    # request has nothing of the kind, and the portal's are not recorded here at all:
    # for them the card costs no read of the request.
    request_on_card: ClassVar[bool] = False

    def __init__(self, runtime: ServiceRuntime, settings: IntakeSettings,
                 attachments: AttachmentStore):
        self.runtime = runtime
        self.settings = settings
        self.attachments = attachments

    def routers(self) -> Sequence[APIRouter]:
        """The channel's HTTP routes (webhooks, raw-mail pipe, admin views)."""
        return ()

    async def start(self) -> None:
        """Start listeners and background workers; a channel without any starts nothing."""
        return None

    async def stop(self) -> None:
        """Stop what `start` started."""
        return None

    @staticmethod
    async def card_created(uow: UnitOfWork, repo: IntakeRepository, card: CardSnapshot,
                           request: dict[str, Any] | None) -> None:
        """Something the channel owes the requester once their card exists (in the
        consumer's transaction); by default nothing: notify acknowledges."""
        return None

    @staticmethod
    def sent_message_key(event: NotificationSent) -> str:
        """The key a message notify sent on this channel is threaded by (what a reply to
        it will name): by default its Message-ID."""
        return event.message_id.strip().strip("<>")
