"""Message templates: built-in defaults (en/ru) and safe rendering of admin-edited ones (no I/O).

Admins edit templates through the API, so they are untrusted code: they render in
Jinja's sandbox (no attribute tricks reach Python internals), with StrictUndefined so
a typo in a variable name is refused when the template is saved, not when a customer
is waiting for the mail. A template is validated by rendering it against a sample
context of its kind; whatever fails there is refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

CUSTOMER_KINDS = ("acknowledgment", "status_changed", "agent_reply", "rating_request", "reminder")
AGENT_KINDS = ("new_request", "customer_reply", "escalation", "sla_warning", "sla_breached",
               "column_reached")
KINDS = CUSTOMER_KINDS + AGENT_KINDS
LANGUAGES = ("en", "ru")
MAX_TEMPLATE_CHARS = 20_000

_text_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                 keep_trailing_newline=True)
_html_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


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


def render(template: MessageTemplate, context: dict[str, Any]) -> Rendered:
    parts: dict[str, str] = {}
    for part, env in (("subject", _text_env), ("text", _text_env), ("html", _html_env)):
        source = getattr(template, part)
        try:
            parts[part] = env.from_string(source).render(context)
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
        "channel": "email",
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
    }
    return base | extra.get(kind, {})


def _t(subject: str, text: str, html: str) -> MessageTemplate:
    return MessageTemplate(subject=subject, text=text.strip() + "\n", html=html.strip())


_ANSWER_EN = ("{% if channel == 'telegram' %}reply to this message{% else %}"
              "reply to this e-mail{% endif %}")
_ANSWER_EN_CAP = ("{% if channel == 'telegram' %}Reply to this message{% else %}"
                  "Reply to this e-mail{% endif %}")
_THIS_RU = "{% if channel == 'telegram' %}сообщение{% else %}письмо{% endif %}"
_SIGN_EN = "\n\n-- \nService desk"
_SIGN_RU = "\n\n-- \nСлужба поддержки"
_HELLO_EN = "Hello{% if customer_name %}, {{ customer_name }}{% endif %},\n\n"
_HELLO_RU = "Здравствуйте{% if customer_name %}, {{ customer_name }}{% endif %}!\n\n"
_HHELLO_EN = "<p>Hello{% if customer_name %}, {{ customer_name }}{% endif %},</p>"
_HHELLO_RU = "<p>Здравствуйте{% if customer_name %}, {{ customer_name }}{% endif %}!</p>"


def _html(lang: str, body: str) -> str:
    hello = _HHELLO_RU if lang == "ru" else _HHELLO_EN
    sign = "Служба поддержки" if lang == "ru" else "Service desk"
    return (f'<!doctype html><html lang="{lang}"><body>{hello}{body}'
            f"<p>— {sign}</p></body></html>")


_REPLY_FIELDS = ("{% if fields %}{% for f in fields %}{{ f.label }}: {{ f.value }}\n"
                 "{% endfor %}\n{% endif %}{% if attachments %}{ATT}\n"
                 "{% for a in attachments %}- {{ a.filename }}: {{ a.url }}\n{% endfor %}\n"
                 "{% endif %}")
_REPLY_FIELDS_HTML = ("{% if fields %}<ul>{% for f in fields %}<li>{{ f.label }}: {{ f.value }}"
                      "</li>{% endfor %}</ul>{% endif %}{% if attachments %}<p>{ATT}</p><ul>"
                      "{% for a in attachments %}<li><a href=\"{{ a.url }}\">{{ a.filename }}"
                      "</a></li>{% endfor %}</ul>{% endif %}")
_STARS = ("{% for r in rating_links %}{{ '★' * r.score }} {{ r.url }}\n{% endfor %}")
_STARS_HTML = ("<p>{% for r in rating_links %}<a href=\"{{ r.url }}\" "
               "style=\"text-decoration:none;font-size:22px\">{{ '★' * r.score }}</a>"
               "&nbsp; {% endfor %}</p>")

DEFAULTS: dict[tuple[str, str], MessageTemplate] = {
    ("acknowledgment", "en"): _t(
        "[{{ card.number }}] {{ card.title }}",
        _HELLO_EN + "We have received your request {{ card.number }} ({{ service.name }})."
        "{% if auto_reply %}\n\n{{ auto_reply }}{% endif %}\n\nStatus: {{ card.status }}.\n\n"
        "You can follow it at {{ card.url }} or simply " + _ANSWER_EN + "." + _SIGN_EN,
        _html("en", "<p>We have received your request <b>{{ card.number }}</b> "
              "({{ service.name }}).</p>{% if auto_reply %}<p>{{ auto_reply }}</p>{% endif %}"
              "<p>Status: {{ card.status }}.</p><p>You can follow it "
              "<a href=\"{{ card.url }}\">on the portal</a> or simply " + _ANSWER_EN + ".</p>")),
    ("acknowledgment", "ru"): _t(
        "[{{ card.number }}] {{ card.title }}",
        _HELLO_RU + "Мы получили ваше обращение {{ card.number }} ({{ service.name }})."
        "{% if auto_reply %}\n\n{{ auto_reply }}{% endif %}\n\nСтатус: {{ card.status }}.\n\n"
        "Следить за ним можно на {{ card.url }} или просто ответив на это "
        + _THIS_RU + "." + _SIGN_RU,
        _html("ru", "<p>Мы получили ваше обращение <b>{{ card.number }}</b> "
              "({{ service.name }}).</p>{% if auto_reply %}<p>{{ auto_reply }}</p>{% endif %}"
              "<p>Статус: {{ card.status }}.</p><p>Следить за ним можно "
              "<a href=\"{{ card.url }}\">на портале</a> или просто ответив на это "
              + _THIS_RU + ".</p>")),
    ("status_changed", "en"): _t(
        "[{{ card.number }}] {{ status }}: {{ card.title }}",
        _HELLO_EN + "The status of your request {{ card.number }} changed from "
        "{{ previous_status }} to {{ status }}.\n\nDetails: {{ card.url }}" + _SIGN_EN,
        _html("en", "<p>The status of your request <b>{{ card.number }}</b> changed from "
              "{{ previous_status }} to <b>{{ status }}</b>.</p>"
              "<p><a href=\"{{ card.url }}\">Open the request</a></p>")),
    ("status_changed", "ru"): _t(
        "[{{ card.number }}] {{ status }}: {{ card.title }}",
        _HELLO_RU + "Статус вашего обращения {{ card.number }} изменился: "
        "{{ previous_status }} → {{ status }}.\n\nПодробнее: {{ card.url }}" + _SIGN_RU,
        _html("ru", "<p>Статус вашего обращения <b>{{ card.number }}</b> изменился: "
              "{{ previous_status }} → <b>{{ status }}</b>.</p>"
              "<p><a href=\"{{ card.url }}\">Открыть обращение</a></p>")),
    ("agent_reply", "en"): _t(
        "Re: [{{ card.number }}] {{ card.title }}",
        _HELLO_EN + "{{ comment.text }}\n\n" + _REPLY_FIELDS.replace("{ATT}", "Attachments:")
        + _ANSWER_EN_CAP + " to answer. Request: {{ card.url }}" + _SIGN_EN,
        _html("en", "<div style=\"white-space:pre-wrap\">{{ comment.text }}</div>"
              + _REPLY_FIELDS_HTML.replace("{ATT}", "Attachments:")
              + "<p>" + _ANSWER_EN_CAP + " to answer. <a href=\"{{ card.url }}\">"
              "Open the request</a></p>")),
    ("agent_reply", "ru"): _t(
        "Re: [{{ card.number }}] {{ card.title }}",
        _HELLO_RU + "{{ comment.text }}\n\n" + _REPLY_FIELDS.replace("{ATT}", "Вложения:")
        + "Чтобы ответить, просто ответьте на это " + _THIS_RU + ". Обращение: {{ card.url }}"
        + _SIGN_RU,
        _html("ru", "<div style=\"white-space:pre-wrap\">{{ comment.text }}</div>"
              + _REPLY_FIELDS_HTML.replace("{ATT}", "Вложения:")
              + "<p>Чтобы ответить, просто ответьте на это " + _THIS_RU
              + ". <a href=\"{{ card.url }}\">"
              "Открыть обращение</a></p>")),
    ("rating_request", "en"): _t(
        "[{{ card.number }}] {{ status }} — how did we do?",
        _HELLO_EN + "Your request {{ card.number }} \"{{ card.title }}\" is done. "
        "How satisfied are you? Choose a rating (you will confirm it on the next page):\n\n"
        + _STARS + "\nNot solved? " + _ANSWER_EN_CAP + " and we will reopen it." + _SIGN_EN,
        _html("en", "<p>Your request <b>{{ card.number }}</b> “{{ card.title }}” is done. "
              "How satisfied are you? Choose a rating (you will confirm it on the next "
              "page):</p>" + _STARS_HTML
              + "<p>Not solved? " + _ANSWER_EN_CAP + " and we will reopen it.</p>")),
    ("rating_request", "ru"): _t(
        "[{{ card.number }}] {{ status }} — оцените, как мы справились",
        _HELLO_RU + "Ваше обращение {{ card.number }} «{{ card.title }}» выполнено. "
        "Оцените, пожалуйста, нашу работу (оценку вы подтвердите на следующей странице):\n\n"
        + _STARS + "\nНе решено? Ответьте на это " + _THIS_RU + ", и мы продолжим." + _SIGN_RU,
        _html("ru", "<p>Ваше обращение <b>{{ card.number }}</b> «{{ card.title }}» выполнено. "
              "Оцените, пожалуйста, нашу работу (оценку вы подтвердите на следующей "
              "странице):</p>" + _STARS_HTML
              + "<p>Не решено? Ответьте на это " + _THIS_RU + ", и мы продолжим.</p>")),
    ("reminder", "en"): _t(
        "[{{ card.number }}] We are waiting for your answer",
        _HELLO_EN + "Your request {{ card.number }} \"{{ card.title }}\" has been waiting for "
        "your answer for {{ days_waiting }} day(s).{% if auto_close_at %} Without an answer "
        "it will be closed on {{ auto_close_at }}.{% endif %}\n\n" + _ANSWER_EN_CAP + " or "
        "answer at {{ card.url }}" + _SIGN_EN,
        _html("en", "<p>Your request <b>{{ card.number }}</b> “{{ card.title }}” has been "
              "waiting for your answer for {{ days_waiting }} day(s).{% if auto_close_at %} "
              "Without an answer it will be closed on {{ auto_close_at }}.{% endif %}</p>"
              "<p>" + _ANSWER_EN_CAP + " or <a href=\"{{ card.url }}\">answer on the portal</a>."
              "</p>")),
    ("reminder", "ru"): _t(
        "[{{ card.number }}] Ждём вашего ответа",
        _HELLO_RU + "Обращение {{ card.number }} «{{ card.title }}» ждёт вашего ответа уже "
        "{{ days_waiting }} дн.{% if auto_close_at %} Если ответа не будет, оно закроется "
        "{{ auto_close_at }}.{% endif %}\n\nОтветьте на это " + _THIS_RU + " или на портале: "
        "{{ card.url }}" + _SIGN_RU,
        _html("ru", "<p>Обращение <b>{{ card.number }}</b> «{{ card.title }}» ждёт вашего "
              "ответа уже {{ days_waiting }} дн.{% if auto_close_at %} Если ответа не будет, "
              "оно закроется {{ auto_close_at }}.{% endif %}</p><p>Ответьте на это "
              + _THIS_RU + " или "
              "<a href=\"{{ card.url }}\">на портале</a>.</p>")),
}

_AGENT = {
    "new_request": ("New request {{ card.number }}: {{ card.title }}",
                    "From {{ requester }} ({{ service.name }}, {{ card.priority }}):\n{{ text }}",
                    "Новое обращение {{ card.number }}: {{ card.title }}",
                    "От {{ requester }} ({{ service.name }}, {{ card.priority }}):\n{{ text }}"),
    "customer_reply": ("Customer replied on {{ card.number }}: {{ card.title }}",
                       "{{ requester }} wrote:\n{{ text }}",
                       "Клиент ответил в {{ card.number }}: {{ card.title }}",
                       "{{ requester }} пишет:\n{{ text }}"),
    "escalation": ("Escalated to {{ lane }}: {{ card.number }} {{ card.title }}",
                   "{{ card.number }} entered lane {{ lane }} ({{ card.priority }}).",
                   "Эскалация на {{ lane }}: {{ card.number }} {{ card.title }}",
                   "{{ card.number }} перешла на дорожку {{ lane }} ({{ card.priority }})."),
    "sla_warning": ("SLA warning on {{ card.number }}: {{ sla.target }}",
                    ("{{ card.number }} {{ card.title }}: {{ sla.target }} is due "
                     "{{ sla.deadline }}."),
                    "SLA под угрозой в {{ card.number }}: {{ sla.target }}",
                    ("{{ card.number }} {{ card.title }}: срок {{ sla.target }} — "
                     "{{ sla.deadline }}.")),
    "sla_breached": ("SLA breached on {{ card.number }}: {{ sla.target }}",
                     ("{{ card.number }} {{ card.title }}: {{ sla.target }} was due "
                      "{{ sla.deadline }}."),
                     "SLA нарушен в {{ card.number }}: {{ sla.target }}",
                     ("{{ card.number }} {{ card.title }}: срок {{ sla.target }} истёк "
                      "{{ sla.deadline }}.")),
    "column_reached": ("{{ card.number }} reached {{ column }}: {{ card.title }}",
                       "{{ card.number }} {{ card.title }} is now in {{ column }}.",
                       "{{ card.number }} в колонке {{ column }}: {{ card.title }}",
                       "{{ card.number }} {{ card.title }} теперь в колонке {{ column }}."),
}
for _kind, (_se, _te, _sr, _tr) in _AGENT.items():
    for _lang, _s, _tx, _open in (("en", _se, _te, "Open card"), ("ru", _sr, _tr, "Открыть")):
        DEFAULTS[(_kind, _lang)] = MessageTemplate(
            subject=_s, text=_tx + "\n{{ card.agent_url }}\n",
            html=(f'<!doctype html><html lang="{_lang}"><body><p><b>{_s}</b></p>'
                  f'<p style="white-space:pre-wrap">{_tx}</p>'
                  f'<p><a href="{{{{ card.agent_url }}}}">{_open}</a></p></body></html>'))


def default_template(kind: str, language: str) -> MessageTemplate:
    return DEFAULTS.get((kind, language)) or DEFAULTS[(kind, "en")]
