"""The automation admin page in a browser: an admin sees the demo's category tree and
rules in plain words, opens a rule in the editor, and a wrong save is refused field by
field before a right one is kept."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.browser import SCREENSHOTS, chromium
from tests.support.stack import auth, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_an_admin_reads_and_edits_automation_on_its_page(stack, boards):
    r = httpx.post(f"{stack['boards'].url}/v1/agents", headers=auth(stack), timeout=15,
                   json={"id": f"ada-{uuid.uuid4().hex[:4]}", "name": "Ada", "role": "admin",
                         "boards": ["it"]})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    with chromium() as browser:
        context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.goto(f"{stack['boards'].url}/login?next=/admin/automation")
        page.locator("input[name=token]").fill(token)
        page.locator("form button[type=submit]").click()
        expect(page).to_have_url(f"{stack['boards'].url}/admin/automation")
        expect(page.get_by_role("link", name="Automation")).to_have_attribute(
            "aria-current", "page")

        tree = page.get_by_role("table", name="Categories: IT request")
        admin_row = tree.get_by_role("row", name="CRM administrator")
        expect(admin_row).to_contain_text("crm_role = admin")
        expect(admin_row).to_contain_text("priority: critical")
        expect(tree.get_by_role("row", name="CRM it-access-crm")).to_contain_text("as above")
        rule = page.get_by_role("row", name="Access request: prepared answer")
        expect(rule).to_contain_text("card_created")
        expect(rule).to_contain_text("category in it-access")
        page.screenshot(path=SCREENSHOTS / "admin-automation.png", full_page=True)

        rule.get_by_role("button", name="Edit").click()
        expect(page.get_by_label("Id")).to_have_value("hopper-access-answer")
        shown = json.loads(page.get_by_label("Definition (JSON)").input_value())
        assert shown["trigger"] == {"type": "card_created"}

        page.get_by_label("Id").fill("it-escalate")
        page.get_by_label("Definition (JSON)").fill(json.dumps({
            "name": "Escalate stuck access requests", "board_id": "it",
            "trigger": {"type": "time_in_column", "column_id": "new", "minutes": 40},
            "actions": [{"type": "set_lane", "lane_id": "nowhere"}]}))
        page.get_by_role("button", name="Save").click()
        result = page.locator("#automation-result")
        expect(result).to_contain_text("Not saved:")
        expect(result.locator("li")).to_have_text(["actions[0].lane_id: board 'it' has no "
                                                   "such lane"])
        expect(page.get_by_label("Definition (JSON)")).to_have_attribute("aria-invalid", "true")

        page.get_by_label("Definition (JSON)").fill(json.dumps({
            "name": "Escalate stuck access requests", "board_id": "it",
            "trigger": {"type": "time_in_column", "column_id": "new", "minutes": 40},
            "actions": [{"type": "set_lane", "lane_id": "urgent"}]}))
        page.get_by_role("button", name="Save").click()
        expect(result).to_contain_text("Saved: it-escalate (v1)")
        expect(page.get_by_role("row", name="Escalate stuck access requests")).to_contain_text(
            "time_in_column")
        context.close()
    assert boards.http.delete("/v1/automation/rules/it-escalate").status_code == 204


def test_an_ideas_tile_shows_its_checklist_progress_and_the_card_its_rule_run(stack, boards):
    idea = boards.submit("idea", "Keyboard shortcuts in the console",
                         email="dev@activecloud.example")
    card = wait_until(lambda: (c := boards.card(idea["id"]))["checklist"] and c, timeout=30)
    r = boards.http.patch(f"/v1/cards/{idea['id']}", json={
        "version": card["version"],
        "checklist": [dict(i, done=n == 0) for n, i in enumerate(card["checklist"])]})
    assert r.status_code == 200, r.text
    r = httpx.post(f"{stack['boards'].url}/v1/agents", headers=auth(stack), timeout=15,
                   json={"id": f"pm-{uuid.uuid4().hex[:4]}", "name": "Pia PM",
                         "boards": ["product"]})
    token = r.json()["token"]
    with chromium() as browser:
        context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.goto(f"{stack['boards'].url}/login?next=/board/product")
        page.locator("input[name=token]").fill(token)
        page.locator("form button[type=submit]").click()
        tile = page.locator(".tile", has=page.locator("a.num", has_text=idea["number"]))
        expect(tile.locator(".chip.checklist")).to_have_text("☑ 1/4")
        page.goto(f"{stack['boards'].url}/cards/{idea['number']}")
        history = page.locator("table.history")
        expect(history.locator("tr", has_text="automation: Ideas get the validation "
                                              "checklist")).to_contain_text(
            "checklist 'Idea validation' added")
        context.close()
