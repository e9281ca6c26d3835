"""A board's settings in the browser (ru/en): its label list and typed custom fields; on a
card, labels chosen from the list (a rename shows on the tile), the typed field form with
the matching inputs and an error beside the field the server refused, a note's @mention
highlighted."""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.stack import Stack, auth, cleanup

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BOARD = {
    "name": "Office", "columns": [{"id": "todo", "name": "To do", "category": "queued"},
                                  {"id": "done", "name": "Done", "category": "done"}],
    "lanes": [{"id": "main", "name": "Main"}],
    # Core12's own priorities: two of them critical
    "priorities": [{"id": "waits", "names": {"en": "Waits", "ru": "Ждёт"},
                    "color": "#2e7d32", "level": "low"},
                   {"id": "fire", "names": {"en": "Fire", "ru": "Пожар"},
                    "color": "#ef6c00", "level": "critical"},
                   {"id": "overdue-urgent",
                    "names": {"en": "Overdue-urgent", "ru": "Просрочено-срочно"},
                    "color": "#c62828", "level": "critical"}],
}


@pytest.fixture(scope="module")
def stack(mongo_url, amqp_url, tmp_path_factory):
    s = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("web-labels"))
    # the settings page sets SLA targets through the admin pages' proxy to sla
    s.extra["boards"] = {"BOARDS_SLA_ADMIN_TOKEN": s.ADMIN_TOKEN}
    s.extra["sla"] = {"SLA_ADMIN_TOKEN": s.ADMIN_TOKEN}
    s.start(("boards", "sla"))
    yield s
    s.stop()
    cleanup(mongo_url, amqp_url, s.namespace)


def api(stack: Stack, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, f"{stack['boards'].url}{path}", headers=auth(stack),
                         timeout=15, **kw)


@pytest.fixture(scope="module")
def people(stack) -> dict[str, str]:
    assert api(stack, "PUT", "/v1/boards/office", json=BOARD).status_code == 200
    tokens = {}
    for agent_id, name, role in (("olga", "Olga Admin", "admin"),
                                 ("pavel", "Павел Смирнов", "agent")):
        r = api(stack, "POST", "/v1/agents", json={"id": agent_id, "name": name, "role": role,
                                                   "boards": ["office"]})
        assert r.status_code == 201, r.text
        tokens[agent_id] = r.json()["token"]
    return tokens


def signed_in(browser: Browser, stack: Stack, token: str, lang: str, path: str) -> Page:
    context = browser.new_context(locale=lang, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{stack['boards'].url}/login?next={path}")
    page.locator("input[name=token]").fill(token)
    page.locator("form button[type=submit]").click()
    expect(page).to_have_url(f"{stack['boards'].url}{path}")
    return page


def test_labels_and_typed_fields_from_the_settings_to_the_card_in_english(
        browser, stack, people):
    page = signed_in(browser, stack, people["olga"], "en-US", "/board/office")
    page.wait_for_selector("body[data-ready='1']")
    page.get_by_role("link", name="Board settings").click()
    expect(page.get_by_role("heading", name="Labels of this board")).to_be_visible()
    labels = page.locator("#labels-form")
    for name, colour in (("1C", "#1565c0"), ("Urgent", "#c62828")):
        labels.get_by_role("button", name="Add a label").click()
        row = labels.locator(".label-row").last
        row.get_by_label("Label").fill(name)
        row.get_by_label("Colour").fill(colour)
    labels.get_by_role("button", name="Save labels").click()
    expect(labels.locator(".form-status")).to_have_text("Saved")
    assert [x["name"] for x in api(stack, "GET", "/v1/boards/office/labels").json()[
        "labels"]] == ["1C", "Urgent"]

    fields = page.locator("#fields-form")
    for key, en, ru, kind in (("hours", "Hours", "Часы", "number"),
                              ("start", "Start date", "Дата начала", "date"),
                              ("system", "System", "Система", "select"),
                              ("laptop", "Laptop needed", "Нужен ноутбук", "checkbox")):
        fields.get_by_role("button", name="Add a field").click()
        row = fields.locator(".field-row").last
        row.get_by_label("Key").fill(key)
        row.get_by_label("Name (en)").fill(en)
        row.get_by_label("Name (ru)").fill(ru)
        row.get_by_label("Field type").select_option(kind)
    start = fields.locator(".field-row").nth(1)
    start.get_by_label("Required").check()
    fields.get_by_role("button", name="Save fields").click()
    # a choice field without choices: refused, the message beside that field
    expect(fields.locator(".field-row").nth(2).locator(".field-error")).to_contain_text(
        "needs options")
    fields.locator(".field-row").nth(2).get_by_label("Choices (comma-separated)").fill(
        "1c, sap")
    fields.get_by_role("button", name="Save fields").click()
    expect(fields.locator(".form-status")).to_have_text("Saved")
    assert [f["type"] for f in api(stack, "GET", "/v1/boards/office/fields").json()[
        "fields"]] == ["number", "date", "select", "checkbox"]

    r = api(stack, "POST", "/v1/tasks", json={"board_id": "office",
                                              "title": f"New hire {uuid.uuid4().hex[:4]}"})
    number = r.json()["number"]
    page.goto(f"{stack['boards'].url}/cards/{number}")
    choose = page.locator("#label-choose")
    choose.get_by_label("Urgent").check()
    choose.get_by_role("button", name="Save labels").click()
    expect(page.locator("#labels .chip.label")).to_have_text("Urgent")
    assert page.locator("#labels .chip.label").evaluate(
        "el => el.style.getPropertyValue('--c')") == "#c62828"

    form = page.locator("#custom-fields")
    assert form.get_by_label("Hours").get_attribute("type") == "number"
    assert form.get_by_label("Start date *").get_attribute("type") == "date"
    assert form.get_by_label("Laptop needed").get_attribute("type") == "checkbox"
    assert form.get_by_label("System").evaluate("el => el.tagName") == "SELECT"
    form.get_by_label("Hours").fill("6")
    form.get_by_label("System").select_option(label="sap")
    form.get_by_label("Laptop needed").check()
    form.get_by_role("button", name="Save fields").click()
    # the required date is missing: the server says so beside it, nothing is saved
    expect(form.locator('.field-error[data-for="start"]')).to_have_text("is required")
    assert api(stack, "GET", f"/v1/cards/{number}").json()["fields"] == {}
    form.get_by_label("Start date *").fill("2026-12-14")
    form.get_by_role("button", name="Save fields").click()
    facts = page.locator("dl.fields")
    expect(facts).to_contain_text("Start date")
    expect(facts).to_contain_text("2026-12-14")
    expect(facts.locator("dt", has_text="Laptop needed").locator("+ dd")).to_have_text("yes")
    assert api(stack, "GET", f"/v1/cards/{number}").json()["fields"] == {
        "hours": 6, "start": "2026-12-14", "system": "sap", "laptop": True}

    # a note naming a colleague by name: the mention is highlighted
    page.locator("label.kind.internal input").check()
    page.locator("#reply-text").fill("@павел смирнов please bring the laptop; @Nobody knows")
    page.get_by_role("button", name="Send").click()
    mention = page.locator(".comment.internal mark.mention")
    expect(mention).to_have_text("@павел смирнов")
    assert mention.get_attribute("data-agent") == "pavel"
    expect(page.locator(".comment.internal .text")).to_contain_text("@Nobody knows")
    assert page.locator(".comment.internal mark.mention").count() == 1

    # renamed and recoloured in the settings: the tile shows it
    page.goto(f"{stack['boards'].url}/board/office/settings")
    row = page.locator("#labels-form .label-row").nth(1)
    row.get_by_label("Label 2").fill("Hot")
    row.get_by_label("Colour 2").fill("#ff6f00")
    page.locator("#labels-form").get_by_role("button", name="Save labels").click()
    expect(page.locator("#labels-form .form-status")).to_have_text("Saved")
    page.goto(f"{stack['boards'].url}/board/office")
    page.wait_for_selector("body[data-ready='1']")
    tile = page.locator(".tile", has=page.locator("a.num", has_text=number))
    expect(tile.locator(".chip.label")).to_have_text("Hot")
    assert tile.locator(".chip.label").evaluate(
        "el => el.style.getPropertyValue('--c')") == "#ff6f00"
    page.context.close()


def test_the_settings_and_the_typed_form_speak_russian(browser, stack, people):
    r = api(stack, "POST", "/v1/tasks", json={"board_id": "office", "title": "Выгрузка"})
    number = r.json()["number"]
    page = signed_in(browser, stack, people["olga"], "ru-RU", "/board/office/settings")
    expect(page.get_by_role("heading", name="Ярлыки этой доски")).to_be_visible()
    expect(page.get_by_role("heading", name="Дополнительные поля этой доски")).to_be_visible()
    expect(page.locator("#fields-form .field-row").first.get_by_label("Тип поля")).to_have_value(
        "number")
    page.goto(f"{stack['boards'].url}/cards/{number}")
    form = page.locator("#custom-fields")
    expect(form.get_by_label("Часы")).to_be_visible()
    form.get_by_role("button", name="Сохранить поля").click()
    expect(form.locator('.field-error[data-for="start"]')).to_have_text("обязательное поле")
    expect(page.locator("#label-choose").get_by_role("button",
                                                     name="Сохранить ярлыки")).to_be_visible()
    page.context.close()
    # an agent who is not an admin has no settings page
    agent = signed_in(browser, stack, people["pavel"], "en-US", "/board/office")
    agent.wait_for_selector("body[data-ready='1']")
    expect(agent.get_by_role("link", name="Board settings")).to_have_count(0)
    assert agent.goto(f"{stack['boards'].url}/board/office/settings").status == 403
    agent.context.close()


def sla_policy(stack: Stack, name: str) -> dict:
    r = httpx.get(f"{stack['sla'].url}/v1/policies", headers=auth(stack), timeout=15)
    return next(p for p in r.json()["items"] if p["name"] == name)


def test_sla_targets_per_board_priority_from_the_settings(browser, stack, people):
    page = signed_in(browser, stack, people["olga"], "en-US", "/board/office/settings")
    form = page.locator("#sla-form")
    expect(form).to_be_visible()
    form.get_by_label("SLA policy").select_option("standard")
    urgent = form.get_by_label("Overdue-urgent: First response")
    # empty: the level's target (critical: 15 min in the demo policy) shows as the fallback
    expect(urgent).to_have_value("")
    assert urgent.get_attribute("placeholder") == "15"
    assert form.get_by_label("Waits: First response").get_attribute("placeholder") == "240"
    urgent.fill("5")
    form.get_by_label("Overdue-urgent: Resolution").fill("60")
    form.get_by_role("button", name="Save SLA targets").click()
    expect(form.locator(".form-status")).to_have_text("Saved")
    policy = sla_policy(stack, "standard")
    assert policy["priority_targets"] == {
        "overdue-urgent": {"first_response": 5, "resolution": 60}}
    assert policy["priority_overrides"]["critical"] == {"first_response": 15, "resolution": 240}
    # what sla prices a card by: the board priority's own target, else its level's
    preview = httpx.post(f"{stack['sla'].url}/v1/preview", headers=auth(stack), timeout=15,
                         json={"policy": "standard", "priority": "critical",
                               "priority_key": "fire", "start": "2026-12-01T10:00:00Z"})
    assert {t["target"]: t["minutes"] for t in preview.json()["targets"]}[
        "first_response"] == 15
    # shown again on a new visit (ru), and emptied cells give the board priority back its level
    page.goto(f"{stack['boards'].url}/board/office/settings?lang=ru")
    expect(page.get_by_role("heading", name="Сроки SLA для приоритетов этой доски")).to_be_visible()
    form = page.locator("#sla-form")
    form.get_by_label("Политика SLA").select_option("standard")
    expect(form.get_by_label("Просрочено-срочно: Первый ответ")).to_have_value("5")
    form.get_by_label("Просрочено-срочно: Первый ответ").fill("")
    form.get_by_label("Просрочено-срочно: Решение").fill("")
    form.get_by_role("button", name="Сохранить сроки SLA").click()
    expect(form.locator(".form-status")).to_have_text("Сохранено")
    assert sla_policy(stack, "standard")["priority_targets"] == {}
    page.context.close()
