"""Filing and following requests over plain HTTP (no JavaScript): forms, due dates, settings."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import date, timedelta

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.portal.helpers import (
    card_by_title,
    csrf_of,
    new_email,
    portal_client,
    sign_in,
    submit,
    wait_in_portal,
)
from tests.support.stack import auth, wait_until

pytestmark = pytest.mark.slow


EMAIL = new_email("form")


@pytest.fixture(scope="module")
def customer(stack, mail):
    return sign_in(stack, mail, EMAIL)


def checked(html: str, box: str) -> bool:
    return re.search(rf'id="{box}" value="1"\s+checked', html) is not None


def test_due_date_when_the_service_allows_it(stack, customer):
    page = customer.get("/services/legal-document/new")
    assert 'name="due_date"' in page.text
    assert 'name="due_date"' not in customer.get("/services/problem/new").text
    title = f"NDA for Initech {uuid.uuid4().hex[:6]}"
    due = (date.today() + timedelta(days=14)).isoformat()
    base = {"csrf": csrf_of(page.text), "subject": title, "text": "Standard NDA please.",
            "f_document": "nda", "f_counterparty": "Initech"}
    past = customer.post("/services/legal-document/new",
                         data=base | {"due_date": (date.today() - timedelta(days=1)).isoformat()})
    assert past.status_code == 422 and "must not be in the past" in past.text
    ok = customer.post("/services/legal-document/new", data=base | {"due_date": due})
    assert ok.status_code == 303
    card = card_by_title(stack, title)
    assert card["due_date"] == due
    assert card["fields"] == {"document": "nda", "counterparty": "Initech"}


def test_inapplicable_answers_are_dropped_and_errors_are_per_field(stack, customer):
    # "counterparty" applies to contracts and NDAs only: answered for a power of attorney,
    # it is dropped exactly as intake drops it
    title = f"Power of attorney {uuid.uuid4().hex[:6]}"
    r = submit(customer, "legal-document", title,
               {"document": "power-of-attorney", "counterparty": "Should vanish"})
    assert r.status_code == 303
    assert card_by_title(stack, title)["fields"] == {"document": "power-of-attorney"}
    bad = submit(customer, "problem", "", {"system": "nonsense", "impact": "many"})
    assert bad.status_code == 422
    assert "must be one of: crm, mail, other" in bad.text
    assert "must be a number" in bad.text and "is required" in bad.text  # subject


def test_errors_and_pages_in_russian(stack, mail):
    client = sign_in(stack, mail, new_email("olga"))
    client.headers["Accept-Language"] = "ru-RU,ru;q=0.9"
    page = client.get("/services/problem/new")
    assert "Новое обращение: Проблема / ошибка" in page.text and '<html lang="ru">' in page.text
    r = client.post("/services/problem/new", data={"csrf": csrf_of(page.text), "subject": "x",
                                                   "f_system": "other"})
    assert r.status_code == 422
    assert "обязательное поле" in r.text and "Исправьте отмеченные поля." in r.text


def test_reply_rating_and_follow_up_are_refused_when_they_make_no_sense(stack, customer):
    title = f"Open one {uuid.uuid4().hex[:6]}"
    submit(customer, "question", title)
    card = card_by_title(stack, title)
    html = wait_in_portal(customer, card["id"])
    csrf = csrf_of(html)
    assert customer.post(f"/requests/{card['id']}/reply",
                         data={"csrf": csrf, "text": "  "}).status_code == 422
    # rating and follow-up are for closed requests only
    assert customer.post(f"/requests/{card['id']}/rating",
                         data={"csrf": csrf, "score": "5"}).status_code == 422
    assert customer.post(f"/requests/{card['id']}/follow-up",
                         data={"csrf": csrf, "text": "again"}).status_code == 422
    comments = httpx.get(f"{stack['boards'].url}/v1/cards/{card['id']}/comments",
                         headers=auth(stack)).json()["items"]
    assert len(comments) == 1  # only the request itself


def test_notification_preferences_are_published(stack, customer, mongo_url):
    page = customer.get("/settings/notifications")
    assert page.status_code == 200
    r = customer.post("/settings/notifications", data={
        "csrf": csrf_of(page.text), "agent_reply:email": "1", "agent_reply:telegram": "1",
        "status_changed:email": "1"})
    assert r.status_code == 303
    saved = customer.get("/settings/notifications").text
    assert checked(saved, "agent_reply-telegram") and checked(saved, "status_changed-email")
    assert not checked(saved, "reminder-email") and not checked(saved, "agent_reply-x")

    async def published():
        client = AsyncMongoClient(mongo_url, tz_aware=True)
        try:
            return [d async for d in client[f"{stack.namespace}_portal"]["outbox"].find(
                {"envelope.type": "customer.preferences_changed", "sent_at": {"$ne": None}})]
        finally:
            await client.close()
    [entry] = wait_until(lambda: asyncio.run(published()))
    payload = entry["envelope"]["payload"]
    assert payload["channels"] == {"acknowledgment": [], "status_changed": ["email"],
                                   "agent_reply": ["email", "telegram"],
                                   "rating_request": [], "reminder": []}
    assert payload["email"] == EMAIL


def test_signed_out_visitors_are_sent_to_sign_in(stack):
    client = portal_client(stack)
    for path in ("/", "/services/problem/new", f"/requests/{uuid.uuid4()}",
                 "/settings/notifications"):
        r = client.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert client.get("/widget").status_code == 200  # shows a sign-in link instead
    wrong = client.get("/logout")
    assert wrong.status_code == 405 and "This did not work" in wrong.text


def test_metrics_count_what_customers_send(stack, customer):
    text = httpx.get(f"{stack.url('portal')}/metrics").text
    assert re.search(r'desk_portal_submissions_total\{kind="request"\} [1-9]', text)
    assert re.search(r'desk_portal_login_codes_total\{outcome="sent"\} [1-9]', text)
    # HTTP metrics name the page's route template, not "other" (routes live in routers)
    assert 'route="/services/{service_id}/new",service="portal",status="303"' in text
