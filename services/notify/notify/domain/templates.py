"""Message templates: built-in defaults (en/ru, packaged files), safe rendering of edited ones.

Admins edit templates through the API, so they are untrusted code: they render in
Jinja's sandbox (no attribute tricks reach Python internals), with StrictUndefined so
a typo in a variable name is refused when the template is saved, not when a customer
is waiting for the mail. A template is validated by rendering it against a sample
context of its kind; whatever fails there is refused with the reason.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from desk_contracts.channels import EMAIL
from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

CUSTOMER_KINDS = ("acknowledgment", "status_changed", "agent_reply", "rating_request", "reminder")
AGENT_KINDS = ("new_request", "customer_reply", "escalation", "sla_warning", "sla_breached",
               "column_reached")
# told to one agent about their own cards, by the contact boards sends (not by a route)
PERSONAL_KINDS = ("assigned", "mentioned")
KINDS = CUSTOMER_KINDS + AGENT_KINDS + PERSONAL_KINDS
LANGUAGES = ("en", "ru")
MAX_TEMPLATE_CHARS = 20_000


def plural(n: int, *forms: str) -> str:
    """`3|plural('day', 'days')` → "3 days"; three forms are the Russian rule
    (`3|plural('день', 'дня', 'дней')` → "3 дня"), so texts never say "day(s)"."""
    if len(forms) == 3:
        tens, units = abs(n) % 100, abs(n) % 10
        form = forms[0] if units == 1 and tens != 11 else (
            forms[1] if 2 <= units <= 4 and not 12 <= tens <= 14 else forms[2])
    elif len(forms) == 2:
        form = forms[0] if abs(n) == 1 else forms[1]
    else:
        raise ValueError("plural takes two (en) or three (ru) word forms")
    return f"{n} {form}"


_text_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                 keep_trailing_newline=True)
_html_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)
for _env in (_text_env, _html_env):
    _env.filters["plural"] = plural


@dataclass(frozen=True)
class MessageTemplate:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class TemplateInvalid(ValueError):
    """A template that does not render; carries which part failed and why."""

    def __init__(self, part: str, reason: str):
        super().__init__(f"{part}: {reason}")
        self.part = part
        self.reason = reason


@functools.lru_cache(maxsize=512)
def _compiled(html: bool, source: str) -> Template:
    """A template compiled once per source: compiling is most of a render's cost (a
    profile of notify under a burst spent more time in Jinja's compiler than in sending).
    Admin edits change the source, so a cache keyed by it never serves a stale text."""
    return (_html_env if html else _text_env).from_string(source)


def render(template: MessageTemplate, context: dict[str, Any]) -> Rendered:
    parts: dict[str, str] = {}
    for part in ("subject", "text", "html"):
        source = getattr(template, part)
        try:
            parts[part] = _compiled(part == "html", source).render(context)
        except TemplateError as exc:
            raise TemplateInvalid(part, f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # a sandboxed template can still raise e.g. ZeroDivisionError
            raise TemplateInvalid(part, f"{type(exc).__name__}: {exc}") from exc
    # A subject is one header line: a newline there would be header injection.
    subject = " ".join(parts["subject"].split())
    return Rendered(subject=subject[:250], text=parts["text"], html=parts["html"])


def validate(kind: str, template: MessageTemplate) -> Rendered:
    """Render against the kind's sample context; raise TemplateInvalid if it cannot render."""
    if kind not in KINDS:
        raise TemplateInvalid("kind", f"unknown kind {kind!r}")
    for part in ("subject", "text", "html"):
        source = getattr(template, part)
        if len(source) > MAX_TEMPLATE_CHARS:
            raise TemplateInvalid(part, f"longer than {MAX_TEMPLATE_CHARS} characters")
    rendered = render(template, sample_context(kind))
    if not rendered.subject:
        raise TemplateInvalid("subject", "renders empty")
    if not rendered.text.strip():
        raise TemplateInvalid("text", "renders empty")
    return rendered


def sample_context(kind: str) -> dict[str, Any]:
    """The variables a template of `kind` may use, with example values (documented in docs)."""
    base: dict[str, Any] = {
        "language": "en",
        "channel": EMAIL,
        "customer_name": "Anna",
        "card": {"id": "0b7c1c52-1111-4d3c-9d7f-2b4f3f1f0a11", "number": "SD-42",
                 "title": "Mail does not sync", "status": "In progress", "priority": "medium",
                 "board_id": "support", "column_id": "queue", "lane_id": "l1",
                 "url": "http://portal.example/requests/0b7c1c52",
                 "agent_url": "http://boards.example/cards/SD-42"},
        "service": {"id": "problem", "name": "Something is broken"},
    }
    extra: dict[str, dict[str, Any]] = {
        "acknowledgment": {"auto_reply": "We answer within one business day."},
        "status_changed": {"status": "In progress", "previous_status": "Queued"},
        "agent_reply": {
            "comment": {"text": "Please restart the client.", "author": "Boris"},
            "fields": [{"label": "System", "value": "Mail"}],
            "attachments": [{"filename": "howto.pdf", "url": "http://intake.example/a/1",
                             "size": 1024}],
        },
        "rating_request": {"status": "Done", "rating_links": [
            {"score": s, "url": f"http://portal.example/rate?score={s}"} for s in range(1, 6)]},
        "reminder": {"days_waiting": 3, "auto_close_at": "2026-01-10 12:00 UTC"},
        "new_request": {"text": "Since this morning my mailbox does not update.",
                        "requester": "anna@acme.example"},
        "customer_reply": {"text": "It still fails.", "requester": "anna@acme.example"},
        "escalation": {"lane": "l2", "column": "queue"},
        "sla_warning": {"sla": {"target": "resolution", "deadline": "2026-01-10 12:00 UTC"}},
        "sla_breached": {"sla": {"target": "resolution", "deadline": "2026-01-10 12:00 UTC"}},
        "column_reached": {"column": "done", "lane": "l1"},
        "assigned": {"by": "Boris"},
        "mentioned": {"by": "Boris", "reason": "mention", "change": ""},
    }
    return base | extra.get(kind, {})


class DefaultTemplates(Mapping[tuple[str, str], MessageTemplate]):
    """The built-in templates, one directory per kind under `templates/mail/` of the package:
    `<language>.subject.txt`, `<language>.txt` and `<language>.html`.

    Every default was read as the customer or agent receives it (tests/notify/test_texts.py
    holds each whole message): one greeting, each fact said once, a next step, a signature.
    The files are read once, on first use; an edge newline an editor adds is not part of a
    template (the text part always ends with exactly one).
    """

    def __init__(self, root: Traversable):
        self.root = root
        self._loaded: dict[tuple[str, str], MessageTemplate] | None = None

    def _all(self) -> dict[tuple[str, str], MessageTemplate]:
        if self._loaded is None:
            self._loaded = {(kind, lang): self._read(kind, lang)
                            for kind in KINDS for lang in LANGUAGES}
        return self._loaded

    def _read(self, kind: str, language: str) -> MessageTemplate:
        subject, text, html = ((self.root / kind / f"{language}{suffix}").read_text("utf-8")
                               for suffix in (".subject.txt", ".txt", ".html"))
        return MessageTemplate(subject=subject.strip(), text=text.strip() + "\n",
                               html=html.strip())

    def __getitem__(self, key: tuple[str, str]) -> MessageTemplate:
        return self._all()[key]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


DEFAULTS = DefaultTemplates(files("notify") / "templates" / "mail")


def default_template(kind: str, language: str) -> MessageTemplate:
    return DEFAULTS.get((kind, language)) or DEFAULTS[(kind, "en")]
