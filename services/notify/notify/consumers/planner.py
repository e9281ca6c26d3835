"""Records the deliveries one event causes, in the consumer's transaction (never sends).

Each delivery's id is derived from (cause event, kind, recipient), so a redelivered or
duplicated event finds its deliveries already there and nothing is sent twice.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from desk_contracts.catalog import ServiceDefinition
from desk_contracts.channels import EMAIL, TELEGRAM
from desk_contracts.events import AgentContact, CardSnapshot
from desk_runtime.unit_of_work import UnitOfWork

from notify.domain import planning
from notify.domain.messages import notification_id
from notify.domain.routes import SLACK, AgentRoute
from notify.metrics import NOTIFICATIONS, SKIPPED
from notify.repository import NotifyRepository
from notify.settings import NotifySettings

if TYPE_CHECKING:
    from notify.dispatcher import Dispatcher

ROUTE_CACHE_SECONDS = 5.0


class CardNotKnownYet(Exception):
    """An event about a card whose card.created has not reached notify: retried, then
    dead-lettered (kept with its reason) if the card never shows up."""


class Planner:
    """Records the deliveries one event causes. With a dispatcher, those it will send
    straight away are recorded already claimed by it and handed to it once the
    transaction commits (no claim round trips in the store)."""

    def __init__(self, settings: NotifySettings, dispatcher: Dispatcher | None = None):
        self.settings = settings
        self.dispatcher = dispatcher
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
    def delivery(self, uow: UnitOfWork, *, kind: str, channel: str, recipient: str,
                 card_id: str | None, context: dict[str, Any], language: str,
                 audience: str, target: dict[str, Any] | None = None,
                 thread: dict[str, Any] | None = None, status: str = "pending"
                 ) -> dict[str, Any]:
        """One notification to record (its id derived from the cause, kind and recipient)."""
        cause = str(uow.causation.event_id)
        now = datetime.now(UTC)
        delivery = {
            "_id": notification_id(cause, kind, recipient), "kind": kind, "channel": channel,
            "recipient": recipient, "audience": audience, "card_id": card_id,
            "cause_event_id": cause, "cause_type": uow.causation.type,
            "event_at": uow.causation.occurred_at, "correlation_id": uow.correlation_id,
            "language": language, "context": context | {"channel": channel},
            "target": target or {}, "thread": thread or {}, "status": status, "attempts": 0,
            "next_attempt_at": now, "claimed_until": None, "created_at": now,
            **({"due_at": now} if status == "pending" else {}),
        }
        return self.dispatcher.claim_on_record(delivery) if self.dispatcher else delivery

    async def record(self, uow: UnitOfWork, deliveries: list[dict[str, Any]]) -> None:
        """Record deliveries in one write. On the cause's first delivery they are inserted
        blind (their ids derive from it: only a duplicate of it could have written them,
        and a duplicate key then fails this attempt); a redelivery records only those not
        there yet. Those recorded claimed go to the dispatcher after the commit."""
        unique: dict[str, dict[str, Any]] = {}
        for delivery in deliveries:  # two routes may name one recipient: the first wins
            unique.setdefault(delivery["_id"], delivery)
        inserted = await NotifyRepository(uow.db).record_deliveries(
            list(unique.values()), uow)
        for delivery in deliveries:
            status = delivery["status"]
            fresh = delivery["_id"] in inserted and unique[delivery["_id"]] is delivery
            outcome = ("queued" if fresh and status == "pending"
                       else status if fresh else "duplicate")
            uow.after_commit(NOTIFICATIONS.labels(delivery["channel"], delivery["kind"],
                                                  outcome).inc)
        recorded = [unique[i] for i in unique if i in inserted
                    and unique[i]["status"] == "pending"]
        if recorded and self.dispatcher is not None:
            uow.after_commit(self.dispatcher.hand_over, recorded)

    async def to_customer(self, uow: UnitOfWork, kind: str, card: CardSnapshot,
                          service: ServiceDefinition | None, extra: dict[str, Any],
                          thread: dict[str, Any] | None, skip_channels: frozenset[str] = frozenset()
                          ) -> set[str]:
        """Record a customer notification on each of their channels; returns the channels."""
        repo = NotifyRepository(uow.db)
        requester = card.requester
        # read outside the transaction: preferences are the customer's settings, not part
        # of what this event changes (and every statement of a transaction queues in the
        # embedded store's one transaction registry)
        prefs = await repo.preferences_for(requester.email if requester else None)
        targets = [(c, r) for c, r in planning.customer_targets(kind, requester, card.channel,
                                                                prefs) if c not in skip_channels]
        if not targets:
            uow.after_commit(NOTIFICATIONS.labels("none", kind, "muted").inc)
            return set()
        language = planning.customer_language(card, service)
        context = planning.card_context(card, service, language=language,
                                        portal_url=self.settings.portal_url,
                                        boards_url=self.settings.boards_url) | extra
        deliveries = []
        # A bounced (suppressed) address is not looked up here: the dispatcher reads the
        # suppressions of a whole batch right before it sends and settles such a delivery
        # as `suppressed` unsent. Checking here too cost every customer notification a
        # read for what a few addresses ever are.
        for channel, recipient in targets:
            target = {"chat_id": int(recipient)} if channel == TELEGRAM else {}
            if channel == TELEGRAM and kind == "rating_request":
                target["reply_markup"] = planning.rating_keyboard(card.card_id)
            deliveries.append(self.delivery(
                uow, kind=kind, channel=channel, recipient=recipient, card_id=card.card_id,
                context=context, language=language, audience="customer", target=target,
                thread=thread if channel == EMAIL else None))
        await self.record(uow, deliveries)
        return {channel for channel, _ in targets}

    async def to_agents(self, uow: UnitOfWork, kind: str, card: CardSnapshot,
                        service: ServiceDefinition | None, extra: dict[str, Any],
                        lane_id: str | None = None, column_id: str | None = None) -> None:
        routes = await self.routes_for(uow, card.board_id)
        requester = card.requester
        who = (requester.email or requester.name or "") if requester else ""
        deliveries = []
        for route in routes:
            if not route.matches(kind, card.board_id, lane_id or card.lane_id,
                                 column_id or card.column_id):
                continue
            context = planning.card_context(card, service, language=route.language,
                                            portal_url=self.settings.portal_url,
                                            boards_url=self.settings.boards_url)
            context |= {"requester": who} | extra
            deliveries.extend(
                self.delivery(uow, kind=kind, channel=channel, recipient=recipient,
                              card_id=card.card_id, context=context, language=route.language,
                              audience="agent", target=target | {"route": route.id})
                for channel, recipient, target in route.targets())
        if deliveries:
            await self.record(uow, deliveries)

    async def to_agent(self, uow: UnitOfWork, kind: str, card: CardSnapshot,
                       service: ServiceDefinition | None, contact: AgentContact,
                       extra: dict[str, Any]) -> None:
        """Tell one agent about their own card by the contact boards sent: e-mail and/or
        their Slack webhook, in their language."""
        context = planning.card_context(card, service, language=contact.language,
                                        portal_url=self.settings.portal_url,
                                        boards_url=self.settings.boards_url) | extra
        deliveries = []
        if contact.email:
            deliveries.append(self.delivery(
                uow, kind=kind, channel=EMAIL, recipient=contact.email.lower(),
                card_id=card.card_id, context=context, language=contact.language,
                audience="agent"))
        if contact.slack_webhook_url:
            deliveries.append(self.delivery(
                uow, kind=kind, channel=SLACK, recipient=f"slack:agent:{contact.agent_id}",
                card_id=card.card_id, context=context, language=contact.language,
                audience="agent", target={"webhook_url": contact.slack_webhook_url}))
        if deliveries:
            await self.record(uow, deliveries)

    # --- helpers ------------------------------------------------------------------------
    async def known_card(self, uow: UnitOfWork, card_id: str
                         ) -> tuple[CardSnapshot, dict[str, Any]]:
        doc = await NotifyRepository(uow.db).card(card_id, uow.session)
        if doc is None:
            uow.after_commit(SKIPPED.labels("unknown_card").inc)
            raise CardNotKnownYet(f"card {card_id} is not known to notify yet")
        return CardSnapshot.model_validate(doc["snapshot"]), doc.get("thread") or {}
