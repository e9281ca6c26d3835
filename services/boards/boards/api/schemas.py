"""Request and response bodies of the agents' API (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from desk_contracts.catalog import Priority, StatusCategory
from desk_contracts.events import AttachmentRef, Person, PersonName
from pydantic import BaseModel, ConfigDict, Field


class Link(BaseModel):
    kind: Literal["parent", "child"]
    card_id: str
    number: str
    board_id: str
    title: str


class SlaSignal(BaseModel):
    """One SLA target as the card shows it: an alert (warning, breached, met) wins over the
    clock's face (running, paused, stopped); `deadline` gives the time left."""

    state: Literal["warning", "breached", "met", "running", "paused", "stopped"]
    deadline: datetime | None = None
    at: datetime
    policy: str | None = None
    clock: Literal["running", "paused", "stopped"] | None = None


class Rating(BaseModel):
    score: int
    comment: str | None = None
    rated_at: datetime
    rated_by: str | None = None


class HistoryEntry(BaseModel):
    at: datetime
    by: str | None
    field: str
    from_: Any = Field(None, alias="from")
    to: Any = None

    model_config = ConfigDict(populate_by_name=True)


class ChecklistItem(BaseModel):
    text: str = Field(min_length=1, max_length=500)
    done: bool = False


HEX_COLOUR = r"^#[0-9a-fA-F]{6}$"


class Label(BaseModel):
    id: str | None = Field(None, description="the board label's id (none: a free label)")
    name: str = Field(min_length=1, max_length=50)
    color: str = Field("#607d8b", pattern=HEX_COLOUR)


class Blocker(BaseModel):
    id: str
    reason: str | None = None
    card_id: str | None = None
    card_number: str | None = None
    since: datetime
    by: str | None = None
    resolved_at: datetime | None = None


class ChildProgress(BaseModel):
    done: int
    total: int
    open: list[str] = Field(description="numbers of the children not done yet")


class Card(BaseModel):
    """A card as agents see it (history only on the single-card response)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    number: str
    version: int
    title: str
    type: str = "request"
    service_id: str | None
    board_id: str
    column_id: str
    lane_id: str
    status_category: StatusCategory
    priority: Priority
    requester: dict[str, Any] | None = None
    channel: str
    request_id: str | None = None
    assignee_id: str | None = None
    members: list[str] = []
    tags: list[str] = []
    due_date: str | None = None
    fields: dict[str, Any] = {}
    checklist: list[ChecklistItem] = []
    attachments: list[dict[str, Any]] = []
    parent_id: str | None = None
    links: list[Link] = []
    unread_customer_reply: bool = False
    sla: dict[str, SlaSignal] = {}
    sla_state: Literal["warning", "breached"] | None = None
    rating: Rating | None = None
    language: str | None = None
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime
    column_entered_at: datetime
    time_in_column_seconds: int
    history: list[HistoryEntry] | None = None
    kind: Literal["request", "task"] = "request"
    priority_key: str | None = Field(None, description="the board's own priority id")
    labels: list[Label] = []
    blockers: list[Blocker] = []
    blocked: bool = False
    followers: list[str] = []
    sla_policy: str | None = None
    children: ChildProgress | None = Field(None, description="on the single-card response")


class CardPage(BaseModel):
    items: list[Card]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page")


class NewCard(BaseModel):
    """A request filed by an agent for a customer (e.g. who phoned)."""

    service_id: str
    requester: Person
    title: str = Field(min_length=1, max_length=500)
    text: str = Field(min_length=1, max_length=100_000)
    priority: Priority | None = None
    fields: dict[str, Any] = {}
    due_date: str | None = None


class NewTask(BaseModel):
    """Internal work: no requester, so nothing ever reaches a customer or the portal."""

    model_config = ConfigDict(extra="forbid")

    board_id: str
    title: str = Field(min_length=1, max_length=500)
    text: str | None = Field(None, max_length=100_000, description="kept as an internal note")
    type: str | None = Field(None, description="one of the board's internal card types")
    priority_key: str | None = Field(None, description="one of the board's priorities")
    fields: dict[str, Any] = {}
    due_date: str | None = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    assignee_id: str | None = None
    column_id: str | None = Field(None, description="default: the board's first column")
    lane_id: str | None = Field(None, description="default: the board's first lane")


class TransferCard(BaseModel):
    board_id: str
    column_id: str | None = None
    lane_id: str | None = None
    version: int = Field(ge=1)


class NewBlocker(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, min_length=1, max_length=500)
    blocked_by: str | None = Field(None, description="id or number of the blocking card")
    version: int | None = Field(None, ge=1)


class Participants(BaseModel):
    members: list[str] = Field(max_length=100, description="agent ids of the card's board")
    version: int | None = Field(None, ge=1)


class Follow(BaseModel):
    following: bool


class RequesterChange(BaseModel):
    requester: Person
    version: int = Field(ge=1)


class MoveCard(BaseModel):
    column_id: str
    lane_id: str | None = None
    version: int = Field(ge=1, description="the version you saw; a stale one gets 409")


class AssignCard(BaseModel):
    assignee_id: str | None = Field(description="agent id, or null to unassign")
    version: int | None = Field(None, ge=1)


class PatchCard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    title: str | None = Field(None, min_length=1, max_length=500)
    priority: Priority | None = None
    service_id: str | None = None
    due_date: str | None = None
    fields: dict[str, Any] | None = None
    tags: list[str] | None = None
    checklist: list[ChecklistItem] | None = None
    type: str | None = Field(None, min_length=1, max_length=50)
    labels: list[Label] | None = Field(
        None, max_length=30, description="by name: on a board with a label list, names of "
                                         "its labels (any case); otherwise free labels")
    label_ids: list[str] | None = Field(None, max_length=30,
                                        description="ids from the board's label list")
    priority_key: str | None = Field(None, description="one of the board's priorities; "
                                     "sets `priority` to its level")


class NewComment(BaseModel):
    text: str | None = Field(None, max_length=100_000)
    visibility: Literal["public", "internal"]
    canned_response_id: str | None = None
    attachments: list[AttachmentRef] = Field(
        [], description="files uploaded to intake first (POST {intake}/v1/attachments)")


class MentionOut(BaseModel):
    start: int = Field(description="where the `@` is in the text")
    end: int = Field(description="just after the name")
    agent_id: str


class Comment(BaseModel):
    id: str
    card_id: str
    visibility: Literal["public", "internal"]
    author: dict[str, Any]
    text: str
    attachments: list[dict[str, Any]] = []
    created_at: datetime
    canned_response_id: str | None = None
    mentions: list[MentionOut] = Field(
        [], description="agents an internal note names (@handle or @display name, any case)")


class CommentList(BaseModel):
    items: list[Comment]


class NewLink(BaseModel):
    child: str = Field(description="id or number of the card that becomes the child")


class Column(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    name: str = Field(min_length=1, max_length=100)
    category: StatusCategory
    wip_limit: int | None = Field(None, ge=1)
    time_limit_minutes: int | None = Field(None, ge=1)


class Lane(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    name: str = Field(min_length=1, max_length=100)


class Names(BaseModel):
    en: str = Field(min_length=1, max_length=100)
    ru: str | None = Field(None, min_length=1, max_length=100)


class CardType(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,49}$")
    name: Names
    color: str = Field("#607d8b", pattern=HEX_COLOUR)
    customer_request: bool = Field(False, description="true: a customer's request; false: "
                                   "internal work (a task)")
    fields: dict[str, Any] = Field({}, description="default custom fields of a new card")
    sla_policy: str | None = Field(None, description="tasks of this type get this SLA policy")


class BoardPriority(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,49}$")
    names: Names
    color: str = Field(pattern=HEX_COLOUR)
    level: Priority = Field(description="the level SLA policies and the bus know it by")


class BoardLabel(BaseModel):
    """One of the board's labels; a card chooses from these, by id."""

    id: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,49}$",
                           description="kept when a label is renamed; given for a new one")
    name: str = Field(min_length=1, max_length=50)
    color: str = Field("#607d8b", pattern=HEX_COLOUR)


class BoardLabels(BaseModel):
    labels: list[BoardLabel] = Field(max_length=100)


class FieldChoice(BaseModel):
    value: str = Field(min_length=1, max_length=100)
    label: Names


class BoardField(BaseModel):
    """A typed custom field of the board's cards (of some card types, or all)."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    label: Names
    type: Literal["text", "number", "date", "select", "checkbox"] = "text"
    required: bool = False
    options: list[FieldChoice] = Field([], description="a select's choices (only a select)")
    card_types: list[str] | None = Field(None, description="omitted: every card type")


class BoardFields(BaseModel):
    fields: list[BoardField] = Field(max_length=100)


class Accepts(BaseModel):
    """What may be moved here from another board (None: anything)."""

    types: list[str] | None = None
    from_boards: list[str] | None = None
    requests: bool = Field(True, description="false: internal tasks only")


class BoardIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    space: str | None = None
    columns: list[Column] = Field(min_length=1)
    lanes: list[Lane] = Field(min_length=1)
    members: list[str] | None = Field(None, description="agent ids; omitted = unchanged")
    card_types: list[CardType] | None = Field(
        None, description="omitted: request and task")
    priorities: list[BoardPriority] | None = Field(
        None, description="lowest first; omitted: low, medium, high, critical")
    accepts: Accepts | None = None
    labels: list[BoardLabel] | None = Field(
        None, description="the board's labels; omitted: kept (PUT …/labels changes them)")
    custom_fields: list[BoardField] | None = Field(
        None, description="typed custom fields; omitted: kept (PUT …/fields changes them)")
    parent_waits_for_children: bool = Field(
        False, description="a card reaches a done column only after all its children")


class Board(BoardIn):
    id: str
    members: list[str] = []


class BoardList(BaseModel):
    items: list[Board]


class NewAgent(BaseModel):
    id: str | None = Field(None, pattern=r"^[a-zA-Z0-9._-]{1,64}$")
    # an agent's name signs public comments (Author.name): no control characters
    name: PersonName = Field(min_length=1, max_length=200)
    email: str | None = None
    role: Literal["viewer", "agent", "lead", "admin"] = "agent"
    boards: list[str] = []
    slack_webhook_url: str | None = Field(None, pattern=r"^https://\S+$", max_length=2000,
                                          description="where assignments and mentions go")
    language: Literal["en", "ru"] = "en"


class AgentChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PersonName | None = Field(None, min_length=1, max_length=200)
    email: str | None = None
    role: Literal["viewer", "agent", "lead", "admin"] | None = None
    boards: list[str] | None = None
    active: bool | None = Field(None, description="false revokes the agent's tokens at once")
    slack_webhook_url: str | None = Field(None, pattern=r"^https://\S+$", max_length=2000)
    language: Literal["en", "ru"] | None = None


class AgentOut(BaseModel):
    id: str
    name: str
    email: str | None = None
    role: Literal["viewer", "agent", "lead", "admin"]
    boards: list[str]
    active: bool
    slack_webhook_url: str | None = None
    language: Literal["en", "ru"] = "en"


class AgentCreated(AgentOut):
    token: str = Field(description="shown once; only its hash is stored")


class AgentList(BaseModel):
    items: list[AgentOut]


class ServiceOut(BaseModel):
    revision: int
    service: dict[str, Any]


class ServiceList(BaseModel):
    items: list[ServiceOut]


class NewCannedResponse(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=20_000,
                      description="placeholders: {number} {title} {customer_name} "
                                  "{customer_email} {agent_name}")
    service_id: str | None = Field(None, description="null = for every service of the account")


class CannedResponse(NewCannedResponse):
    id: str


class CannedList(BaseModel):
    items: list[CannedResponse]
