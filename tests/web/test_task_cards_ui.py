"""Task cards in the browser (ru/en): a new task from the board with the board's own type
and priority, labels, blockers, due date and rating on its tile; on the card page a label,
a blocker, a child card on another board with its progress, following."""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.stack import Stack, auth, cleanup

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BOARD = {
    "name": "Work", "columns": [{"id": "todo", "name": "To do", "category": "queued"},
                                {"id": "done", "name": "Done", "category": "done"}],
    "lanes": [{"id": "main", "name": "Main"}],
    "card_types": [{"id": "feature", "name": {"en": "Feature", "ru": "Доработка"},
                    "color": "#6a1b9a"},
                   {"id": "request", "name": {"en": "Request", "ru": "Запрос"},
                    "customer_request": True}],
    "priorities": [{"id": "waits", "names": {"en": "Waits", "ru": "Ждёт"},
                    "color": "#2e7d32", "level": "low"},
                   {"id": "overdue-urgent",
                    "names": {"en": "Overdue-urgent", "ru": "Просрочено-срочно"},
                    "color": "#c62828", "level": "critical"}],
}


@pytest.fixture(scope="module")
def stack(mongo_url, amqp_url, tmp_path_factory):
    s = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("web-tasks"))
    s.start(("boards",))
    yield s
    s.stop()
    cleanup(mongo_url, amqp_url, s.namespace)


def api(stack: Stack, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, f"{stack['boards'].url}{path}", headers=auth(stack),
                         timeout=15, **kw)


@pytest.fixture(scope="module")
def token(stack) -> str:
    assert api(stack, "PUT", "/v1/boards/work", json=BOARD).status_code == 200
    r = api(stack, "POST", "/v1/agents", json={"id": "tess", "name": "Tess Tasker",
                                              "boards": ["support", "work"]})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def signed_in(browser: Browser, stack: Stack, token: str, lang: str) -> Page:
    context = browser.new_context(locale=lang, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{stack['boards'].url}/login?next=/board/work")
    page.locator("input[name=token]").fill(token)
    page.locator("form button[type=submit]").click()
    expect(page).to_have_url(f"{stack['boards'].url}/board/work")
    page.wait_for_selector("body[data-ready='1']")
    return page


def test_a_task_from_the_board_with_its_tile_and_card_page_in_english(browser, stack, token):
    page = signed_in(browser, stack, token, "en-US")
    page.get_by_role("button", name="New task").click()
    dialog = page.get_by_role("dialog", name="New task")
    title = f"Export to 1C {uuid.uuid4().hex[:4]}"
    dialog.get_by_label("Title").fill(title)
    dialog.get_by_label("Type").select_option(label="Feature")
    dialog.get_by_label("Priority").select_option(label="Overdue-urgent")
    dialog.get_by_label("Due date").fill("2030-01-31")
    dialog.get_by_role("button", name="Create").click()
    tile = page.locator(".tile", has_text=title)
    expect(tile).to_be_visible()
    expect(tile.locator(".prio-label")).to_have_text("Overdue-urgent")
    expect(tile.locator(".chip.type")).to_have_text("Feature")
    expect(tile.locator(".chip.due")).to_have_text("due 2030-01-31")
    # the board's colour for the priority is on the tile (through the CSSOM, not inline)
    assert tile.evaluate("el => el.style.getPropertyValue('--c')") == "#c62828"
    number = tile.locator("a.num").inner_text()
    card = api(stack, "GET", f"/v1/cards/{number}").json()
    assert (card["kind"], card["requester"], card["priority_key"]) == (
        "task", None, "overdue-urgent")

    page.goto(f"{stack['boards'].url}/cards/{number}")
    expect(page.locator(".meta .chip.task")).to_have_text("internal task, no customer")
    page.get_by_label("Label", exact=True).fill("1C")
    page.locator("#label-add").get_by_role("button", name="Add").click()
    expect(page.locator("#labels .chip.label")).to_contain_text("1C")
    page.get_by_label("Key", exact=True).fill("estimate")
    page.get_by_label("Value", exact=True).fill("3d")
    page.get_by_role("button", name="Set field").click()
    expect(page.locator("dl.fields")).to_contain_text("3d")
    page.get_by_label("Reason").fill("waits for vendor")
    page.get_by_role("button", name="Block", exact=True).click()
    expect(page.locator("#blockers")).to_contain_text("waits for vendor")
    page.locator("#child-board").select_option("support")
    page.locator("#child-title").fill("Check the support side")
    page.get_by_role("button", name="Create a child card").click()
    expect(page.locator("#children-progress")).to_have_text("0 of 1 done")
    page.get_by_role("button", name="Follow").click()
    expect(page.get_by_role("button", name="Stop following")).to_be_visible()

    page.goto(f"{stack['boards'].url}/board/work")
    page.wait_for_selector("body[data-ready='1']")
    tile = page.locator(".tile", has_text=title)
    expect(tile.locator(".chip.label")).to_have_text("1C")
    expect(tile.locator(".chip.blocked")).to_contain_text("Blocked: waits for vendor")
    page.context.close()


def test_the_board_speaks_russian_with_the_boards_own_names(browser, stack, token):
    page = signed_in(browser, stack, token, "ru-RU")
    page.get_by_role("button", name="Новая задача").click()
    dialog = page.get_by_role("dialog", name="Новая задача")
    dialog.get_by_label("Тип").select_option(label="Доработка")
    dialog.get_by_label("Приоритет").select_option(label="Ждёт")
    title = f"Выгрузка {uuid.uuid4().hex[:4]}"
    dialog.get_by_label("Тема").fill(title)
    dialog.get_by_role("button", name="Создать").click()
    tile = page.locator(".tile", has_text=title)
    expect(tile.locator(".prio-label")).to_have_text("Ждёт")
    expect(tile.locator(".chip.type")).to_have_text("Доработка")
    page.context.close()
