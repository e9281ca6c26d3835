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


# Every default was read as the customer or agent receives it (tests/notify/test_texts.py
# holds each whole message): one greeting, each fact said once, a next step, a signature.
_EN, _RU = "en", "ru"
_WORDS = {
    _EN: {
        "hello": "Hello{% if customer_name %} {{ customer_name }}{% endif %},",
        "sign": "Service desk",
        "this": "{% if channel == 'telegram' %}this message{% else %}this e-mail{% endif %}",
        "portal": "on the portal",
    },
    _RU: {
        "hello": "Здравствуйте{% if customer_name %}, {{ customer_name }}{% endif %}!",
        "sign": "Служба поддержки",
        "this": "{% if channel == 'telegram' %}это сообщение{% else %}это письмо{% endif %}",
        "portal": "на портале",
    },
}


def _customer(lang: str, subject: str, paragraphs: list[tuple[str, str]],
              signer: str = "") -> MessageTemplate:
    """A customer message from (text, html) paragraphs: greeting, body, signature.

    `signer` is a line (e.g. the agent's name) above the desk's name in the signature.
    """
    w = _WORDS[lang]
    sign_text = signer + w["sign"]
    sign_html = signer.replace("\n", "<br>") + w["sign"]
    text = w["hello"] + "\n\n" + "".join(p for p, _ in paragraphs) + "\n\n-- \n" + sign_text
    html = (f'<!doctype html><html lang="{lang}"><body><p>{w["hello"]}</p>'
            + "".join(h for _, h in paragraphs) + f"<p>— {sign_html}</p></body></html>")
    return _t(subject, text, html)


def _link(url: str, label: str) -> str:
    return f'<a href="{url}">{label}</a>'


_AUTO_REPLY = ("{% if auto_reply %}\n\n{{ auto_reply }}{% endif %}",
               "{% if auto_reply %}<p>{{ auto_reply }}</p>{% endif %}")
_SERVICE = "{% if service.name %} ({{ service.name }}){% endif %}"
_CARD_URL = "{{ card.url }}"
_FIELDS = {
    _EN: ("{% if fields %}\n\nDetails of your request:{% for f in fields %}\n{{ f.label }}: "
          "{{ f.value }}{% endfor %}{% endif %}",
          "{% if fields %}<p>Details of your request:</p><ul>{% for f in fields %}<li>"
          "{{ f.label }}: {{ f.value }}</li>{% endfor %}</ul>{% endif %}"),
    _RU: ("{% if fields %}\n\nДанные обращения:{% for f in fields %}\n{{ f.label }}: "
          "{{ f.value }}{% endfor %}{% endif %}",
          "{% if fields %}<p>Данные обращения:</p><ul>{% for f in fields %}<li>"
          "{{ f.label }}: {{ f.value }}</li>{% endfor %}</ul>{% endif %}"),
}
_ATTACHMENTS = {
    lang: ("{% if attachments %}\n\n" + head + ":{% for a in attachments %}\n- {{ a.filename }}: "
           "{{ a.url }}{% endfor %}{% endif %}",
           "{% if attachments %}<p>" + head + ":</p><ul>{% for a in attachments %}<li>"
           '<a href="{{ a.url }}">{{ a.filename }}</a></li>{% endfor %}</ul>{% endif %}')
    for lang, head in ((_EN, "Attachments"), (_RU, "Вложения"))
}
# Rating: links in e-mail; in Telegram the message carries buttons instead of links.
_STARS = ("{% if channel == 'telegram' %}{% else %}\n\n{% for r in rating_links %}"
          "{{ '★' * r.score }} {{ r.url }}\n{% endfor %}{% endif %}",
          "<p>{% for r in rating_links %}<a href=\"{{ r.url }}\" "
          "style=\"text-decoration:none;font-size:22px\">{{ '★' * r.score }}</a>"
          "&nbsp; {% endfor %}</p>")

DEFAULTS: dict[tuple[str, str], MessageTemplate] = {
    ("acknowledgment", _EN): _customer(_EN, "[{{ card.number }}] {{ card.title }}", [
        ("We have received your request “{{ card.title }}”" + _SERVICE
         + " and registered it as {{ card.number }}.",
         "<p>We have received your request “{{ card.title }}”" + _SERVICE
         + " and registered it as <b>{{ card.number }}</b>.</p>"),
        _AUTO_REPLY,
        ("\n\nTo add details, simply reply to " + _WORDS[_EN]["this"] + ". You can follow the "
         "request at " + _CARD_URL,
         "<p>To add details, simply reply to " + _WORDS[_EN]["this"] + ". You can follow the "
         "request " + _link(_CARD_URL, "on the portal") + ".</p>"),
    ]),
    ("acknowledgment", _RU): _customer(_RU, "[{{ card.number }}] {{ card.title }}", [
        ("Мы получили ваше обращение «{{ card.title }}»" + _SERVICE
         + " и зарегистрировали его под номером {{ card.number }}.",
         "<p>Мы получили ваше обращение «{{ card.title }}»" + _SERVICE
         + " и зарегистрировали его под номером <b>{{ card.number }}</b>.</p>"),
        _AUTO_REPLY,
        ("\n\nЧтобы дополнить обращение, просто ответьте на " + _WORDS[_RU]["this"]
         + ". Следить за обращением можно на портале: " + _CARD_URL,
         "<p>Чтобы дополнить обращение, просто ответьте на " + _WORDS[_RU]["this"]
         + ". Следить за обращением можно " + _link(_CARD_URL, "на портале") + ".</p>"),
    ]),
    ("status_changed", _EN): _customer(_EN, "[{{ card.number }}] {{ status }}: {{ card.title }}", [
        ("The status of your request {{ card.number }} “{{ card.title }}” has changed from "
         "“{{ previous_status }}” to “{{ status }}”.",
         "<p>The status of your request <b>{{ card.number }}</b> “{{ card.title }}” has "
         "changed from “{{ previous_status }}” to <b>“{{ status }}”</b>.</p>"),
        ("\n\nYou can follow the request at " + _CARD_URL,
         "<p>You can follow the request " + _link(_CARD_URL, "on the portal") + ".</p>"),
    ]),
    ("status_changed", _RU): _customer(_RU, "[{{ card.number }}] {{ status }}: {{ card.title }}", [
        ("Статус вашего обращения {{ card.number }} «{{ card.title }}» изменился "
         "с «{{ previous_status }}» на «{{ status }}».",
         "<p>Статус вашего обращения <b>{{ card.number }}</b> «{{ card.title }}» изменился "
         "с «{{ previous_status }}» на <b>«{{ status }}»</b>.</p>"),
        ("\n\nСледить за обращением можно на портале: " + _CARD_URL,
         "<p>Следить за обращением можно " + _link(_CARD_URL, "на портале") + ".</p>"),
    ]),
    ("agent_reply", _EN): _customer(_EN, "Re: [{{ card.number }}] {{ card.title }}", [
        ("{{ comment.text }}", '<div style="white-space:pre-wrap">{{ comment.text }}</div>'),
        _FIELDS[_EN], _ATTACHMENTS[_EN],
        ("\n\nIf you have questions or anything to add, simply reply to "
         + _WORDS[_EN]["this"] + ". You can also follow the request at " + _CARD_URL,
         "<p>If you have questions or anything to add, simply reply to " + _WORDS[_EN]["this"]
         + ". You can also follow the request " + _link(_CARD_URL, "on the portal") + ".</p>"),
    ], signer="{% if comment.author %}{{ comment.author }}\n{% endif %}"),
    ("agent_reply", _RU): _customer(_RU, "Re: [{{ card.number }}] {{ card.title }}", [
        ("{{ comment.text }}", '<div style="white-space:pre-wrap">{{ comment.text }}</div>'),
        _FIELDS[_RU], _ATTACHMENTS[_RU],
        ("\n\nЕсли у вас есть вопросы или дополнения, просто ответьте на "
         + _WORDS[_RU]["this"] + ". Следить за обращением можно на портале: " + _CARD_URL,
         "<p>Если у вас есть вопросы или дополнения, просто ответьте на " + _WORDS[_RU]["this"]
         + ". Следить за обращением можно " + _link(_CARD_URL, "на портале") + ".</p>"),
    ], signer="{% if comment.author %}{{ comment.author }}\n{% endif %}"),
    ("rating_request", _EN): _customer(_EN, "[{{ card.number }}] {{ status }} — how did we do?", [
        ("We have completed your request {{ card.number }} “{{ card.title }}”. How satisfied "
         "are you with our help? {% if channel == 'telegram' %}Choose one to five stars with "
         "the buttons below.{% else %}Choose one to five stars (you will confirm your rating "
         "on the next page):{% endif %}",
         "<p>We have completed your request <b>{{ card.number }}</b> “{{ card.title }}”. How "
         "satisfied are you with our help? Choose one to five stars (you will confirm your "
         "rating on the next page):</p>"),
        _STARS,
        ("{% if channel == 'telegram' %}\n\n{% else %}\n{% endif %}If the problem is not "
         "solved, reply to " + _WORDS[_EN]["this"] + " and we will reopen the request.",
         "<p>If the problem is not solved, reply to " + _WORDS[_EN]["this"]
         + " and we will reopen the request.</p>"),
    ]),
    ("rating_request", _RU): _customer(
        _RU, "[{{ card.number }}] {{ status }} — оцените, как мы справились", [
            ("Мы завершили работу по вашему обращению {{ card.number }} «{{ card.title }}». "
             "Оцените, пожалуйста, нашу работу{% if channel == 'telegram' %} кнопками ниже — "
             "от одной до пяти звёзд.{% else %} — выберите от одной до пяти звёзд (оценку вы "
             "подтвердите на следующей странице):{% endif %}",
             "<p>Мы завершили работу по вашему обращению <b>{{ card.number }}</b> "
             "«{{ card.title }}». Оцените, пожалуйста, нашу работу — выберите от одной до пяти "
             "звёзд (оценку вы подтвердите на следующей странице):</p>"),
            _STARS,
            ("{% if channel == 'telegram' %}\n\n{% else %}\n{% endif %}Если проблема не "
             "решена, ответьте на " + _WORDS[_RU]["this"] + " — мы возобновим работу над "
             "обращением.",
             "<p>Если проблема не решена, ответьте на " + _WORDS[_RU]["this"]
             + " — мы возобновим работу над обращением.</p>"),
        ]),
    ("reminder", _EN): _customer(_EN, "[{{ card.number }}] We are waiting for your answer", [
        ("Your request {{ card.number }} “{{ card.title }}” has been waiting for your answer "
         "for {{ days_waiting|plural('day', 'days') }}.{% if auto_close_at %} If we do not "
         "hear from you, we will close it on {{ auto_close_at }}.{% endif %}",
         "<p>Your request <b>{{ card.number }}</b> “{{ card.title }}” has been waiting for "
         "your answer for {{ days_waiting|plural('day', 'days') }}.{% if auto_close_at %} If "
         "we do not hear from you, we will close it on {{ auto_close_at }}.{% endif %}</p>"),
        ("\n\nSimply reply to " + _WORDS[_EN]["this"] + ", or answer on the portal: "
         + _CARD_URL,
         "<p>Simply reply to " + _WORDS[_EN]["this"] + ", or answer "
         + _link(_CARD_URL, "on the portal") + ".</p>"),
    ]),
    ("reminder", _RU): _customer(_RU, "[{{ card.number }}] Ждём вашего ответа", [
        ("Ваше обращение {{ card.number }} «{{ card.title }}» ждёт вашего ответа уже "
         "{{ days_waiting|plural('день', 'дня', 'дней') }}.{% if auto_close_at %} Если ответа "
         "не будет, мы закроем его {{ auto_close_at }}.{% endif %}",
         "<p>Ваше обращение <b>{{ card.number }}</b> «{{ card.title }}» ждёт вашего ответа "
         "уже {{ days_waiting|plural('день', 'дня', 'дней') }}.{% if auto_close_at %} Если "
         "ответа не будет, мы закроем его {{ auto_close_at }}.{% endif %}</p>"),
        ("\n\nОтветить можно на " + _WORDS[_RU]["this"] + " или на портале: " + _CARD_URL,
         "<p>Ответить можно на " + _WORDS[_RU]["this"] + " или "
         + _link(_CARD_URL, "на портале") + ".</p>"),
    ]),
}

# Agents' messages: a subject that says it all (Slack and phone previews show only that),
# then the facts, then the card. Names of priorities and SLA targets are translated.
_PRIORITY_RU = ("{{ {'low': 'низкий', 'medium': 'средний', 'high': 'высокий', "
                "'critical': 'критический'}.get(card.priority, card.priority) }}")
_TARGET_EN = ("{{ {'first_response': 'first response', 'next_response': 'next response', "
              "'resolution': 'resolution'}.get(sla.target, sla.target) }}")
_TARGET_RU = ("{{ {'first_response': 'первого ответа', 'next_response': 'следующего ответа', "
              "'resolution': 'решения'}.get(sla.target, sla.target) }}")
_AGENT: dict[str, dict[str, tuple[str, str]]] = {
    "new_request": {
        _EN: ("New request {{ card.number }}: {{ card.title }}",
              "From: {{ requester }}\nService: {{ service.name }}\nPriority: {{ card.priority }}"
              "\n\n{{ text }}"),
        _RU: ("Новое обращение {{ card.number }}: {{ card.title }}",
              "От: {{ requester }}\nУслуга: {{ service.name }}\nПриоритет: " + _PRIORITY_RU
              + "\n\n{{ text }}"),
    },
    "customer_reply": {
        _EN: ("Customer replied to {{ card.number }}: {{ card.title }}",
              "{{ requester }} wrote:\n\n{{ text }}"),
        _RU: ("Ответ клиента по {{ card.number }}: {{ card.title }}",
              "{{ requester }} пишет:\n\n{{ text }}"),
    },
    "escalation": {
        _EN: ("Escalated to {{ lane }}: {{ card.number }} {{ card.title }}",
              "{{ card.number }} “{{ card.title }}” moved to lane {{ lane }} "
              "(priority: {{ card.priority }})."),
        _RU: ("Эскалация на дорожку {{ lane }}: {{ card.number }} {{ card.title }}",
              "Карточка {{ card.number }} «{{ card.title }}» переведена на дорожку {{ lane }} "
              "(приоритет: " + _PRIORITY_RU + ")."),
    },
    "sla_warning": {
        _EN: ("SLA warning on {{ card.number }}: " + _TARGET_EN
              + "{% if sla.deadline %} due {{ sla.deadline }}{% endif %}",
              "The " + _TARGET_EN + " deadline of {{ card.number }} “{{ card.title }}” is "
              "{% if sla.deadline %}{{ sla.deadline }}{% else %}near{% endif %}."),
        _RU: ("SLA под угрозой по {{ card.number }}: срок " + _TARGET_RU
              + "{% if sla.deadline %} — {{ sla.deadline }}{% endif %}",
              "Срок " + _TARGET_RU + " по {{ card.number }} «{{ card.title }}» истекает"
              "{% if sla.deadline %} {{ sla.deadline }}{% else %} скоро{% endif %}."),
    },
    "sla_breached": {
        _EN: ("SLA breached on {{ card.number }}: " + _TARGET_EN
              + "{% if sla.deadline %} was due {{ sla.deadline }}{% endif %}",
              "The " + _TARGET_EN + " deadline of {{ card.number }} “{{ card.title }}” "
              "{% if sla.deadline %}passed at {{ sla.deadline }}{% else %}has passed{% endif %}."),
        _RU: ("SLA нарушен по {{ card.number }}: срок " + _TARGET_RU + " истёк"
              "{% if sla.deadline %} {{ sla.deadline }}{% endif %}",
              "Срок " + _TARGET_RU + " по {{ card.number }} «{{ card.title }}» истёк"
              "{% if sla.deadline %} {{ sla.deadline }}{% endif %}."),
    },
    "column_reached": {
        _EN: ("{{ card.number }} reached {{ column }}: {{ card.title }}",
              "{{ card.number }} “{{ card.title }}” is now in column {{ column }} "
              "(lane {{ lane }})."),
        _RU: ("{{ card.number }} в колонке {{ column }}: {{ card.title }}",
              "Карточка {{ card.number }} «{{ card.title }}» теперь в колонке {{ column }} "
              "(дорожка {{ lane }})."),
    },
}
_OPEN = {_EN: "Open the card", _RU: "Открыть карточку"}
for _kind, _by_lang in _AGENT.items():
    for _lang, (_subject, _text) in _by_lang.items():
        DEFAULTS[(_kind, _lang)] = MessageTemplate(
            subject=_subject,
            text=f"{_text}\n\n{_OPEN[_lang]}: {{{{ card.agent_url }}}}\n",
            html=(f'<!doctype html><html lang="{_lang}"><body><p><b>{_subject}</b></p>'
                  f'<p style="white-space:pre-wrap">{_text}</p>'
                  f'<p><a href="{{{{ card.agent_url }}}}">{_OPEN[_lang]}</a></p></body></html>'))


def default_template(kind: str, language: str) -> MessageTemplate:
    return DEFAULTS.get((kind, language)) or DEFAULTS[(kind, "en")]
