"""Real mail through the desk: the sender's name, the card's language, the answer's language.

Corpus mail goes through intake's SMTP listener to boards (the card) and notify (the
acknowledgment caught by a mail sink). The demo "problem" service speaks English and
answers customers in their own language when the desk speaks it.
"""

from __future__ import annotations

import pytest

from tests.intake.helpers import card, corpus, new_tag, processed_raw, request_number, smtp_send

pytestmark = pytest.mark.slow
PROBLEM = "problem@desk.localhost"


def through_the_desk(desk, sink, name: str, sender: str) -> tuple[dict, str]:
    """Send corpus mail `name` from a unique address; its card and acknowledgment text."""
    tag = new_tag()
    customer = f"{tag}@acme.example"
    raw = corpus(name, tag).replace(sender.encode(), customer.encode())
    smtp_send(desk, raw, PROBLEM)
    record = processed_raw(desk, raw)
    assert record["status"] == "request", record
    found = card(desk, request_number(desk, record["request_id"]))
    [ack] = sink.wait_for(customer)
    return found, ack.get_body(("plain",)).get_content().replace("\r\n", "\n")


def test_a_sender_in_the_old_comment_form_keeps_their_name(desk, sink):
    found, ack = through_the_desk(desk, sink, "21-comment-form-from.eml",
                                  "marc.smith@acme.example")
    assert found["requester"]["name"] == "Marc Smith"
    assert found["language"] == "en"
    assert ack.startswith("Hello Marc Smith,\n")


@pytest.mark.parametrize("name, sender, language", [
    ("22-german.eml", "juergen.mueller@acme.example", "de"),
    ("23-chinese.eml", "wang.wei@acme.example", "zh"),
])
def test_a_language_the_desk_does_not_speak_is_kept_and_answered_in_the_services(
        desk, sink, name, sender, language):
    found, ack = through_the_desk(desk, sink, name, sender)
    assert found["language"] == language
    assert "We have received your request" in ack


def test_a_russian_customer_of_an_english_service_is_answered_in_russian(desk, sink):
    found, ack = through_the_desk(desk, sink, "04-koi8r.eml", "ivan.petrov@acme.example")
    assert found["language"] == "ru"
    assert ack.startswith("Здравствуйте, Иван Петров!\n")
    assert "Мы получили ваше обращение «Не работает почта» (Проблема / ошибка)" in ack
    assert "Обычно мы отвечаем в течение одного рабочего дня." in ack
    assert "We have received" not in ack
