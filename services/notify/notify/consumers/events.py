"""Turns bus events into notifications to send (recorded, then sent by the dispatcher).

Handlers never send: each records deliveries with ids derived from (cause event, kind,
recipient) in the consumer's transaction, so a redelivered or duplicated event finds
its deliveries already there and nothing is sent twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from desk_contracts.catalog import ServiceDefinition, StatusCategory
from desk_contracts.events import (
    AddressBounced,
    CardAssigned,
    CardCreated,
    CardMoved,
    CardSnapshot,
    CardUpdated,
    CatalogServiceChanged,
    CommentAdded,
    CustomerPreferencesChanged,
    ReplyReceived,
    RequestReceived,
    SlaBreached,
    SlaCustomerReminder,
    SlaWarning,
)
from desk_runtime.logging import get_logger
from desk_runtime.service import ServiceRuntime
from desk_runtime.unit_of_work import UnitOfWork

from notify.domain import planning
from notify.domain.messages import notification_id
from notify.domain.routes import AgentRoute
from notify.metrics import NOTIFICATIONS, SKIPPED
from notify.repository import NotifyRepository
from notify.settings import NotifySettings

log = get_logger(__name__)
ROUTE_CACHE_SECONDS = 5.0


class CardNotKnownYet(Exception):
    """An event about a card whose card.created has not reached notify: retried, then
    dead-lettered (kept with its reason) if the card never shows up."""


class Planner:
    """Records the deliveries one event causes."""

    def __init__(self, settings: NotifySettings, wake: Callable[[str], None]):
        self.settings = settings
        self.wake = wake
        self._routes: dict[str, tuple[float, list[AgentRoute]]] = {}

    def routes_changed(self) -> None:
        self._routes.clear()

    async def routes_for(self, uow: UnitOfWork, board_id: str) -> list[AgentRoute]:
        """Routes are configuration: cached briefly (changes made through this process's
        admin API apply at once, those made through another replica within seconds)."""
        cached = self._routes.get(board_id)
        if cached is None or cached[0] < time.monotonic():
            routes = await NotifyRepository(uow.db).routes_for_board(board_id)
            cached = (time.monotonic() + ROUTE_CACHE_SECONDS, routes)
            self._routes[board_id] = cached
        return cached[1]

    # --- recording ----------------------------------------------------------------------
    async def record(self, uow: UnitOfWork, *, kind: str, channel: str, recipient: str,
                     card_id: str | None, context: dict[str, Any], language: str,
                     audience: str, target: dict[str, Any] | None = None,
                     thread: dict[str, Any] | None = None, status: str = "pending") -> str:
        cause = str(uow.causation.event_id)
        now = datetime.now(UTC)
        delivery_id = notification_id(cause, kind, recipient)
        inserted = await NotifyRepository(uow.db).enqueue({
            "_id": delivery_id, "kind": kind, "channel": channel, "recipient": recipient,
            "audience": audience, "card_id": card_id, "cause_event_id": cause,
            "cause_type": uow.causation.type, "event_at": uow.causation.occurred_at,
            "correlation_id": uow.correlation_id, "language": language,
            "context": context | {"channel": channel}, "target": target or {},
            "thread": thread or {}, "status": status, "attempts": 0,
            "next_attempt_at": now, "claimed_until": None, "created_at": now,
            **({"due_at": now} if status == "pending" else {}),
        }, uow.session)
        NOTIFICATIONS.labels(channel, kind, "queued" if inserted and status == "pending"
                             else status if inserted else "duplicate").inc()
        if inserted and status == "pending":
            self.wake(channel)
        return delivery_id

    async def to_customer(self, uow: UnitOfWork, kind: str, card: CardSnapshot,
                          service: ServiceDefinition | None, extra: dict[str, Any],
                          thread: dict[str, Any] | None, skip_channels: frozenset[str] = frozenset()
                          ) -> set[str]:
        """Record a customer notification on each of their channels; returns the channels."""
        repo = NotifyRepository(uow.db)
        requester = card.requester
        prefs = await repo.preferences_for(requester.email if requester else None, uow.session)
        targets = [(c, r) for c, r in planning.customer_targets(kind, requester, card.channel,
                                                                prefs) if c not in skip_channels]
        if not targets:
            NOTIFICATIONS.labels("none", kind, "muted").inc()
            return set()
        language = planning.customer_language(card, service)
        context = planning.card_context(card, service, language=language,
                                        portal_url=self.settings.portal_url,
                                        boards_url=self.settings.boards_url) | extra
        for channel, recipient in targets:
            status = "pending"
            if channel == "email" and await repo.suppressed(recipient, uow.session):
                status = "suppressed"
            target = {"chat_id": int(recipient)} if channel == "telegram" else {}
            if channel == "telegram" and kind == "rating_request":
                target["reply_markup"] = planning.rating_keyboard(card.card_id)
            await self.record(uow, kind=kind, channel=channel, recipient=recipient,
                              card_id=card.card_id, context=context, language=language,
                              audience="customer", target=target,
                              thread=thread if channel == "email" else None, status=status)
        return {channel for channel, _ in targets}

    async def to_agents(self, uow: UnitOfWork, kind: str, card: CardSnapshot,
                        service: ServiceDefinition | None, extra: dict[str, Any],
                        lane_id: str | None = None, column_id: str | None = None) -> None:
        routes = await self.routes_for(uow, card.board_id)
        requester = card.requester
        who = (requester.email or requester.name or "") if requester else ""
        for route in routes:
            if not route.matches(kind, card.board_id, lane_id or card.lane_id,
                                 column_id or card.column_id):
                continue
            context = planning.card_context(card, service, language=route.language,
                                            portal_url=self.settings.portal_url,
                                            boards_url=self.settings.boards_url)
            context |= {"requester": who} | extra
            for channel, recipient, target in route.targets():
                await self.record(uow, kind=kind, channel=channel, recipient=recipient,
                                  card_id=card.card_id, context=context,
                                  language=route.language, audience="agent",
                                  target=target | {"route": route.id})

    # --- helpers ------------------------------------------------------------------------
    async def known_card(self, uow: UnitOfWork, card_id: str
                         ) -> tuple[CardSnapshot, dict[str, Any]]:
        doc = await NotifyRepository(uow.db).card(card_id, uow.session)
        if doc is None:
            SKIPPED.labels("unknown_card").inc()
            raise CardNotKnownYet(f"card {card_id} is not known to notify yet")
        return CardSnapshot.model_validate(doc["snapshot"]), doc.get("thread") or {}


# how long an e-mail card waits for its request.received (see on_card_created)
REQUEST_WAIT_SECONDS = 2.0


def register(runtime: ServiceRuntime, settings: NotifySettings,
             wake: Callable[[str], None] = lambda channel: None) -> Planner:
    planner = Planner(settings, wake)
    domain = settings.inbound_domain

    @runtime.on("events", "catalog.service_changed")
    async def on_service(uow: UnitOfWork, event: CatalogServiceChanged) -> None:
        await NotifyRepository(uow.db).upsert_service(event.service, event.revision, uow.session)

    @runtime.on("events", "request.received")
    async def on_request(uow: UnitOfWork, event: RequestReceived) -> None:
        repo = NotifyRepository(uow.db)
        await repo.remember_request(event.request_id, event.channel_ref,
                                    planning.excerpt(event.text), uow.session,
                                    received_at=event.received_at)
        if event.requester.email:  # mail from this address arrived: it works again
            await repo.unsuppress(event.requester.email, event.received_at, "request.received",
                                  uow.session)

    @runtime.on("events", "request.reply_received")
    async def on_reply(uow: UnitOfWork, event: ReplyReceived) -> None:
        if event.author.email:
            await NotifyRepository(uow.db).unsuppress(
                event.author.email, event.received_at, "request.reply_received", uow.session)

    @runtime.on("events", "customer.preferences_changed")
    async def on_preferences(uow: UnitOfWork, event: CustomerPreferencesChanged) -> None:
        repo = NotifyRepository(uow.db)
        channels = {k: list(v) for k, v in event.channels.items()}
        await repo.save_preferences(event.email, channels, event.telegram_chat_id,
                                    event.changed_at, uow.session)
        await repo.unsuppress(event.email, event.changed_at, "customer.preferences_changed",
                              uow.session)

    @runtime.on("events", "customer.address_bounced")
    async def on_bounce(uow: UnitOfWork, event: AddressBounced) -> None:
        if event.permanent:
            await NotifyRepository(uow.db).suppress(event.email, event.reason, event.at,
                                                    uow.session)

    @runtime.on("events", "card.created")
    async def on_card_created(uow: UnitOfWork, event: CardCreated) -> None:
        repo = NotifyRepository(uow.db)
        card = event.card
        request = await repo.request(card.request_id, uow.session)
        if request is None and card.channel == "email" and card.request_id:
            # The request's own event (its Message-ID, for threading the acknowledgment)
            # travels apart from the card's and may be handled in parallel a moment later:
            # give it a moment (committed data, read outside this transaction).
            request = await repo.wait_for_request(card.request_id, REQUEST_WAIT_SECONDS)
        cause = str(uow.causation.event_id)
        thread: dict[str, Any] = {"references": []}
        if request and request.get("channel_ref"):
            thread["references"].append(request["channel_ref"].strip("<>"))
        if card.requester and card.requester.email:
            thread["root"] = (f"{notification_id(cause, 'acknowledgment', card.requester.email)}"
                              f"@{domain}")
        await repo.save_card(card, uow.session, thread=thread)
        service = await repo.service(card.service_id, uow.session)
        ack_thread = {"in_reply_to": thread["references"][-1] if thread["references"] else None,
                      "references": list(thread["references"])}
        # A Telegram request is acknowledged by intake's bot in the dialog itself (it sends
        # the number and threads replies to that message): notify does not repeat it there.
        received_at = (request or {}).get("received_at")
        await planner.to_customer(uow, "acknowledgment", card, service, {
            "auto_reply": service.auto_reply.get(planning.customer_language(card, service))
            if service and service.auto_reply else "",
            # the dispatcher measures request → acknowledgment from it
            "request_received_at": received_at.isoformat() if received_at else None},
            ack_thread,
            skip_channels=frozenset({"telegram"}) if card.channel == "telegram" else frozenset())
        text = (request or {}).get("text") or ""
        await planner.to_agents(uow, "new_request", card, service, {"text": text})

    async def later_thread(card_id: str, thread: dict[str, Any]) -> dict[str, Any]:
        refs = list(thread.get("references") or [])
        if thread.get("root"):
            refs.append(thread["root"])
        return {"in_reply_to": refs[-1] if refs else None, "references": refs}

    @runtime.on("events", "card.moved")
    async def on_card_moved(uow: UnitOfWork, event: CardMoved) -> None:
        repo = NotifyRepository(uow.db)
        card = event.card
        existing = await repo.card(card.card_id, uow.session)
        thread = (existing or {}).get("thread") or {}
        await repo.save_card(card, uow.session, thread=thread)
        service = await repo.service(card.service_id, uow.session)
        language = planning.customer_language(card, service)
        mail_thread = await later_thread(card.card_id, thread)
        rated_on: set[str] = set()
        if (card.status_category == StatusCategory.DONE
                and StatusCategory(event.from_category) != StatusCategory.DONE):
            # The rating request says the request is done: where it goes, it is the
            # "done" status message too (one message, not two at once).
            rated_on = await planner.to_customer(uow, "rating_request", card, service, {
                "status": planning.status_name(service, card.status_category,
                                               card.customer_status, language),
                "rating_links": planning.rating_links(
                    card.card_id, portal_url=settings.portal_url, secret=settings.link_secret,
                    days=settings.rating_link_days)}, mail_thread)
        if planning.status_change_announced(card, event.from_category, service):
            await planner.to_customer(uow, "status_changed", card, service, {
                "status": planning.status_name(service, card.status_category,
                                               card.customer_status, language),
                "previous_status": planning.status_name(service, event.from_category,
                                                        str(event.from_category), language),
            }, mail_thread, skip_channels=frozenset(rated_on))
        elif StatusCategory(event.from_category) != StatusCategory(card.status_category):
            SKIPPED.labels("status_not_announced").inc()
        if event.from_lane_id != card.lane_id:
            await planner.to_agents(uow, "escalation", card, service,
                                    {"lane": card.lane_id, "column": card.column_id})
        if event.from_column_id != card.column_id:
            await planner.to_agents(uow, "column_reached", card, service,
                                    {"column": card.column_id, "lane": card.lane_id})

    @runtime.on("events", "card.assigned")
    async def on_card_assigned(uow: UnitOfWork, event: CardAssigned) -> None:
        await NotifyRepository(uow.db).save_card(event.card, uow.session)

    @runtime.on("events", "card.updated")
    async def on_card_updated(uow: UnitOfWork, event: CardUpdated) -> None:
        await NotifyRepository(uow.db).save_card(event.card, uow.session)

    @runtime.on("events", "comment.added")
    async def on_comment(uow: UnitOfWork, event: CommentAdded) -> None:
        if event.visibility != "public":
            # Internal notes never reach a customer (their content is not even on the bus).
            SKIPPED.labels("internal_note").inc()
            return
        card, thread = await planner.known_card(uow, event.card_id)
        service = await NotifyRepository(uow.db).service(card.service_id, uow.session)
        if event.author.kind == "customer":
            # The customer wrote it: never echo it back to them; tell the agents about a
            # reply (the request's own first text has no reply_id: new_request covered it).
            SKIPPED.labels("customer_echo").inc()
            if event.reply_id is None:
                return
            await planner.to_agents(uow, "customer_reply", card, service,
                                    {"text": planning.excerpt(event.text or "")})
            return
        if event.author.kind != "agent":
            return
        language = planning.customer_language(card, service)
        await planner.to_customer(uow, "agent_reply", card, service, {
            "comment": {"text": event.text or "", "author": event.author.name or ""},
            "fields": planning.visible_fields(card, service, language),
            "attachments": planning.attachment_links(event.attachments),
        }, await later_thread(card.card_id, thread))

    async def sla_alert(uow: UnitOfWork, kind: str, event: SlaWarning | SlaBreached) -> None:
        card, _ = await planner.known_card(uow, event.card_id)
        service = await NotifyRepository(uow.db).service(card.service_id, uow.session)
        deadline = event.deadline.strftime("%Y-%m-%d %H:%M UTC") if event.deadline else ""
        await planner.to_agents(uow, kind, card, service,
                                {"sla": {"target": event.target, "deadline": deadline}})

    @runtime.on("events", "sla.warning")
    async def on_sla_warning(uow: UnitOfWork, event: SlaWarning) -> None:
        await sla_alert(uow, "sla_warning", event)

    @runtime.on("events", "sla.breached")
    async def on_sla_breached(uow: UnitOfWork, event: SlaBreached) -> None:
        await sla_alert(uow, "sla_breached", event)

    @runtime.on("events", "sla.customer_reminder")
    async def on_reminder(uow: UnitOfWork, event: SlaCustomerReminder) -> None:
        card, thread = await planner.known_card(uow, event.card_id)
        service = await NotifyRepository(uow.db).service(card.service_id, uow.session)
        await planner.to_customer(uow, "reminder", card, service, {
            "days_waiting": event.days_waiting,
            "auto_close_at": event.auto_close_at.strftime("%Y-%m-%d %H:%M UTC")
            if event.auto_close_at else "",
        }, await later_thread(card.card_id, thread))

    return planner
