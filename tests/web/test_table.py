"""The card table in Chromium: full-text search with where it matched, columns, sorting,
keyboard, saved views (a link, shared), a bulk move of 100 cards and the CSV export."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from pymongo import MongoClient

from tests.support.browser import SCREENSHOTS
from tests.support.stack import Stack, auth, cleanup

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BOARD = {"name": "Bulk", "columns": [{"id": "inbox", "name": "Inbox", "category": "queued"},
                                     {"id": "doing", "name": "Doing", "category": "in_progress"},
                                     {"id": "done", "name": "Done", "category": "done"}],
         "lanes": [{"id": "main", "name": "Main"}]}


@pytest.fixture(scope="module")
def stack(mongo_url, amqp_url, tmp_path_factory):
    s = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("web-table"))
    s.start(("boards",))
    yield s
    s.stop()
    cleanup(mongo_url, amqp_url, s.namespace)


def api(stack: Stack, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, f"{stack['boards'].url}{path}", headers=auth(stack),
                         timeout=15, **kw)


@pytest.fixture(scope="module")
def desk(stack) -> dict:
    """The board, its service, two agents and 103 cards (100 of one batch)."""
    assert api(stack, "PUT", "/v1/boards/bulk", json=BOARD).status_code == 200
    assert api(stack, "PUT", "/v1/services/bulk-help", json={
        "id": "bulk-help", "name": {"en": "Bulk help", "ru": "Массовая помощь"},
        "target": {"board_id": "bulk", "column_id": "inbox", "lane_id": "main"}}
    ).status_code == 200
    tokens = {}
    for agent in ("tina", "theo"):
        r = api(stack, "POST", "/v1/agents", json={"id": agent, "name": agent.title(),
                                                  "boards": ["bulk"]})
        assert r.status_code == 201, r.text
        tokens[agent] = r.json()["token"]

    def card(title: str, text: str = "Please help.", **extra) -> dict:
        r = api(stack, "POST", "/v1/cards", json={
            "service_id": "bulk-help", "title": title, "text": text,
            "requester": {"email": "rita@acme.example", "name": "Rita",
                          "organisation": "Acme Logistics"}} | extra)
        assert r.status_code == 201, r.text
        return r.json()

    batch = [card(f"Batch item {i}", text="nightly batchwork")["id"] for i in range(100)]
    router = card("Office network", text="Everything is slow since Monday")
    r = api(stack, "POST", f"/v1/cards/{router['id']}/comments",
            json={"text": "Замените маршрутизатор на складе", "visibility": "public"})
    assert r.status_code == 201
    hostile = card("=HYPERLINK(\"http://evil.example\")", text="formula in title")
    return {"tokens": tokens, "batch": batch, "router": router, "hostile": hostile}


def signed_in(browser: Browser, stack: Stack, token: str, path: str, lang: str = "en-US"
              ) -> Page:
    context = browser.new_context(locale=lang, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{stack['boards'].url}/login?next={quote(path)}")
    page.locator("input[name=token]").fill(token)
    page.locator("form button[type=submit]").click()
    page.wait_for_selector("#card-table")
    return page


def test_search_shows_where_it_matched_and_the_keyboard_walks_the_rows(browser, stack, desk):
    page = signed_in(browser, stack, desk["tokens"]["tina"], "/table?board=bulk")
    page.get_by_label("Search").fill("маршрутизаторы")
    page.get_by_role("button", name="Apply", exact=True).click()
    rows = page.locator("#card-table tbody tr[data-id]")
    expect(rows).to_have_count(1)
    # words typed into the form are ranked (the sort field's default), not newest-first
    assert not re.search(r"[?&]sort=[^&]", page.url)
    expect(page.get_by_label("Sort")).to_have_value("")
    expect(rows.first).to_contain_text(desk["router"]["number"])
    expect(rows.first.locator("ul.matches")).to_contain_text("found in reply")
    expect(rows.first.locator("mark")).to_have_text("маршрутизатор")
    page.screenshot(path=str(SCREENSHOTS / "table.png"), full_page=False)

    # columns: add the requester's organisation, drop the SLA; sort by number
    page.goto(f"{stack['boards'].url}/table?board=bulk")
    page.get_by_role("checkbox", name="Organisation").check()
    page.get_by_role("checkbox", name="SLA").uncheck()
    page.get_by_role("button", name="Apply", exact=True).click()
    headers = page.locator("#card-table thead th")
    expect(headers.filter(has_text="Organisation")).to_have_count(1)
    expect(headers.filter(has_text="SLA")).to_have_count(0)
    expect(rows.first).to_contain_text("Acme Logistics")
    page.locator("#card-table thead a", has_text="Number").click()
    expect(page.locator("#card-table thead th[aria-sort]")).to_have_attribute(
        "aria-sort", "descending")
    numbers = [int(n.split("-")[1]) for n in
               rows.evaluate_all("rs => rs.map(r => r.dataset.number)")]
    assert numbers == sorted(numbers, reverse=True) and len(numbers) == 50
    expect(page.locator("#next-page")).to_be_visible()

    # keyboard: down twice, select, open
    rows.first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("j")
    third = rows.nth(2)
    expect(third).to_be_focused()
    page.keyboard.press("x")
    expect(third.locator("input.pick")).to_be_checked()
    expect(page.locator("#selected-count")).to_have_text("1 selected")
    number = third.get_attribute("data-number")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"/cards/{number}$"))


def test_saved_views_are_links_and_shared_ones_reach_the_board(browser, stack, desk):
    page = signed_in(browser, stack, desk["tokens"]["tina"],
                     "/table?board=bulk&q=batchwork&sort=-number", lang="ru-RU")
    expect(page.locator("h1")).to_have_text("Карточки")
    page.get_by_label("Название представления").fill("Ночные пакеты")
    page.get_by_label("Доступно агентам доски").check()
    page.get_by_role("button", name="Сохранить представление").click()
    expect(page).to_have_url(re.compile(r"/table\?view=\w+$"))
    link = page.url
    expect(page.locator("#views a[aria-current=page]")).to_have_text("Ночные пакеты")
    expect(page.locator("#card-table tbody tr[data-id]").first).to_contain_text("Batch item 99")
    # the colleague on the board opens the same link and sees the same cards
    other = signed_in(browser, stack, desk["tokens"]["theo"], link.split(
        stack["boards"].url)[1])
    expect(other.locator("#views")).to_contain_text("Ночные пакеты")
    expect(other.locator("#card-table tbody tr[data-id]").first).to_contain_text(
        "Batch item 99")
    # the colleague may not delete it; the owner may
    expect(other.locator("button.delete-view")).to_have_count(0)
    page.locator("button.delete-view").click()
    expect(page.locator("#views a")).to_have_count(0)


def test_bulk_move_of_100_cards_with_a_result_each_and_one_event_each(browser, stack, desk):
    page = signed_in(browser, stack, desk["tokens"]["tina"],
                     "/table?board=bulk&q=batchwork&per=100")
    rows = page.locator("#card-table tbody tr[data-id]")
    expect(rows).to_have_count(100)
    page.get_by_label("Select all on this page").check()
    expect(page.locator("#selected-count")).to_have_text("100 selected")
    page.locator("#bulk-action").select_option("move")
    page.locator("#bulk select[name=column_id]").select_option("doing")
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.locator("#bulk-result")).to_contain_text("100 done, 0 unchanged, 0 refused",
                                                         timeout=60_000)
    expect(page.locator("#bulk-results li[data-status=done]")).to_have_count(100)
    with MongoClient(stack.mongo_url) as client:
        moved = [e["envelope"]["payload"]["card"]["card_id"] for e in
                 client[f"{stack.namespace}_boards"]["outbox"].find(
                     {"envelope.type": "card.moved"})]
    assert sorted(moved) == sorted(desk["batch"])
    page.goto(f"{stack['boards'].url}/table?board=bulk&q=batchwork&per=100&cols=number,status")
    expect(rows.filter(has_text="Doing")).to_have_count(100)


def test_csv_export_of_the_view_is_formula_safe(browser, stack, desk):
    page = signed_in(browser, stack, desk["tokens"]["tina"], "/table?board=bulk")
    href = page.locator("#export-csv").get_attribute("href")
    r = page.request.get(f"{stack['boards'].url}{href}&cols=number,title,organisation")
    assert r.status == 200 and r.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(r.text())))
    assert table[0] == ["Number", "Title", "Organisation"]
    assert len(table) == 1 + 102
    hostile = next(row for row in table if row[0] == desk["hostile"]["number"])
    assert hostile[1] == "'=HYPERLINK(\"http://evil.example\")"
    assert hostile[2] == "Acme Logistics"
