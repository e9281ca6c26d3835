"""Turns bus events into notifications to send (recorded, then sent by the dispatcher).

Handlers never send: each records deliveries through the `Planner` in the consumer's
transaction. Every handler is `handler(uow, event, ctx)`; `HANDLERS` lists them with the
queue purpose and event type, and main.py registers the table in one loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from desk_contracts.catalog import StatusCategory
from desk_contracts.channels import TELEGRAM
from desk_contracts.events import (
    AddressBounced,
    CardAssigned,
    CardCreated,
    CardMentioned,
    CardMoved,
    CardUpdated,
    CatalogServiceChanged,
    CommentAdded,
    CustomerPreferencesChanged,
    ReplyReceived,
    SlaBreached,
    SlaCustomerReminder,
    SlaWarning,
)
from desk_runtime.consumer import only_when
from desk_runtime.unit_of_work import UnitOfWork

from notify.consumers.planner import Planner
from notify.domain import planning
from notify.domain.messages import notification_id
from notify.metrics import SKIPPED
from notify.repository import NotifyRepository
from notify.settings import NotifySettings


@dataclass(frozen=True)
class Context:
    """What handlers need besides the unit of work and the event."""

    settings: NotifySettings
    planner: Planner

    @staticmethod
    def repo(uow: UnitOfWork) -> NotifyRepository:
        return NotifyRepository(uow.db)


# --- customers: requests, preferences, bounces -----------------------------------------
async def on_service(uow: UnitOfWork, event: CatalogServiceChanged, ctx: Context) -> None:
    await ctx.repo(uow).upsert_service(event.service, event.revision, uow.session)


async def on_reply(uow: UnitOfWork, event: ReplyReceived, ctx: Context) -> None:
    if event.author.email:
        await ctx.repo(uow).unsuppress(event.author.email, event.received_at,
                                       "request.reply_received", uow.session)


async def on_preferences(uow: UnitOfWork, event: CustomerPreferencesChanged,
                         ctx: Context) -> None:
    repo = ctx.repo(uow)
    channels = {k: list(v) for k, v in event.channels.items()}
    await repo.save_preferences(event.email, channels, event.telegram_chat_id,
                                event.changed_at, uow.session)
    await repo.unsuppress(event.email, event.changed_at, "customer.preferences_changed",
                          uow.session)


async def on_bounce(uow: UnitOfWork, event: AddressBounced, ctx: Context) -> None:
    if event.permanent:
        await ctx.repo(uow).suppress(event.email, event.reason, event.at, uow.session)


# --- cards ------------------------------------------------------------------------------
async def on_card_created(uow: UnitOfWork, event: CardCreated, ctx: Context) -> None:
    repo = ctx.repo(uow)
    card, request = event.card, event.request  # the request travels with its card
    if request is not None and card.requester and card.requester.email:
        # the customer wrote from this address: it works again — before the
        # acknowledgment is planned, so that it is not held back by an old bounce
        await repo.unsuppress(card.requester.email, request.received_at, "request.received",
                              uow.session)
    cause = str(uow.causation.event_id)
    thread: dict[str, Any] = {"references": []}
    if request is not None and request.channel_ref:
        thread["references"].append(request.channel_ref.strip("<>"))
    if card.requester and card.requester.email:
        thread["root"] = (f"{notification_id(cause, 'acknowledgment', card.requester.email)}"
                          f"@{ctx.settings.inbound_domain}")
    # the card is new to notify unless this is a redelivery (or its events came out of
    # order, which the duplicate key and the redelivery's careful path sort out)
    await repo.save_card(card, uow.session, thread=thread,
                         new_in=uow if uow.first_delivery else None)
    service = await repo.service(card.service_id, uow.session)
    ack_thread = {"in_reply_to": thread["references"][-1] if thread["references"] else None,
                  "references": list(thread["references"])}
    # A Telegram request is acknowledged by intake's bot in the dialog itself (it sends
    # the number and threads replies to that message): notify does not repeat it there.
    received_at = request.received_at if request is not None else None
    await ctx.planner.to_customer(uow, "acknowledgment", card, service, {
        "auto_reply": service.auto_reply.get(planning.customer_language(card, service))
        if service and service.auto_reply else "",
        # the dispatcher measures request → acknowledgment from it
        "request_received_at": received_at.isoformat() if received_at else None},
        ack_thread,
        skip_channels=frozenset({TELEGRAM}) if card.channel == TELEGRAM else frozenset())
    text = request.text if request is not None else ""
    await ctx.planner.to_agents(uow, "new_request", card, service, {"text": text})


async def on_card_moved(uow: UnitOfWork, event: CardMoved, ctx: Context) -> None:
    repo, planner, settings = ctx.repo(uow), ctx.planner, ctx.settings
    card = event.card
    existing = await repo.card(card.card_id, uow.session)
    thread = (existing or {}).get("thread") or {}
    await repo.save_card(card, uow.session, thread=thread)
    service = await repo.service(card.service_id, uow.session)
    language = planning.customer_language(card, service)
    mail_thread = planning.follow_up_thread(thread)
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
        uow.after_commit(SKIPPED.labels("status_not_announced").inc)
    if event.from_lane_id != card.lane_id:
        await planner.to_agents(uow, "escalation", card, service,
                                {"lane": card.lane_id, "column": card.column_id})
    if event.from_column_id != card.column_id:
        await planner.to_agents(uow, "column_reached", card, service,
                                {"column": card.column_id, "lane": card.lane_id})


async def on_card_changed(uow: UnitOfWork, event: CardAssigned | CardUpdated,
                          ctx: Context) -> None:
    """Assigned or edited: nothing to tell anyone, but keep the card copy current."""
    await ctx.repo(uow).save_card(event.card, uow.session)


async def on_card_assigned(uow: UnitOfWork, event: CardAssigned, ctx: Context) -> None:
    """The new assignee hears it's theirs (boards leaves the contact out when an agent takes
    a card themselves, or has no way to reach them)."""
    await ctx.repo(uow).save_card(event.card, uow.session)
    if event.assignee is None:
        return
    service = await ctx.repo(uow).service(event.card.service_id, uow.session)
    await ctx.planner.to_agent(uow, "assigned", event.card, service, event.assignee,
                               {"by": event.assigned_by or ""})


async def on_card_mentioned(uow: UnitOfWork, event: CardMentioned, ctx: Context) -> None:
    """Named in an internal note, or a followed card changed (what: `change`): tell that
    one agent. A redelivered event finds its delivery recorded (its id is the cause's)."""
    service = await ctx.repo(uow).service(event.card.service_id, uow.session)
    await ctx.planner.to_agent(uow, "mentioned", event.card, service, event.agent,
                               {"by": event.by or "", "reason": event.reason,
                                "change": event.change or ""})


def _tells_someone(event: CommentAdded) -> bool:
    """Whether a comment can notify anyone — decided from the event alone, so the rest
    (the customer's own first text, internal notes) cost no transaction."""
    if event.visibility != "public":
        # Internal notes never reach a customer (their content is not even on the bus).
        SKIPPED.labels("internal_note").inc()
    elif event.author.kind == "customer" and event.reply_id is None:
        # The request's own first text: new_request covered it, never echoed back.
        SKIPPED.labels("customer_echo").inc()
    return event.is_exchange


@only_when(_tells_someone)
async def on_comment(uow: UnitOfWork, event: CommentAdded, ctx: Context) -> None:
    if not event.is_exchange:
        return
    card, thread = await ctx.planner.known_card(uow, event.card_id)
    service = await ctx.repo(uow).service(card.service_id, uow.session)
    if event.author.kind == "customer":
        # The customer replied: never echo it back to them; tell the agents.
        uow.after_commit(SKIPPED.labels("customer_echo").inc)
        await ctx.planner.to_agents(uow, "customer_reply", card, service,
                                    {"text": planning.excerpt(event.text or "")})
        return
    language = planning.customer_language(card, service)  # an agent answered
    await ctx.planner.to_customer(uow, "agent_reply", card, service, {
        "comment": {"text": event.text or "", "author": event.author.name or ""},
        "fields": planning.visible_fields(card, service, language),
        "attachments": planning.attachment_links(event.attachments),
    }, planning.follow_up_thread(thread))


# --- SLA signals ------------------------------------------------------------------------
async def _sla_alert(uow: UnitOfWork, kind: str, event: SlaWarning | SlaBreached,
                     ctx: Context) -> None:
    card, _ = await ctx.planner.known_card(uow, event.card_id)
    service = await ctx.repo(uow).service(card.service_id, uow.session)
    deadline = event.deadline.strftime("%Y-%m-%d %H:%M UTC") if event.deadline else ""
    await ctx.planner.to_agents(uow, kind, card, service,
                                {"sla": {"target": event.target, "deadline": deadline}})


async def on_sla_warning(uow: UnitOfWork, event: SlaWarning, ctx: Context) -> None:
    await _sla_alert(uow, "sla_warning", event, ctx)


async def on_sla_breached(uow: UnitOfWork, event: SlaBreached, ctx: Context) -> None:
    await _sla_alert(uow, "sla_breached", event, ctx)


async def on_reminder(uow: UnitOfWork, event: SlaCustomerReminder, ctx: Context) -> None:
    card, thread = await ctx.planner.known_card(uow, event.card_id)
    service = await ctx.repo(uow).service(card.service_id, uow.session)
    await ctx.planner.to_customer(uow, "reminder", card, service, {
        "days_waiting": event.days_waiting,
        "auto_close_at": event.auto_close_at.strftime("%Y-%m-%d %H:%M UTC")
        if event.auto_close_at else "",
    }, planning.follow_up_thread(thread))


Handler = Callable[[UnitOfWork, Any, Context], Awaitable[None]]

# (queue purpose, event type, handler): notify's one queue, `notify.events`
HANDLERS: list[tuple[str, str, Handler]] = [
    ("events", "catalog.service_changed", on_service),
    ("events", "request.reply_received", on_reply),
    ("events", "customer.preferences_changed", on_preferences),
    ("events", "customer.address_bounced", on_bounce),
    ("events", "card.created", on_card_created),
    ("events", "card.moved", on_card_moved),
    ("events", "card.assigned", on_card_assigned),
    ("events", "card.mentioned", on_card_mentioned),
    ("events", "card.updated", on_card_changed),
    ("events", "comment.added", on_comment),
    ("events", "sla.warning", on_sla_warning),
    ("events", "sla.breached", on_sla_breached),
    ("events", "sla.customer_reminder", on_reminder),
]
