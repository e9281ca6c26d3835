"""Every v1 event on the bus: frozen payload models keyed by (type, version).

A version only ever gains optional fields; a breaking change is a new class with
VERSION = 2 registered side by side.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from desk_contracts.access import AddressSet
from desk_contracts.catalog import Priority, ServiceDefinition, StatusCategory
from desk_contracts.envelope import Envelope

Channel = Literal["email", "telegram", "portal", "api", "agent"]
LANGUAGE_PATTERN = r"^(?:[a-z]{2,3}|unknown)$"


# C0/C1 controls and the Unicode line/paragraph separators: a name with a line break ends
# up in a mail header (header injection, or a send that fails on every retry).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _no_control(value: str | None) -> str | None:
    if value is not None and _CONTROL.search(value):
        raise ValueError("must not contain control characters (line breaks, tabs, ...)")
    return value


def clean_name(value: str | None) -> str | None:
    """A display name taken from a channel (mail From, Telegram profile) made acceptable:
    control characters become spaces. For names a person types into our forms the models
    refuse them instead."""
    if value is None:
        return None
    cleaned = re.sub(r"\s+", " ", _CONTROL.sub(" ", value)).strip()
    return cleaned or None


def _no_space(value: str | None) -> str | None:
    if value is not None and (_CONTROL.search(value) or any(c.isspace() for c in value)):
        raise ValueError("must not contain spaces or control characters")
    return value


def _safe_url(value: str | None) -> str | None:
    """An absolute http(s) URL with a host, or one of our own relative paths (`/...`).

    Anything else (`javascript:`, `data:`, `//host` protocol-relative, backslash tricks)
    would become a live link on the card page, the portal and in customers' HTML mail.
    """
    if value is None:
        return None
    if _CONTROL.search(value) or any(c.isspace() for c in value) or "\\" in value:
        raise ValueError("a URL must not contain spaces, backslashes or control characters")
    if value.startswith("/"):
        if value.startswith("//"):
            raise ValueError("protocol-relative URLs are not allowed")
        return value
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("a URL must be http(s)://host/... or a relative path starting with /")
    return value


PersonName = Annotated[str, AfterValidator(_no_control)]
"""A person's display name: any text without control characters."""
EmailAddress = Annotated[str, AfterValidator(_no_space)]
SafeUrl = Annotated[str, AfterValidator(_safe_url)]
"""A link we render: http(s) with a host, or our own relative path."""


class EventPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    SUMMARY: ClassVar[str] = ""


class Person(BaseModel):
    """Who asked: enough to reach them back on the channel they used."""

    model_config = ConfigDict(frozen=True)

    email: EmailAddress | None = Field(None, description="no spaces or control characters")
    name: PersonName | None = Field(None, description="no control characters (line breaks)")
    telegram_user_id: int | None = None
    telegram_chat_id: int | None = None
    organisation: PersonName | None = None

    @model_validator(mode="after")
    def _reachable(self) -> Person:
        if not self.email and self.telegram_chat_id is None:
            raise ValueError("a requester needs an e-mail address or a Telegram chat")
        return self


class AttachmentRef(BaseModel):
    """An attachment stored once by its owner; messages carry only this reference."""

    model_config = ConfigDict(frozen=True)

    id: str
    filename: str
    content_type: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    url: SafeUrl | None = Field(None, description="http(s)://host/... or a relative path "
                                "of ours (/...); nothing else")


class Author(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["agent", "customer", "system"]
    id: str | None = None
    name: PersonName | None = None


class RequestReceived(EventPayload):
    TYPE = "request.received"
    SUMMARY = "A customer asked for something new, on any channel."

    request_id: str = Field(min_length=1, description="Intake's id; the dedupe key of the card")
    channel: Channel
    service_id: str
    requester: Person
    subject: str = Field(min_length=1, max_length=500)
    text: str = Field(max_length=100_000)
    fields: dict[str, Any] = {}
    attachments: tuple[AttachmentRef, ...] = ()
    received_at: datetime
    channel_ref: str | None = Field(None, description="e.g. the e-mail Message-ID")
    follow_up_of: str | None = Field(None, description="card id of a closed request reopened")
    priority: Priority | None = None
    due_date: str | None = None
    created_by_agent: str | None = None
    # Was Literal["en", "ru"]: every value it allowed is still valid (a widening, so no
    # stored or in-flight event breaks); "unknown" is honest where a guess would not be.
    language: str | None = Field(
        None, pattern=LANGUAGE_PATTERN,
        description="the customer's language as detected or chosen: an ISO 639-1 code "
                    "(en, ru, de, zh, ...) or \"unknown\"; null when the channel does not say")


class ReplyReceived(EventPayload):
    TYPE = "request.reply_received"
    SUMMARY = "A customer wrote again on an existing request."

    reply_id: str = Field(min_length=1)
    card_id: str
    channel: Channel
    author: Person
    text: str = Field(max_length=100_000)
    attachments: tuple[AttachmentRef, ...] = ()
    received_at: datetime
    channel_ref: str | None = None
    threading_reason: str | None = None


class RequestRated(EventPayload):
    TYPE = "request.rated"
    SUMMARY = "A customer rated how their request was handled."

    card_id: str
    rating: int = Field(ge=1, le=5)
    comment: str | None = Field(None, max_length=5000)
    rated_at: datetime
    rated_by: str | None = None


class CardSnapshot(BaseModel):
    """What every consumer of card events needs to keep its copy current."""

    model_config = ConfigDict(frozen=True)

    card_id: str
    number: str
    version: int = Field(ge=1)
    title: str
    service_id: str | None
    board_id: str
    column_id: str
    lane_id: str
    status_category: StatusCategory
    customer_status: str
    priority: Priority
    requester: Person | None
    channel: Channel
    assignee_id: str | None = None
    request_id: str | None = None
    parent_id: str | None = None
    customer_fields: dict[str, Any] = {}
    created_at: datetime
    updated_at: datetime
    language: str | None = Field(
        None, pattern=LANGUAGE_PATTERN,
        description="the customer's language (ISO 639-1 code or \"unknown\"); notify answers "
                    "in it when the service allows and the desk speaks it")
    kind: Literal["request", "task"] = Field(
        "request", description="`task`: internal work without a requester; no customer "
                               "message or portal row ever comes from it")
    card_type: str | None = Field(None, description="the board's card type id")
    priority_key: str | None = Field(
        None, description="the board's own priority id; `priority` is the level it maps to")
    labels: tuple[str, ...] = Field((), description="label names shown on the tile")
    blocked: bool = Field(False, description="an open blocker holds the card")
    participants: tuple[str, ...] = Field((), description="agent ids taking part")
    sla_policy: str | None = Field(
        None, description="the SLA policy the card's type names (tasks get a clock only then)")


class AgentContact(BaseModel):
    """Where an agent is told about their own cards (assignment, mentions)."""

    model_config = ConfigDict(frozen=True)

    agent_id: str
    name: PersonName | None = None
    email: EmailAddress | None = None
    slack_webhook_url: SafeUrl | None = None
    language: Literal["en", "ru"] = "en"


EXCERPT_CHARS = 500


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """A text cut to `limit` characters (an ellipsis marks the cut)."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class OpeningComment(BaseModel):
    """The request's own text: its card's first public comment, written by the customer
    with the card. It travels on `card.created` only — no `comment.added` is published
    for it (like an issue's description, it is not a turn of the conversation)."""

    model_config = ConfigDict(frozen=True)

    comment_id: str
    author: Author
    text: str
    attachments: tuple[AttachmentRef, ...] = ()
    created_at: datetime


class RequestOrigin(BaseModel):
    """What a card made from a request carries of it, so that those who answer the
    customer need not follow `request.received` as well."""

    model_config = ConfigDict(frozen=True)

    received_at: datetime
    channel_ref: str | None = Field(
        None, description="the customer's own message id (an e-mail's Message-ID): "
        "answers thread under it")
    text: str = Field("", max_length=EXCERPT_CHARS,
                      description=f"the request's text, cut to {EXCERPT_CHARS} characters")
    comment: OpeningComment | None = Field(
        None, description="the request's text in full as the card's first public comment "
        "(published as no `comment.added` of its own)")


class CardCreated(EventPayload):
    TYPE = "card.created"
    SUMMARY = "A card was created for a request (or by an agent)."

    card: CardSnapshot
    follow_up_of: str | None = None
    request: RequestOrigin | None = Field(
        None, description="the request the card was made from (none for agents' own cards)")


class CardMoved(EventPayload):
    TYPE = "card.moved"
    SUMMARY = "A card moved to another column or lane."

    card: CardSnapshot
    from_column_id: str
    from_lane_id: str
    from_category: StatusCategory
    moved_by: str | None = None
    from_board_id: str | None = Field(
        None, description="set when the card came from another board (history, links and "
                          "SLA record kept)")


class CardAssigned(EventPayload):
    TYPE = "card.assigned"
    SUMMARY = "A card's responsible agent changed."

    card: CardSnapshot
    previous_assignee_id: str | None = None
    assignee: AgentContact | None = Field(
        None, description="how to tell the new assignee (None: unassigned or no contact)")
    assigned_by: str | None = Field(None, description="the name of the agent who assigned it")


class CardUpdated(EventPayload):
    TYPE = "card.updated"
    SUMMARY = "A card's title, priority, service, due date or fields changed."

    card: CardSnapshot
    changed: tuple[str, ...]
    previous_requester: Person | None = Field(
        None, description="with `requester` in `changed`: who the request belonged to")


class CardMentioned(EventPayload):
    TYPE = "card.mentioned"
    SUMMARY = ("An agent was named (@handle or @name) in an internal note, or a card they "
               "follow changed; carries no note text (internal content never leaves boards).")

    card: CardSnapshot
    agent: AgentContact
    reason: Literal["mention", "followed_change"] = "mention"
    by: str | None = Field(
        None, description="the name of the agent who wrote the note (or moved the card)")
    comment_id: str | None = None
    change: Literal["moved", "assigned", "customer_reply", "agent_reply", "internal_note",
                    "priority", "closed", "reopened"] | None = Field(
        None, description="for `followed_change`: what happened to the followed card "
                          "(absent from older publishers: a move or an assignment)")


class CardLinked(EventPayload):
    TYPE = "card.linked"
    SUMMARY = "Two cards were linked as parent and child."

    parent_id: str
    child_id: str
    parent_number: str
    child_number: str


class CommentAdded(EventPayload):
    TYPE = "comment.added"
    SUMMARY = (
        "A comment was added to a card. Internal notes carry no text or attachments: "
        "their content never leaves boards."
    )

    comment_id: str
    card_id: str
    number: str
    visibility: Literal["public", "internal"]
    author: Author
    text: str | None = None
    attachments: tuple[AttachmentRef, ...] = ()
    created_at: datetime
    reply_id: str | None = Field(None, description="the request.reply_received it came from")

    @model_validator(mode="after")
    def _internal_is_opaque(self) -> CommentAdded:
        if self.visibility == "internal" and (self.text is not None or self.attachments):
            raise ValueError("an internal note's content never travels on the bus")
        if self.visibility == "public" and self.text is None:
            raise ValueError("a public comment has text")
        return self

    @property
    def is_exchange(self) -> bool:
        """A public turn of the conversation with the customer: an agent's answer or the
        customer's reply — not an internal note, not the request's own first text."""
        if self.visibility != "public":
            return False
        return self.author.kind == "agent" or (self.author.kind == "customer"
                                               and self.reply_id is not None)


class CatalogServiceChanged(EventPayload):
    TYPE = "catalog.service_changed"
    SUMMARY = "A service (request type) was created, changed or retired (active=false)."

    service: ServiceDefinition
    revision: int = Field(ge=1)


SlaTargetName = Literal["first_response", "next_response", "resolution"]


class _SlaSignal(EventPayload):
    card_id: str
    number: str
    target: SlaTargetName
    deadline: datetime | None
    at: datetime
    policy: str
    service_id: str | None = None


class SlaWarning(_SlaSignal):
    TYPE = "sla.warning"
    SUMMARY = "An SLA target has used its warning share (e.g. 80 %)."


class SlaBreached(_SlaSignal):
    TYPE = "sla.breached"
    SUMMARY = "An SLA target's deadline passed."


class SlaMet(_SlaSignal):
    TYPE = "sla.met"
    SUMMARY = "An SLA target was met before its deadline."


SlaClock = Literal["running", "paused", "stopped"]


class SlaClockFace(BaseModel):
    """One target's clock as a card shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    clock: SlaClock
    deadline: datetime | None


class SlaClockChanged(EventPayload):
    TYPE = "sla.clock_changed"
    SUMMARY = ("An SLA target's clock started, paused, resumed, was re-priced or stopped; "
               "carries its current deadline so boards can show time left on the card.")

    card_id: str
    number: str
    target: SlaTargetName
    clock: SlaClock
    deadline: datetime | None
    at: datetime
    policy: str
    service_id: str | None = None
    clocks: dict[SlaTargetName, SlaClockFace] = Field(
        default_factory=dict,
        description="every target's clock after this change, `target`'s among them (one "
                    "change that moves several clocks publishes one event per moved clock, "
                    "each carrying all of them): a consumer that shows the clocks can show "
                    "them all from the first and find nothing new in the others")


class SlaTargetCompleted(EventPayload):
    TYPE = "sla.target_completed"
    SUMMARY = ("An SLA target was completed (answered or resolved), on time or late, with the "
               "time it took in the policy's calendar; statistics are computed from it.")

    card_id: str
    number: str
    target: SlaTargetName
    met: bool
    started_at: datetime
    completed_at: datetime
    spent_seconds: float = Field(ge=0, description="in the policy's calendar (business time)")
    elapsed_seconds: float = Field(ge=0, description="wall-clock, pauses included")
    paused_seconds: float = Field(0, ge=0, description="wall-clock time the clock was paused")
    cycle: int = Field(1, ge=1, description="2+ after a reopen or for later next-responses")
    policy: str
    calendar: str
    service_id: str | None = None


class SlaCustomerReminder(EventPayload):
    TYPE = "sla.customer_reminder"
    SUMMARY = ("A request has waited for the customer's answer for the service's reminder "
               "period; the customer is reminded.")

    card_id: str
    number: str
    waiting_since: datetime
    days_waiting: int = Field(ge=0)
    auto_close_at: datetime | None = None
    service_id: str | None = None


class SlaAutoClose(EventPayload):
    TYPE = "sla.auto_close"
    SUMMARY = ("A request waited for the customer longer than its service allows and is "
               "to be closed (boards moves it to a done column).")

    card_id: str
    number: str
    waiting_since: datetime
    service_id: str | None = None


class CustomerPreferencesChanged(EventPayload):
    TYPE = "customer.preferences_changed"
    SUMMARY = "A customer chose which notifications they get, and by which channel."

    email: str
    channels: dict[str, tuple[Literal["email", "telegram"], ...]] = Field(
        description="notification kind (acknowledgment, status_changed, agent_reply, "
                    "rating_request, reminder) → the channels it goes to; () mutes it")
    telegram_chat_id: int | None = None
    changed_at: datetime


class CustomerGroupsChanged(EventPayload):
    TYPE = "customer.groups_changed"
    SUMMARY = ("The customer groups a service's access rule may name, or the customers' "
               "organisations, were changed on the portal (which owns them); carries every "
               "group and organisation, so a copy is replaced whole.")

    groups: dict[str, AddressSet] = Field(
        description="group name → its members by exact domain (or *.domain) and address")
    revision: int = Field(ge=1, description="grows with every change; older ones are ignored")
    changed_at: datetime
    organisations: dict[str, AddressSet] | None = Field(
        None, description="organisation id → its members (they see, and may reply on, each "
                          "other's requests); None from a portal that did not send them")


class AddressBounced(EventPayload):
    TYPE = "customer.address_bounced"
    SUMMARY = "Mail to a customer's address bounced; it is not mailed again until it works."

    email: str
    reason: str = Field(max_length=2000)
    permanent: bool = True
    at: datetime


class NotificationSent(EventPayload):
    TYPE = "notification.sent"
    SUMMARY = "A notification reached its channel."

    notification_id: str
    cause_event_id: str
    channel: Literal["email", "telegram", "slack"]
    recipient: str
    kind: str
    card_id: str | None = None
    message_id: str | None = None


class NotificationFailed(EventPayload):
    TYPE = "notification.failed"
    SUMMARY = "A notification could not be delivered after its retries."

    notification_id: str
    cause_event_id: str
    channel: Literal["email", "telegram", "slack"]
    recipient: str
    kind: str
    card_id: str | None = None
    error: str


class _ArticleChange(EventPayload):
    """What integrators need of a knowledge-base article (boards' knowledge base)."""

    article_id: str
    version: int = Field(ge=1)
    title: str = Field(max_length=300)
    body: str = Field(max_length=100_000, description="Markdown, as the agent wrote it")
    language: Literal["ru", "en"]
    categories: tuple[str, ...] = Field((), description="service ids of the catalog")
    visibility: Literal["public", "groups", "agents"]
    groups: tuple[str, ...] = Field((), description="customer groups, for `groups`")
    status: Literal["draft", "published"]
    path: str = Field(description="the article's page on the portal, relative to its URL")
    changed_by: str
    changed_at: datetime


class ArticlePublished(_ArticleChange):
    TYPE = "article.published"
    SUMMARY = "A knowledge-base article was published (first, or again after a withdrawal)."


class ArticleUpdated(_ArticleChange):
    TYPE = "article.updated"
    SUMMARY = ("A new version of a knowledge-base article that is or was published was "
               "saved (`status` says whether it is still published).")


class RequestDeflected(EventPayload):
    TYPE = "request.deflected"
    SUMMARY = ("A customer who was writing a request said an article solved their problem; "
               "the draft was closed and no request was filed.")

    article_id: str
    service_id: str | None = None
    language: str | None = Field(None, pattern=LANGUAGE_PATTERN)
    deflected_at: datetime


EVENTS: dict[tuple[str, int], type[EventPayload]] = {
    (cls.TYPE, cls.VERSION): cls
    for cls in (
        RequestReceived,
        ReplyReceived,
        RequestRated,
        CardCreated,
        CardMoved,
        CardAssigned,
        CardUpdated,
        CardLinked,
        CardMentioned,
        CommentAdded,
        CatalogServiceChanged,
        SlaWarning,
        SlaBreached,
        SlaMet,
        SlaTargetCompleted,
        SlaClockChanged,
        SlaCustomerReminder,
        SlaAutoClose,
        CustomerPreferencesChanged,
        CustomerGroupsChanged,
        AddressBounced,
        NotificationSent,
        NotificationFailed,
        ArticlePublished,
        ArticleUpdated,
        RequestDeflected,
    )
}


class UnknownEvent(ValueError):
    pass


def event_class(type_: str, version: int) -> type[EventPayload]:
    try:
        return EVENTS[(type_, version)]
    except KeyError:
        raise UnknownEvent(f"no contract for {type_} v{version}") from None


def parse_payload(envelope: Envelope) -> EventPayload:
    """Validate an envelope's payload against its contract (raises on mismatch)."""
    return event_class(envelope.type, envelope.version).model_validate(envelope.payload)
