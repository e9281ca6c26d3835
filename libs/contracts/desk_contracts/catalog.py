"""The service catalog's shape (services, their form fields and conditions) and form validation.

The portal form, the web API and the Telegram dialog all validate a request with
`validate_fields`, so a request is accepted or refused the same way on every channel.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"


class StatusCategory(StrEnum):
    """What a column means for the customer and for SLA clocks."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    WAITING_FOR_CUSTOMER = "waiting_for_customer"
    PAUSED = "paused"
    DONE = "done"


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class FieldType(StrEnum):
    TEXT = "text"
    TEXTAREA = "textarea"
    NUMBER = "number"
    SELECT = "select"
    MULTISELECT = "multiselect"
    CHECKBOX = "checkbox"
    DATE = "date"
    EMAIL = "email"


class Localized(BaseModel):
    """Text in the product's two UI languages; `en` is the fallback."""

    model_config = ConfigDict(frozen=True)

    en: str
    ru: str | None = None

    def get(self, language: str) -> str:
        return (self.ru if language == "ru" else None) or self.en


class FieldOption(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: str = Field(min_length=1, max_length=100)
    label: Localized


class FieldCondition(BaseModel):
    """The field applies only when another field's value is one of `in_`."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    field: str
    in_: tuple[str, ...] = Field(alias="in", min_length=1)


class FormField(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    label: Localized
    type: FieldType = FieldType.TEXT
    required: bool = False
    options: tuple[FieldOption, ...] = ()
    condition: FieldCondition | None = None
    show_to_customer: bool = True
    help: Localized | None = None
    max_length: int = Field(default=5000, ge=1, le=100_000)

    @model_validator(mode="after")
    def _options_for_choices(self) -> FormField:
        choice = self.type in (FieldType.SELECT, FieldType.MULTISELECT)
        if choice and not self.options:
            raise ValueError(f"field {self.key!r}: a {self.type.value} field needs options")
        if not choice and self.options:
            raise ValueError(f"field {self.key!r}: only select fields have options")
        return self


class ServiceTarget(BaseModel):
    """Where a new request of this service lands on the board."""

    model_config = ConfigDict(frozen=True)

    board_id: str
    column_id: str
    lane_id: str


class AccessRule(BaseModel):
    """Who may use a service; empty lists mean everybody the account lets in."""

    model_config = ConfigDict(frozen=True)

    domains: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


class AssignmentRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["none", "fixed", "round_robin", "least_loaded"] = "none"
    agents: tuple[str, ...] = ()


DEFAULT_STATUS_NAMES: dict[str, Localized] = {
    StatusCategory.QUEUED: Localized(en="Queued", ru="В очереди"),
    StatusCategory.IN_PROGRESS: Localized(en="In progress", ru="В работе"),
    StatusCategory.WAITING_FOR_CUSTOMER: Localized(en="Waiting for you", ru="Ждём вашего ответа"),
    StatusCategory.PAUSED: Localized(en="On hold", ru="Приостановлено"),
    StatusCategory.DONE: Localized(en="Done", ru="Готово"),
}


class ServiceDefinition(BaseModel):
    """A request type customers can choose; owned by boards, copied by everyone else."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=SLUG)
    name: Localized
    description: Localized | None = None
    group: Localized | None = None
    language: Literal["en", "ru"] = "en"
    target: ServiceTarget
    access: AccessRule = AccessRule()
    fields: tuple[FormField, ...] = ()
    allow_due_date: bool = False
    status_names: dict[StatusCategory, Localized] = Field(
        default_factory=lambda: dict(DEFAULT_STATUS_NAMES)
    )
    notify_on: tuple[StatusCategory, ...] = (StatusCategory.IN_PROGRESS, StatusCategory.DONE)
    auto_reply: Localized | None = None
    default_priority: Priority = Priority.MEDIUM
    sla_policy: str | None = None
    card_type: str | None = Field(
        None, description="the type (of its board's card types) its cards get; None: request")
    assignment: AssignmentRule = AssignmentRule()
    reply_default: Literal["public", "internal"] = "public"
    auto_close_after_days: int | None = Field(default=None, ge=1)
    active: bool = True
    # how the portal lists it: an icon (an emoji or a short symbol) and its place among
    # the services of its group (lower first; equal ones by name)
    icon: str | None = Field(None, max_length=16, pattern=r"^[^\x00-\x1f<>&\"']+$")
    order: int = Field(0, ge=0, le=10_000)
    # False for definitions saved before the option existed (they keep answering in the
    # service's language); boards' admin API turns it on for a service created without it.
    answer_in_customer_language: bool = Field(
        default=False,
        description="answer in the customer's language when the desk speaks it (en, ru); "
                    "otherwise, and for any other language, in the service's language")

    @model_validator(mode="after")
    def _fields_consistent(self) -> ServiceDefinition:
        keys: set[str] = set()
        by_key = {f.key: f for f in self.fields}
        for f in self.fields:
            if f.key in keys:
                raise ValueError(f"field {f.key!r} is defined twice")
            keys.add(f.key)
            if f.condition is not None:
                other = by_key.get(f.condition.field)
                # A condition may only look at a field defined before it, which also
                # rules out cycles and lets forms show fields in order.
                if other is None or other.key not in keys - {f.key}:
                    raise ValueError(
                        f"field {f.key!r}: condition refers to {f.condition.field!r}, "
                        "which is not a field defined before it"
                    )
                if other.options:
                    allowed = {o.value for o in other.options}
                    missing = [v for v in f.condition.in_ if v not in allowed]
                    if missing:
                        raise ValueError(
                            f"field {f.key!r}: condition values {missing} are not options "
                            f"of {other.key!r}"
                        )
        return self

    def status_name(self, category: StatusCategory | str, language: str | None = None) -> str:
        cat = StatusCategory(category)
        names = self.status_names.get(cat) or DEFAULT_STATUS_NAMES[cat]
        return names.get(language or self.language)


class FieldErrors(Exception):
    """Raised with one human-readable message per invalid field."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


# validate_answers speaks English; its messages in Russian, for the pages that show them
FIELD_ERRORS_RU = {
    "is required": "обязательное поле",
    "must be text": "должно быть текстом",
    "must be a single line": "должно быть одной строкой",
    "must be an e-mail address": "должно быть адресом e-mail",
    "must be a number": "должно быть числом",
    "must be yes or no": "должно быть «да» или «нет»",
    "must be a date (YYYY-MM-DD)": "должно быть датой (ГГГГ-ММ-ДД)",
    "is not a field of this service": "не относится к этой услуге",
    "is not a field of this board": "не относится к этой доске",
    "must be one of: ": "должно быть одним из: ",
    "must be among: ": "должно быть из списка: ",
}


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def field_applies(field: FormField, values: dict[str, Any]) -> bool:
    """Whether a conditional field is part of the form given the other answers."""
    if field.condition is None:
        return True
    other = values.get(field.condition.field)
    if isinstance(other, list):
        return any(str(v) in field.condition.in_ for v in other)
    if isinstance(other, bool):
        other = "true" if other else "false"
    return other is not None and str(other) in field.condition.in_


def applicable_fields(service: ServiceDefinition, values: dict[str, Any]) -> list[FormField]:
    """The fields that apply, in order, given the answers so far (conditions chain)."""
    result: list[FormField] = []
    seen: dict[str, Any] = {}
    for f in service.fields:
        if field_applies(f, seen):
            result.append(f)
            if f.key in values:
                seen[f.key] = values[f.key]
    return result


def _coerce(field: FormField, raw: Any) -> Any:
    """Turn one submitted value into its typed form or raise ValueError with a message."""
    t = field.type
    if t in (FieldType.TEXT, FieldType.TEXTAREA, FieldType.EMAIL):
        if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
            raise ValueError("must be text")
        text = str(raw).strip()
        if len(text) > field.max_length:
            raise ValueError(f"must be at most {field.max_length} characters")
        if t == FieldType.TEXT and "\n" in text:
            raise ValueError("must be a single line")
        if t == FieldType.EMAIL and text and not _EMAIL.match(text):
            raise ValueError("must be an e-mail address")
        return text
    if t == FieldType.NUMBER:
        if isinstance(raw, bool):
            raise ValueError("must be a number")
        try:
            number = float(str(raw).strip().replace(",", "."))
        except ValueError:
            raise ValueError("must be a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError("must be a number")
        return int(number) if number.is_integer() else number
    if t == FieldType.CHECKBOX:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "on", "yes", "1"):
            return True
        if text in ("false", "off", "no", "0", ""):
            return False
        raise ValueError("must be yes or no")
    if t == FieldType.DATE:
        try:
            return date.fromisoformat(str(raw).strip()).isoformat()
        except ValueError:
            raise ValueError("must be a date (YYYY-MM-DD)") from None
    allowed = {o.value for o in field.options}
    if t == FieldType.SELECT:
        if str(raw) not in allowed:
            raise ValueError("must be one of: " + ", ".join(sorted(allowed)))
        return str(raw)
    values = raw if isinstance(raw, list) else [raw]
    bad = [str(v) for v in values if str(v) not in allowed]
    if bad:
        raise ValueError("must be among: " + ", ".join(sorted(allowed)))
    return [str(v) for v in values]


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value is False


def validate_fields(service: ServiceDefinition, values: dict[str, Any]) -> dict[str, Any]:
    """Check submitted answers against the service's form; return the cleaned values.

    Fields whose condition does not hold are dropped (not an error: a form may have
    been filled before the answer that hides them changed). Unknown keys are errors,
    so a typo in an integration does not silently lose data.
    """
    return validate_answers(service.fields, values, unknown="is not a field of this service")


def validate_answers(fields: Sequence[FormField], values: dict[str, Any], *,
                     unknown: str = "is not a field of this form") -> dict[str, Any]:
    """`validate_fields` for any list of form fields (a board's own custom fields too)."""
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    known = {f.key for f in fields}
    for key in values:
        if key not in known:
            errors[key] = unknown
    for f in fields:
        if not field_applies(f, cleaned):
            continue
        raw = values.get(f.key)
        if raw is None or raw == "" or raw == []:
            if f.required:
                errors[f.key] = "is required"
            continue
        try:
            value = _coerce(f, raw)
        except ValueError as exc:
            errors[f.key] = str(exc)
            continue
        if f.required and _blank(value):
            errors[f.key] = "is required"
            continue
        cleaned[f.key] = value
    if errors:
        raise FieldErrors(errors)
    return cleaned
