"""Every default message as a person receives it: each kind in English and Russian, whole.

The texts are rendered from a real service definition and card through the same planning
code the consumer uses, so a change of wording, a duplicated sentence or a variable that
renders empty shows up here as a diff a reviewer can read.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from boards.demo import demo_services
from desk_contracts.catalog import (
    FieldOption,
    FieldType,
    FormField,
    Localized,
    ServiceDefinition,
    ServiceTarget,
    StatusCategory,
)
from desk_contracts.events import CardSnapshot, Person
from intake.mail.html_text import html_to_text
from notify.domain import planning
from notify.domain.templates import (
    AGENT_KINDS,
    CUSTOMER_KINDS,
    DEFAULTS,
    LANGUAGES,
    Rendered,
    plural,
    render,
)

PORTAL, BOARDS = "https://help.acme.example", "https://desk.acme.example"
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
SERVICE = ServiceDefinition(
    id="problem", name=Localized(en="Problem / bug", ru="Проблема / ошибка"), language="en",
    target=ServiceTarget(board_id="support", column_id="queue", lane_id="l1"),
    auto_reply=Localized(en="We usually answer within one business day.",
                         ru="Обычно мы отвечаем в течение одного рабочего дня."),
    fields=(FormField(key="system", label=Localized(en="System", ru="Система"),
                      type=FieldType.SELECT,
                      options=(FieldOption(value="mail", label=Localized(en="Mail", ru="Почта")),
                               FieldOption(value="crm", label=Localized(en="CRM", ru="CRM")))),),
    answer_in_customer_language=True)
CUSTOMER = {"en": ("Marc Smith", "Mail does not sync"),
            "ru": ("Иван Петров", "Не синхронизируется почта")}


def card(language: str, status: StatusCategory = StatusCategory.QUEUED) -> CardSnapshot:
    name, title = CUSTOMER[language]
    return CardSnapshot(
        card_id="c0ffee00-0000-4000-8000-000000000002", number="SD-2", version=1, title=title,
        service_id="problem", board_id="support", column_id="queue", lane_id="l1",
        status_category=status, customer_status=SERVICE.status_name(status, language),
        priority="high", requester=Person(email="marc.smith@acme.example", name=name),
        channel="email", customer_fields={"system": "mail"}, created_at=NOW, updated_at=NOW,
        language=language)


def rating_links() -> list[dict]:
    return planning.rating_links(card("en").card_id, portal_url=PORTAL, secret="s", days=30,
                                 now=NOW)


def extra(kind: str, language: str) -> tuple[StatusCategory, dict]:
    """The kind's own variables, as notify's consumer builds them."""
    status = lambda category: planning.status_name(SERVICE, category, "", language)  # noqa: E731
    return {
        "acknowledgment": (StatusCategory.QUEUED,
                           {"auto_reply": SERVICE.auto_reply.get(language)}),
        "status_changed": (StatusCategory.IN_PROGRESS,
                           {"status": status(StatusCategory.IN_PROGRESS),
                            "previous_status": status(StatusCategory.QUEUED)}),
        "agent_reply": (StatusCategory.IN_PROGRESS, {
            "comment": {"text": {"en": "Please sign out of Outlook and sign in again.",
                                 "ru": "Пожалуйста, выйдите из Outlook и войдите снова."
                                 }[language], "author": "Boris Kim"},
            "fields": planning.visible_fields(card(language), SERVICE, language),
            "attachments": [{"filename": "outlook.pdf", "size": 2048,
                             "url": "https://files.acme.example/a/1"}]}),
        "rating_request": (StatusCategory.DONE, {"status": status(StatusCategory.DONE),
                                                 "rating_links": rating_links()}),
        "reminder": (StatusCategory.WAITING_FOR_CUSTOMER,
                     {"days_waiting": 3, "auto_close_at": "2026-12-02 09:00 UTC"}),
        "new_request": (StatusCategory.QUEUED, {
            "requester": "marc.smith@acme.example",
            "text": "Since this morning Outlook shows no new mail."}),
        "customer_reply": (StatusCategory.IN_PROGRESS, {
            "requester": "marc.smith@acme.example", "text": "It works again, thank you!"}),
        "escalation": (StatusCategory.IN_PROGRESS, {"lane": "l2", "column": "queue"}),
        "sla_warning": (StatusCategory.QUEUED, {"sla": {
            "target": "first_response", "deadline": "2026-11-25 13:00 UTC"}}),
        "sla_breached": (StatusCategory.QUEUED, {"sla": {
            "target": "resolution", "deadline": "2026-11-27 17:00 UTC"}}),
        "column_reached": (StatusCategory.DONE, {"column": "done", "lane": "l1"}),
    }[kind]


def message(kind: str, language: str, channel: str = "email") -> Rendered:
    category, own = extra(kind, language)
    the_card = card(language, category)
    context = planning.card_context(the_card, SERVICE, language=language, portal_url=PORTAL,
                                    boards_url=BOARDS) | {"channel": channel} | own
    return render(DEFAULTS[(kind, language)], context)


STARS = "".join(f"{'★' * r['score']} {r['url']}\n" for r in rating_links())
REQUEST = f"{PORTAL}/requests/c0ffee00-0000-4000-8000-000000000002"
CARD = f"{BOARDS}/cards/SD-2"

EXPECTED: dict[tuple[str, str], tuple[str, str]] = {
    ("acknowledgment", "en"): ("[SD-2] Mail does not sync", f"""Hello Marc Smith,

We have received your request “Mail does not sync” (Problem / bug) and registered it as SD-2.

We usually answer within one business day.

To add details, simply reply to this e-mail. You can follow the request at {REQUEST}

-- 
Service desk
"""),
    ("acknowledgment", "ru"): ("[SD-2] Не синхронизируется почта", f"""Здравствуйте, Иван Петров!

Мы получили ваше обращение «Не синхронизируется почта» (Проблема / ошибка) и зарегистрировали \
его под номером SD-2.

Обычно мы отвечаем в течение одного рабочего дня.

Чтобы дополнить обращение, просто ответьте на это письмо. Следить за обращением можно на \
портале: {REQUEST}

-- 
Служба поддержки
"""),
    ("status_changed", "en"): ("[SD-2] In progress: Mail does not sync", f"""Hello Marc Smith,

The status of your request SD-2 “Mail does not sync” has changed from “Queued” to “In progress”.

You can follow the request at {REQUEST}

-- 
Service desk
"""),
    ("status_changed", "ru"): ("[SD-2] В работе: Не синхронизируется почта", f"""\
Здравствуйте, Иван Петров!

Статус вашего обращения SD-2 «Не синхронизируется почта» изменился с «В очереди» на «В работе».

Следить за обращением можно на портале: {REQUEST}

-- 
Служба поддержки
"""),
    ("agent_reply", "en"): ("Re: [SD-2] Mail does not sync", f"""Hello Marc Smith,

Please sign out of Outlook and sign in again.

Details of your request:
System: Mail

Attachments:
- outlook.pdf: https://files.acme.example/a/1

If you have questions or anything to add, simply reply to this e-mail. You can also follow the \
request at {REQUEST}

-- 
Boris Kim
Service desk
"""),
    ("agent_reply", "ru"): ("Re: [SD-2] Не синхронизируется почта", f"""Здравствуйте, Иван Петров!

Пожалуйста, выйдите из Outlook и войдите снова.

Данные обращения:
Система: Почта

Вложения:
- outlook.pdf: https://files.acme.example/a/1

Если у вас есть вопросы или дополнения, просто ответьте на это письмо. Следить за обращением \
можно на портале: {REQUEST}

-- 
Boris Kim
Служба поддержки
"""),
    ("rating_request", "en"): ("[SD-2] Done — how did we do?", f"""Hello Marc Smith,

We have completed your request SD-2 “Mail does not sync”. How satisfied are you with our help? \
Choose one to five stars (you will confirm your rating on the next page):

{STARS}
If the problem is not solved, reply to this e-mail and we will reopen the request.

-- 
Service desk
"""),
    ("rating_request", "ru"): ("[SD-2] Готово — оцените, как мы справились", f"""\
Здравствуйте, Иван Петров!

Мы завершили работу по вашему обращению SD-2 «Не синхронизируется почта». Оцените, пожалуйста, \
нашу работу — выберите от одной до пяти звёзд (оценку вы подтвердите на следующей странице):

{STARS}
Если проблема не решена, ответьте на это письмо — мы возобновим работу над обращением.

-- 
Служба поддержки
"""),
    ("reminder", "en"): ("[SD-2] We are waiting for your answer", f"""Hello Marc Smith,

Your request SD-2 “Mail does not sync” has been waiting for your answer for 3 days. If we do not \
hear from you, we will close it on 2026-12-02 09:00 UTC.

Simply reply to this e-mail, or answer on the portal: {REQUEST}

-- 
Service desk
"""),
    ("reminder", "ru"): ("[SD-2] Ждём вашего ответа", f"""Здравствуйте, Иван Петров!

Ваше обращение SD-2 «Не синхронизируется почта» ждёт вашего ответа уже 3 дня. Если ответа не \
будет, мы закроем его 2026-12-02 09:00 UTC.

Ответить можно на это письмо или на портале: {REQUEST}

-- 
Служба поддержки
"""),
    ("new_request", "en"): ("New request SD-2: Mail does not sync", f"""\
From: marc.smith@acme.example
Service: Problem / bug
Priority: high

Since this morning Outlook shows no new mail.

Open the card: {CARD}
"""),
    ("new_request", "ru"): ("Новое обращение SD-2: Не синхронизируется почта", f"""\
От: marc.smith@acme.example
Услуга: Проблема / ошибка
Приоритет: высокий

Since this morning Outlook shows no new mail.

Открыть карточку: {CARD}
"""),
    ("customer_reply", "en"): ("Customer replied to SD-2: Mail does not sync", f"""\
marc.smith@acme.example wrote:

It works again, thank you!

Open the card: {CARD}
"""),
    ("customer_reply", "ru"): ("Ответ клиента по SD-2: Не синхронизируется почта", f"""\
marc.smith@acme.example пишет:

It works again, thank you!

Открыть карточку: {CARD}
"""),
    ("escalation", "en"): ("Escalated to l2: SD-2 Mail does not sync", f"""\
SD-2 “Mail does not sync” moved to lane l2 (priority: high).

Open the card: {CARD}
"""),
    ("escalation", "ru"): ("Эскалация на дорожку l2: SD-2 Не синхронизируется почта", f"""\
Карточка SD-2 «Не синхронизируется почта» переведена на дорожку l2 (приоритет: высокий).

Открыть карточку: {CARD}
"""),
    ("sla_warning", "en"): ("SLA warning on SD-2: first response due 2026-11-25 13:00 UTC", f"""\
The first response deadline of SD-2 “Mail does not sync” is 2026-11-25 13:00 UTC.

Open the card: {CARD}
"""),
    ("sla_warning", "ru"): ("SLA под угрозой по SD-2: срок первого ответа — 2026-11-25 13:00 UTC",
                            f"""\
Срок первого ответа по SD-2 «Не синхронизируется почта» истекает 2026-11-25 13:00 UTC.

Открыть карточку: {CARD}
"""),
    ("sla_breached", "en"): ("SLA breached on SD-2: resolution was due 2026-11-27 17:00 UTC", f"""\
The resolution deadline of SD-2 “Mail does not sync” passed at 2026-11-27 17:00 UTC.

Open the card: {CARD}
"""),
    ("sla_breached", "ru"): ("SLA нарушен по SD-2: срок решения истёк 2026-11-27 17:00 UTC", f"""\
Срок решения по SD-2 «Не синхронизируется почта» истёк 2026-11-27 17:00 UTC.

Открыть карточку: {CARD}
"""),
    ("column_reached", "en"): ("SD-2 reached done: Mail does not sync", f"""\
SD-2 “Mail does not sync” is now in column done (lane l1).

Open the card: {CARD}
"""),
    ("column_reached", "ru"): ("SD-2 в колонке done: Не синхронизируется почта", f"""\
Карточка SD-2 «Не синхронизируется почта» теперь в колонке done (дорожка l1).

Открыть карточку: {CARD}
"""),
}


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?:])\s+|\n+", text) if len(s.split()) > 2]


@pytest.mark.parametrize("kind", CUSTOMER_KINDS + AGENT_KINDS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_whole_message(kind, language):
    rendered = message(kind, language)
    assert (rendered.subject, rendered.text) == EXPECTED[(kind, language)]
    # the HTML part says the same (links carry labels there instead of bare URLs)
    html = " ".join(html_to_text(rendered.html).split())
    for sentence in sentences(rendered.text):
        if "http" not in sentence and "★" not in sentence and sentence != "-- ":
            # "… on the portal: URL" in text is "… on the portal (URL)" as HTML
            assert " ".join(sentence.split()).rstrip(":") in html, (kind, language, sentence)
    assert f'<html lang="{language}">' in rendered.html


def test_every_kind_and_language_is_checked_whole():
    assert set(EXPECTED) == {(k, lang) for k in CUSTOMER_KINDS + AGENT_KINDS
                             for lang in LANGUAGES}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_acknowledgment_says_each_thing_once_with_the_demo_auto_reply(language):
    """The reported message said "We have received your request" twice (the demo service's
    auto-reply repeated the acknowledgment's own first sentence)."""
    problem = next(s for s in demo_services() if s.id == "problem")
    context = planning.card_context(card(language), problem, language=language,
                                    portal_url=PORTAL, boards_url=BOARDS) | {
        "channel": "email", "auto_reply": problem.auto_reply.get(language)}
    text = render(DEFAULTS[("acknowledgment", language)], context).text
    said = [" ".join(s.lower().split()[:3]) for s in sentences(text)]
    assert len(said) == len(set(said)), text
    assert text.count({"en": "received", "ru": "получили"}[language]) == 1


@pytest.mark.parametrize("language", LANGUAGES)
def test_telegram_messages_say_this_message_and_rate_with_buttons(language):
    rating = message("rating_request", language, channel="telegram").text
    assert "/rate?score=" not in rating            # the inline keyboard carries the stars
    assert {"en": "with the buttons below", "ru": "кнопками ниже"}[language] in rating
    reply = message("agent_reply", language, channel="telegram").text
    assert {"en": "reply to this message", "ru": "ответьте на это сообщение"}[language] in reply
    assert "e-mail" not in reply and "письмо" not in reply


def test_plural_forms():
    assert [plural(n, "day", "days") for n in (1, 2, 11)] == ["1 day", "2 days", "11 days"]
    assert [plural(n, "день", "дня", "дней") for n in (1, 3, 5, 11, 21, 22, 112)] == [
        "1 день", "3 дня", "5 дней", "11 дней", "21 день", "22 дня", "112 дней"]


def test_notifications_speak_the_customers_language_when_the_service_allows():
    ru, de, unknown = card("ru"), card("en").model_copy(update={"language": "de"}), \
        card("en").model_copy(update={"language": "unknown"})
    english_service = SERVICE
    assert planning.customer_language(ru, english_service) == "ru"
    # a language the desk has no texts for, or none detected: the service's language
    russian_service = SERVICE.model_copy(update={"language": "ru"})
    assert planning.customer_language(de, russian_service) == "ru"
    assert planning.customer_language(unknown, english_service) == "en"
    # the service chose its own language for everyone
    strict = SERVICE.model_copy(update={"answer_in_customer_language": False})
    assert planning.customer_language(ru, strict) == "en"
    # cards from before the language travelled: the service's language, as before
    assert planning.customer_language(ru.model_copy(update={"language": None}),
                                      english_service) == "en"
