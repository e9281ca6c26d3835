"""Notify's pure logic: templates, who hears what, rating links, pacing (no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from desk_contracts.catalog import StatusCategory
from desk_contracts.events import Person
from desk_contracts.signed_link import verify_link
from notify.domain import planning
from notify.domain.messages import notification_id
from notify.domain.routes import AgentRoute
from notify.domain.templates import (
    DEFAULTS,
    KINDS,
    LANGUAGES,
    MessageTemplate,
    TemplateInvalid,
    render,
    sample_context,
    validate,
)
from notify.ratelimit import RateLimiter

from tests.notify.conftest import SERVICES, Desk


def test_every_kind_has_a_default_in_both_languages_that_renders():
    for kind in KINDS:
        for lang in LANGUAGES:
            rendered = validate(kind, DEFAULTS[(kind, lang)])
            assert "SD-42" in rendered.subject + rendered.text
    ru = render(DEFAULTS[("acknowledgment", "ru")], sample_context("acknowledgment"))
    assert "Мы получили ваше обращение «Mail does not sync»" in ru.text


@pytest.mark.parametrize("source, part", [
    ("{{ card.nmber }}", "text"),                               # typo: undefined variable
    ("{% for x in %}", "text"),                                 # syntax error
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "text"),  # sandbox escape attempt
    ("{{ 1 / 0 }}", "text"),
])
def test_a_template_that_cannot_render_is_refused(source, part):
    good = DEFAULTS[("acknowledgment", "en")]
    with pytest.raises(TemplateInvalid) as err:
        validate("acknowledgment", MessageTemplate(subject=good.subject, text=source,
                                                   html=good.html))
    assert err.value.part == part


def test_html_part_escapes_customer_text_and_subject_stays_one_line():
    ctx = sample_context("agent_reply")
    ctx["comment"] = {"text": "<script>alert(1)</script>", "author": "x"}
    ctx["card"] = ctx["card"] | {"title": "Bcc: evil@example.com\nX: y"}
    rendered = render(DEFAULTS[("agent_reply", "en")], ctx)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "\n" not in rendered.subject


def test_customer_hears_on_their_channel_unless_preferences_say_otherwise():
    mail_only = Person(email="Anna@Acme.example")
    tg_user = Person(email="t@acme.example", telegram_chat_id=77)
    assert planning.customer_targets("acknowledgment", mail_only, "email", None) == [
        ("email", "anna@acme.example")]
    assert planning.customer_targets("acknowledgment", tg_user, "telegram", None) == [
        ("telegram", "77")]
    prefs = {"channels": {"status_changed": [], "agent_reply": ["email", "telegram"]},
             "telegram_chat_id": 99}
    assert planning.customer_targets("status_changed", mail_only, "email", prefs) == []
    assert planning.customer_targets("agent_reply", mail_only, "email", prefs) == [
        ("email", "anna@acme.example"), ("telegram", "99")]
    assert planning.customer_targets("new_request", mail_only, "email", None) == []


class _Cards:
    """Just enough of Desk for its card() builder."""

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}


def test_status_mail_only_for_announced_real_changes():
    svc = SERVICES["problem"]   # notify_on: in_progress, done
    make = Desk.card
    in_progress = make(_Cards(), status=StatusCategory.IN_PROGRESS, email="a@b.example")
    paused = make(_Cards(), status=StatusCategory.PAUSED, email="a@b.example")
    assert planning.status_change_announced(in_progress, StatusCategory.QUEUED, svc)
    assert not planning.status_change_announced(in_progress, StatusCategory.IN_PROGRESS, svc)
    assert not planning.status_change_announced(paused, StatusCategory.IN_PROGRESS, svc)
    ru = SERVICES["vopros"]     # notify_on: done only
    assert not planning.status_change_announced(in_progress, StatusCategory.QUEUED, ru)


def test_rating_links_verify_for_their_card_only_and_expire():
    links = planning.rating_links("card-1", portal_url="http://p/", secret="s", days=30)
    assert [link["score"] for link in links] == [1, 2, 3, 4, 5]
    assert links[4]["url"].startswith("http://p/requests/card-1/rate?score=5&t=")
    token = links[0]["url"].split("&t=")[1]
    assert verify_link("rate", "card-1", token, b"s")
    assert not verify_link("rate", "card-2", token, b"s")
    assert not verify_link("rate", "card-1", token, b"other-secret")
    assert not verify_link("rate", "card-1", token, b"s",
                           now=datetime.now(UTC) + timedelta(days=31))
    keyboard = planning.rating_keyboard("card-1")["inline_keyboard"][0]
    assert [b["callback_data"] for b in keyboard] == [f"rate:card-1:{s}" for s in range(1, 6)]


def test_notification_id_is_deterministic_per_cause_kind_and_recipient():
    a = notification_id("e1", "acknowledgment", "Anna@x.example")
    assert a == notification_id("e1", "acknowledgment", "anna@x.example")
    assert a != notification_id("e2", "acknowledgment", "anna@x.example")
    assert a != notification_id("e1", "status_changed", "anna@x.example")


def test_routes_match_board_lane_and_column():
    l2 = AgentRoute(id="l2", board_id="support", lane_id="l2", events=("escalation",),
                    channel="slack_bot", slack_channel="l2")
    assert l2.matches("escalation", "support", "l2", "queue")
    assert not l2.matches("escalation", "support", "l1", "queue")
    assert not l2.matches("new_request", "support", "l2", "queue")
    done = AgentRoute(id="dev-done", board_id="dev", column_id="done",
                      events=("column_reached",), channel="email", emails=("dev@x.example",))
    assert done.matches("column_reached", "dev", "any", "done")
    assert not done.matches("column_reached", "dev", "any", "review")
    with pytest.raises(ValueError):
        AgentRoute(id="x", board_id="b", events=("new_request",), channel="slack_webhook")
    with pytest.raises(ValueError):
        AgentRoute(id="x", board_id="b", events=("new_request",), channel="slack_webhook",
                   webhook_url="file:///etc/passwd")


def test_rate_limiter_paces_per_key_and_honours_retry_after():
    now = [100.0]
    limiter = RateLimiter(1.0, clock=lambda: now[0])
    assert limiter.reserve("chat:1") == 0.0
    assert limiter.reserve("chat:1") == pytest.approx(1.0)
    assert limiter.reserve("chat:2") == 0.0          # another chat is not held up
    limiter.block("chat:2", 30)
    assert limiter.reserve("chat:2") == pytest.approx(30.0)
    now[0] += 1.0
    assert limiter.reserve("chat:1") == 0.0
