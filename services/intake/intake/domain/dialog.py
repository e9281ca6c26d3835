"""The Telegram request dialog as a state machine: states, the inputs each takes, and what
the bot is to say and store after each step. Pure: the bot fetches the service and the
user's input, calls a transition, then carries out the `Step` it gets back.

    idle --/start--> choose_service --service button--> describe --text--> fields
    fields --answer/skip--> fields ... --last answer--> (submit) --> idle
    any --/cancel--> idle
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from desk_contracts.access import is_restricted
from desk_contracts.catalog import (
    FieldErrors,
    FieldType,
    FormField,
    ServiceDefinition,
    applicable_fields,
    validate_fields,
)
from desk_contracts.events import AttachmentRef, Person, clean_name

from intake.domain.requests import RequestDraft


class State(StrEnum):
    IDLE = "idle"
    CHOOSE_SERVICE = "choose_service"
    DESCRIBE = "describe"
    FIELDS = "fields"


@dataclass(frozen=True)
class Dialog:
    chat_id: int
    state: State = State.IDLE
    lang: str = "en"
    user: Mapping[str, Any] = field(default_factory=dict)
    service_id: str | None = None
    answers: Mapping[str, Any] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()
    attachments: tuple[Mapping[str, Any], ...] = ()
    text: str = ""
    question: str | None = None  # the key of the field asked about last
    started_update: int | None = None  # with the chat id, the request's id

    @classmethod
    def from_doc(cls, chat_id: int, doc: Mapping[str, Any] | None) -> Dialog:
        if not doc:
            return cls(chat_id)
        return cls(chat_id, state=State(doc.get("state", "idle")), lang=doc.get("lang", "en"),
                   user=doc.get("user") or {}, service_id=doc.get("service_id"),
                   answers=doc.get("answers") or {}, skipped=tuple(doc.get("skipped") or ()),
                   attachments=tuple(doc.get("attachments") or ()), text=doc.get("text", ""),
                   question=doc.get("field"), started_update=doc.get("started_update"))

    def to_doc(self) -> dict[str, Any]:
        return {"_id": self.chat_id, "state": self.state.value, "lang": self.lang,
                "user": dict(self.user), "service_id": self.service_id,
                "answers": dict(self.answers), "skipped": list(self.skipped),
                "attachments": [dict(a) for a in self.attachments], "text": self.text,
                "field": self.question, "started_update": self.started_update}

    @property
    def takes_replies(self) -> bool:
        """Outside a request being written, a reply to a bot message answers on its card."""
        return self.state in (State.IDLE, State.CHOOSE_SERVICE)


@dataclass(frozen=True)
class Text:
    """A text of the bot's (intake.telegram.texts), in the dialog's language."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Button:
    label: str | Text
    data: str  # callback data: svc:<service>, opt:<field>:<value>, skip:<field>


@dataclass(frozen=True)
class Say:
    text: Text
    keyboard: tuple[tuple[Button, ...], ...] = ()


@dataclass(frozen=True)
class Step:
    """What a transition decided."""

    dialog: Dialog | None      # the dialog after the step; None = it ended (dropped)
    save: bool = False         # store `dialog` (it changed)
    say: tuple[Say, ...] = ()
    submit: bool = False       # every question is answered: hand the request in
    note: Text | None = None   # the answer to a button press (None: none to show)
    rejected: str | None = None  # the input was refused, and why (a metric label)


def offered(service: ServiceDefinition) -> bool:
    """A Telegram user has no address to check against access rules (domains, addresses,
    groups): only active, unrestricted services are offered."""
    return service.active and not is_restricted(service.access)


def language_of(user: Mapping[str, Any] | None) -> str:
    """The bot speaks Russian to a Russian Telegram client, English to everyone else."""
    return "ru" if (user or {}).get("language_code", "").startswith("ru") else "en"


def _name(service: ServiceDefinition, lang: str) -> str:
    return service.name.get(lang)


# -- commands ------------------------------------------------------------------------------

def start(dialog: Dialog, user: Mapping[str, Any], lang: str,
          services: Sequence[ServiceDefinition]) -> Step:
    """/start: a fresh dialog offering the services a Telegram user may ask for."""
    choices = [s for s in services if offered(s)]
    if not choices:
        return Step(dialog, say=(Say(Text("no_services")),))
    fresh = Dialog(dialog.chat_id, state=State.CHOOSE_SERVICE, lang=lang, user=dict(user))
    keyboard = tuple((Button(_name(s, lang), f"svc:{s.id}"),) for s in choices)
    return Step(fresh, save=True, say=(Say(Text("choose_service"), keyboard),))


def cancel(dialog: Dialog) -> Step:
    return Step(None, say=(Say(Text("cancelled")),))


# -- messages ------------------------------------------------------------------------------

def message(dialog: Dialog, text: str, files: Sequence[AttachmentRef],
            service: ServiceDefinition | None) -> Step:
    """A message that is no command and no reply to a card: the description, an answer,
    or files for the request being written. `service` is the dialog's service, if any."""
    attached = tuple(f.model_dump(mode="json") for f in files)
    if dialog.state == State.DESCRIBE:
        dialog = replace(dialog, attachments=dialog.attachments + attached)
        if text:
            return next_question(replace(dialog, text=text, state=State.FIELDS), service)
        return Step(dialog, save=True)
    if dialog.state == State.FIELDS:
        if files:
            dialog = replace(dialog, attachments=dialog.attachments + attached)
            if not text:
                return Step(dialog, save=True)
        return _saved(answer(dialog, text, service), changed=bool(files))
    if dialog.state == State.CHOOSE_SERVICE:
        return Step(dialog, say=(Say(Text("use_buttons")),))
    return Step(dialog, say=(Say(Text("help")),))


def _saved(step: Step, *, changed: bool) -> Step:
    """`step`, storing its dialog also when an earlier part of the input changed it."""
    if changed and step.dialog is not None and not step.save:
        return replace(step, save=True)
    return step


# -- buttons -------------------------------------------------------------------------------

def choose_service(dialog: Dialog, service: ServiceDefinition | None,
                   user: Mapping[str, Any], lang: str, started_update: int) -> Step:
    """The service button: the request is about `service` (None: unknown to intake)."""
    if dialog.state != State.CHOOSE_SERVICE or service is None or not service.active:
        return Step(dialog, note=Text("stale_button"))
    if is_restricted(service.access):
        return refused(dialog, service, lang)
    chosen = replace(dialog, state=State.DESCRIBE, service_id=service.id, answers={},
                     skipped=(), attachments=(), user=dict(user), lang=lang,
                     started_update=started_update)
    return Step(chosen, save=True,
                say=(Say(Text("describe", {"service": _name(service, lang)})),))


def option(dialog: Dialog, key: str, value: str, service: ServiceDefinition | None, *,
           skip: bool) -> Step:
    """An option (or skip) button of the question about field `key`."""
    if dialog.state != State.FIELDS or dialog.question != key:
        return Step(dialog, note=Text("stale_button"))
    return answer(dialog, value, service, skip=skip)


# -- questions -----------------------------------------------------------------------------

def answer(dialog: Dialog, value: Any, service: ServiceDefinition | None, *,
           skip: bool = False) -> Step:
    """An answer to the question asked last (typed, pressed or skipped)."""
    key = dialog.question
    found = next((f for f in service.fields if f.key == key), None) if service else None
    if service is None or found is None:
        return next_question(dialog, service)
    lang = dialog.lang
    if skip:
        if found.required:
            return Step(dialog, say=(Say(Text("invalid", {"label": found.label.get(lang),
                                                          "error": "is required"})),))
        return next_question(replace(dialog, skipped=(*dialog.skipped, key)), service)
    value = _typed(found, value)
    answers = {**dialog.answers, key: value}
    try:
        validate_fields(service, answers)
        error = None
    except FieldErrors as exc:
        error = exc.errors.get(key)
    if error:
        return Step(dialog, say=(Say(Text("invalid", {"label": found.label.get(lang),
                                                      "error": error})),),
                    rejected="invalid_field")
    return next_question(replace(dialog, answers=answers), service)


def _typed(found: FormField, value: Any) -> Any:
    if found.type == FieldType.SELECT and isinstance(value, str) \
            and not any(value == o.value for o in found.options):
        # typed text for a choice: accept an option's label too
        match = [o.value for o in found.options
                 if value.strip().lower() in (o.label.get("en").lower(),
                                              o.label.get("ru").lower())]
        return match[0] if match else value
    if found.type == FieldType.MULTISELECT and isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def next_question(dialog: Dialog, service: ServiceDefinition | None) -> Step:
    """Ask the next field that applies and is not answered yet; with none left, submit."""
    if service is None:
        return Step(None, say=(Say(Text("no_services")),))
    for f in applicable_fields(service, dict(dialog.answers)):
        if f.key in dialog.answers or f.key in dialog.skipped:
            continue
        return Step(replace(dialog, question=f.key), save=True, say=(_ask(f, dialog.lang),))
    return Step(dialog, save=True, submit=True)


def _ask(f: FormField, lang: str) -> Say:
    label = f.label.get(lang)
    if f.help:
        label += f"\n{f.help.get(lang)}"
    text = Text("ask_field", {"label": label,
                              "optional": "" if f.required else Text("optional")})
    keyboard: list[tuple[Button, ...]] = []
    if f.type in (FieldType.SELECT, FieldType.MULTISELECT):
        keyboard = [(Button(o.label.get(lang), f"opt:{f.key}:{o.value}"),) for o in f.options]
    elif f.type == FieldType.CHECKBOX:
        keyboard = [(Button(Text("yes"), f"opt:{f.key}:true"),
                     Button(Text("no"), f"opt:{f.key}:false"))]
    if not f.required:
        keyboard.append((Button(Text("skip"), f"skip:{f.key}"),))
    return Say(text, tuple(keyboard))


# -- submission ----------------------------------------------------------------------------

def draft(dialog: Dialog, service: ServiceDefinition, channel: str,
          received_at: datetime) -> RequestDraft:
    """The request the finished dialog hands in (its id is the chat's and the dialog's)."""
    lang = dialog.lang
    title = dialog.text.split("\n", 1)[0].strip()[:120] or _name(service, lang)
    user = dialog.user
    name = clean_name(" ".join(filter(None, [user.get("first_name"), user.get("last_name")])))
    return RequestDraft(
        request_id=f"tg-{dialog.chat_id}-{dialog.started_update}", channel=channel,
        service_id=service.id,
        requester=Person(name=name, telegram_user_id=user.get("id"),
                         telegram_chat_id=dialog.chat_id),
        subject=title, text=dialog.text, received_at=received_at,
        fields=dict(dialog.answers),
        attachments=tuple(AttachmentRef.model_validate(a) for a in dialog.attachments),
        channel_ref=f"tg:{dialog.chat_id}", language=lang)


def accepted(dialog: Dialog, title: str) -> Step:
    return Step(None, say=(Say(Text("created", {"title": title})),))


def refused(dialog: Dialog, service: ServiceDefinition, lang: str | None = None) -> Step:
    """A restricted service (an old menu, or restricted since) ends the dialog, saying
    why: the bot cannot tell who is asking."""
    name = _name(service, lang or dialog.lang)
    return Step(None, say=(Say(Text("restricted_service", {"service": name})),),
                rejected="identity_required")


def fields_rejected(dialog: Dialog, errors: Mapping[str, str],
                    service: ServiceDefinition | None) -> Step:
    """The catalog changed mid-dialog: the answers it now refuses are asked again."""
    answers = {k: v for k, v in dialog.answers.items() if k not in errors}
    skipped = tuple(k for k in dialog.skipped if k not in errors)
    return next_question(replace(dialog, answers=answers, skipped=skipped), service)

