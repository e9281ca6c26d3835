"""Configuration saved through one replica takes effect on another without a restart:
notify's customer mail templates and alert routes (two notify processes), intake's
Telegram bot (two intake processes), and boards' canned responses (two boards processes)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.fake_slack import FakeSlack
from tests.support.fake_telegram import FakeTelegram
from tests.support.mail import MailSink
from tests.support.stack import Stack, auth, cleanup, wait_until

pytestmark = pytest.mark.slow
SUBJECT = "Got it via the other replica: {{ card.number }}"
TG_TOKEN = "123456789:AAreplica-test-token-000000000000"


@pytest.fixture(scope="module")
def tg():
    with FakeTelegram(token=TG_TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def slack():
    with FakeSlack() as fake:
        yield fake


@pytest.fixture(scope="module")
def mail():
    with MailSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def stack(mongo_url, amqp_url, tmp_path_factory, mail, tg):
    s = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("replicas"), smtp_port=mail.port,
              extra={"intake": {"INTAKE_TELEGRAM__API_BASE": tg.base_url,
                                "INTAKE_TELEGRAM__POLL_TIMEOUT_SECONDS": "1"}})
    s.start(("boards", "intake", "notify"))
    yield s
    s.stop()
    cleanup(mongo_url, amqp_url, s.namespace)


def acknowledgment(stack: Stack, mail: MailSink, title: str) -> str:
    """File a request by intake's web API; the subject of the acknowledgment it gets."""
    email = f"c.{uuid.uuid4().hex[:8]}@acme.example"
    body = {"service": "problem", "subject": title, "text": "Since Monday.",
            "requester": {"email": email, "name": "C"}, "fields": {"system": "mail"}}

    def post():
        r = httpx.post(f"{stack['intake'].url}/v1/requests", json=body, timeout=10)
        return r if r.status_code != 404 else None  # intake may still learn the catalog
    assert wait_until(post, timeout=30).status_code == 202
    return str(mail.wait_for(email)[0]["Subject"])


def test_a_template_and_a_route_saved_through_one_notify_replica_apply_on_the_other(
        stack, mail, slack):
    # replica A alone: it renders the default acknowledgment (its template cache is warm)
    assert not acknowledgment(stack, mail, "Before the change").startswith("Got it")
    [other] = stack.start_replicas("notify", 1)
    hook = slack.webhook_url("desk-replicas")
    with httpx.Client(base_url=other.url, headers=auth(stack), timeout=10) as b:
        r = b.put("/v1/templates/acknowledgment/en",
                  json={"subject": SUBJECT, "text": "We have {{ card.number }}.",
                        "html": "<p>We have {{ card.number }}.</p>"})
        assert r.status_code == 200, r.text
        r = b.put("/v1/routes/new-to-slack", json={
            "board_id": "support", "events": ["new_request"], "channel": "slack_webhook",
            "webhook_url": hook})
        assert r.status_code == 200, r.text
    # from now on only replica A works: it must take the change up by itself
    other.stop()
    subjects: list[str] = []

    def next_is_new() -> bool:
        subjects.append(acknowledgment(stack, mail, f"After the change {len(subjects)}"))
        return subjects[-1].startswith("Got it via the other replica: ")
    wait_until(next_is_new, timeout=60)
    # and stays so; the route saved on B brings alerts for A's new requests to Slack
    assert acknowledgment(stack, mail, "Later").startswith("Got it via the other replica: ")
    posts = wait_until(lambda: slack.webhook_posts(hook), timeout=30)
    assert any("Later" in str(p) or "After the change" in str(p) for p in posts)
    assert stack["notify"].proc.poll() is None  # A was never restarted


def test_a_telegram_bot_saved_through_one_intake_replica_runs_on_the_other(stack, tg):
    [other] = stack.start_replicas("intake", 1)
    r = httpx.put(f"{other.url}/v1/telegram/bot", headers=auth(stack), timeout=10,
                  json={"mode": "polling", "token": TG_TOKEN})
    assert r.status_code == 200, r.text
    # the replica that took it stops; the first one, running since before, must start
    # the bot by itself (it sees the stored revision) and answer
    other.stop()
    tg.push_update(tg.message_update(4711, "/start"))
    menu = wait_until(lambda: tg.messages_to(4711), timeout=30)[0]
    assert "svc:problem" in str(menu.get("reply_markup"))
    assert stack["intake"].proc.poll() is None  # never restarted


def test_a_canned_response_saved_through_one_boards_replica_is_offered_by_the_other(stack):
    [other] = stack.start_replicas("boards", 1)
    title = f"Restart the router {uuid.uuid4().hex[:6]}"
    r = httpx.post(f"{stack['boards'].url}/v1/canned-responses", headers=auth(stack),
                   json={"title": title, "text": "Please restart it."}, timeout=10)
    assert r.status_code == 201, r.text
    listed = httpx.get(f"{other.url}/v1/canned-responses", headers=auth(stack), timeout=10)
    assert title in [c["title"] for c in listed.json()["items"]]
    other.stop()
