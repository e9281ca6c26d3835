"""The card keeps the customer's own language; services choose to answer in it (admin API)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def service(id_: str, **extra) -> dict:
    return {"id": id_, "name": {"en": id_.title()}, "language": "en", "target": {
        "board_id": "support", "column_id": "queue", "lane_id": "l1"}} | extra


def stored(desk, service_id: str) -> dict:
    return {i["service"]["id"]: i["service"]
            for i in desk.admin.get("/v1/services").json()["items"]}[service_id]


def test_a_new_service_answers_in_the_customers_language_unless_the_admin_says_no(desk):
    r = desk.admin.put("/v1/services/lang-new", json=service("lang-new"))
    assert r.status_code == 200, r.text
    assert r.json()["service"]["answer_in_customer_language"] is True
    assert stored(desk, "lang-new")["answer_in_customer_language"] is True
    # the choice travels to the other services with the catalog event
    [*_, changed] = [e for e in desk.outbox("catalog.service_changed")
                     if e["payload"]["service"]["id"] == "lang-new"]
    assert changed["payload"]["service"]["answer_in_customer_language"] is True

    desk.put_service(service("lang-new", answer_in_customer_language=False))
    assert stored(desk, "lang-new")["answer_in_customer_language"] is False
    # a client that does not know the option leaves the admin's choice alone
    desk.put_service(service("lang-new", name={"en": "Renamed"}))
    saved = stored(desk, "lang-new")
    assert saved["name"]["en"] == "Renamed" and saved["answer_in_customer_language"] is False

    desk.put_service(service("lang-off", answer_in_customer_language=False))
    assert stored(desk, "lang-off")["answer_in_customer_language"] is False


@pytest.mark.parametrize("sent, subject, text, expected", [
    ("de", "Drucker", "Der Drucker druckt nicht.", "de"),
    ("zh", "无法连接VPN", "我的电脑无法连接公司的VPN。", "zh"),
    ("unknown", "VPN", "Error 809", "unknown"),
    # a channel that does not say (the web API): the text decides, not the service
    (None, "Outlook startet nicht", "Seit dem Update startet Outlook nicht mehr, bitte "
                                    "helfen Sie mir.", "de"),
    (None, "VPN", "Error 809", "unknown"),
])
def test_the_card_keeps_the_customers_language(desk, sent, subject, text, expected):
    card = desk.request("question", language=sent, subject=subject, text=text)  # a ru service
    assert card["language"] == expected
    [created] = desk.outbox("card.created", card_id=card["id"])
    assert created["payload"]["card"]["language"] == expected
