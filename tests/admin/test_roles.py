"""Roles beyond agent and admin, enforced on boards' API: a viewer only reads their boards,
a team lead also sets up their own boards (and nothing else an admin does). Each test
tries what the role must not do, by token and by a browser session with its CSRF token."""

from __future__ import annotations

import httpx
import pytest

from tests.support.stack import Stack, auth, cleanup

pytestmark = pytest.mark.slow


def board(name: str) -> dict:
    return {"name": name, "columns": [{"id": "todo", "name": "To do", "category": "queued"},
                                      {"id": "doing", "name": "Doing",
                                       "category": "in_progress"},
                                      {"id": "done", "name": "Done", "category": "done"}],
            "lanes": [{"id": "main", "name": "Main"}]}


@pytest.fixture(scope="module")
def desk(mongo_url, amqp_url, tmp_path_factory):
    s = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("roles"))
    s.start(("boards",))
    with httpx.Client(base_url=s["boards"].url, headers=auth(s), timeout=15) as admin:
        for board_id in ("ops", "other"):
            assert admin.put(f"/v1/boards/{board_id}", json=board(board_id)).status_code == 200
        yield s, admin
    s.stop()
    cleanup(mongo_url, amqp_url, s.namespace)


def person(admin: httpx.Client, agent_id: str, role: str, boards: list[str]) -> httpx.Client:
    r = admin.post("/v1/agents", json={"id": agent_id, "name": agent_id.title(), "role": role,
                                       "boards": boards})
    assert r.status_code == 201, r.text
    return httpx.Client(base_url=str(admin.base_url), timeout=15,
                        headers={"Authorization": f"Bearer {r.json()['token']}"})


def task(admin: httpx.Client, board_id: str = "ops") -> dict:
    r = admin.post("/v1/tasks", json={"board_id": board_id, "title": "Rotate the keys"})
    assert r.status_code == 201, r.text
    return r.json()


def test_a_viewer_reads_their_board_and_changes_nothing(desk):
    stack, admin = desk
    viewer = person(admin, "vera", "viewer", ["ops"])
    card = task(admin)
    assert viewer.get("/v1/boards/ops").status_code == 200
    assert card["id"] in [c["id"] for c in viewer.get("/v1/cards",
                                                      params={"board_id": "ops"}).json()["items"]]
    assert viewer.get("/v1/boards/other").status_code == 404  # not their board
    attempts = [
        ("POST", "/v1/tasks", {"board_id": "ops", "title": "Mine"}),
        ("POST", f"/v1/cards/{card['id']}/move", {"column_id": "doing",
                                                   "version": card["version"]}),
        ("PATCH", f"/v1/cards/{card['id']}", {"version": card["version"], "title": "Changed"}),
        ("POST", f"/v1/cards/{card['id']}/comments", {"text": "hi", "visibility": "internal"}),
        ("POST", f"/v1/cards/{card['id']}/assign", {"assignee": "vera",
                                                     "version": card["version"]}),
        ("POST", "/v1/cards/bulk", {"card_ids": [card["id"]], "action": "move",
                                    "column_id": "done"}),
        ("PUT", "/v1/boards/ops", board("Ops (mine)")),
        ("PUT", "/v1/admin/boards/ops/work", {"card_types": [{"id": "t", "name": {"en": "T"}}],
                                              "priorities": [{"id": "p", "names": {"en": "P"},
                                                              "level": "low", "color": "#888888"}]}),
        ("PATCH", "/v1/agents/vera", {"role": "admin"}),
    ]
    for method, path, body in attempts:
        r = viewer.request(method, path, json=body)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
    # the same through a browser session with its CSRF token
    with httpx.Client(base_url=stack["boards"].url, timeout=15) as browser:
        token = viewer.headers["Authorization"].split()[1]
        csrf = browser.post("/v1/session", json={"token": token}).json()["csrf_token"]
        r = browser.post(f"/v1/cards/{card['id']}/comments", headers={"X-CSRF-Token": csrf},
                         json={"text": "hi", "visibility": "internal"})
        assert r.status_code == 403
        assert browser.get("/admin/boards").status_code == 403
        # their own bookkeeping still works: marking a card read
        assert browser.post(f"/v1/cards/{card['id']}/read",
                            headers={"X-CSRF-Token": csrf}).status_code == 200
    after = admin.get(f"/v1/cards/{card['id']}").json()
    assert (after["column_id"], after["title"], after["version"]) == (
        "todo", "Rotate the keys", card["version"])
    assert admin.get(f"/v1/cards/{card['id']}/comments").json()["items"] == []
    assert admin.get("/v1/boards/ops").json()["name"] == "ops"
    viewer.close()


def test_a_lead_sets_up_their_board_but_nothing_an_admin_does(desk):
    stack, admin = desk
    lead = person(admin, "leo", "lead", ["ops"])
    shaped = board("Ops") | {"columns": [
        {"id": "todo", "name": "To do", "category": "queued", "wip_limit": 7},
        {"id": "doing", "name": "Doing", "category": "in_progress"},
        {"id": "done", "name": "Done", "category": "done"}]}
    r = lead.put("/v1/boards/ops", json=shaped)
    assert r.status_code == 200, r.text
    assert admin.get("/v1/boards/ops").json()["columns"][0]["wip_limit"] == 7
    work = {"card_types": [{"id": "chore", "name": {"en": "Chore"}}],
            "priorities": [{"id": "soon", "names": {"en": "Soon"}, "level": "high",
                            "color": "#c62828"}]}
    r = lead.put("/v1/admin/boards/ops/work", json=work)
    assert r.status_code == 200, r.text
    assert [t["id"] for t in admin.get("/v1/boards/ops").json()["card_types"]] == ["chore"]
    r = lead.put("/v1/boards/ops/labels", json={"labels": [{"name": "vip", "color": "#c62828"}]})
    assert r.status_code == 200, r.text
    # not their board: refused without saying whether it exists
    assert lead.put("/v1/boards/other/labels", json={"labels": []}).status_code in (403, 404)
    # each of the lead's changes is in the audit log under their name
    logged = admin.get("/v1/admin/audit", params={"area": "boards"}).json()["items"]
    mine = {e["target"] for e in logged if e["who"]["id"] == "leo"}
    assert {"board ops", "board ops types and priorities", "board ops labels"} <= mine
    # they work cards like an agent
    card = task(lead)
    assert lead.post(f"/v1/cards/{card['id']}/comments",
                     json={"text": "on it", "visibility": "internal"}).status_code == 201
    members_before = admin.get("/v1/boards/ops").json()["members"]
    attempts = [
        ("PUT", "/v1/boards/other", board("Other (taken)")),       # not their board
        ("PUT", "/v1/boards/brand-new", board("New")),             # creating boards
        ("PUT", "/v1/boards/ops", shaped | {"members": ["leo", "vera", "intruder"]}),
        ("PUT", "/v1/admin/boards/other/work", work),
        ("PATCH", "/v1/agents/leo", {"role": "admin"}),            # promoting themselves
        ("POST", "/v1/agents", {"id": "pal", "name": "Pal", "role": "admin"}),
        ("PUT", "/v1/services/sneaky", {"id": "sneaky", "name": {"en": "S"},
                                        "target": {"board_id": "ops", "column_id": "todo",
                                                   "lane_id": "main"}, "fields": []}),
        ("POST", "/v1/admin/canned", {"title": "x", "text": "y"}),
        ("POST", "/v1/admin/agents/leo/tokens", {"name": "more"}),
    ]
    for method, path, body in attempts:
        r = lead.request(method, path, json=body)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
    assert admin.get("/v1/boards/other").json()["name"] == "other"
    assert admin.get("/v1/boards/brand-new").status_code == 404
    assert admin.get("/v1/boards/ops").json()["members"] == members_before
    assert admin.get("/v1/agents").json()["items"][-1]["id"] != "pal"
    with httpx.Client(base_url=stack["boards"].url, timeout=15) as browser:
        browser.post("/v1/session", json={"token": lead.headers["Authorization"].split()[1]})
        page = browser.get("/admin/boards")
        assert page.status_code == 200 and 'data-board="ops"' in page.text
        assert "/admin/boards?board=other" not in page.text  # only boards they lead
        assert browser.get("/admin/boards?board=other").text.count('data-board="other"') == 0
        for path in ("/admin", "/admin/people", "/admin/sla", "/admin/audit"):
            assert browser.get(path).status_code == 403, path
    lead.close()


def test_an_agent_works_cards_but_sets_up_no_board(desk):
    _, admin = desk
    agent = person(admin, "ann", "agent", ["ops"])
    card = task(agent)
    assert agent.post(f"/v1/cards/{card['id']}/move", json={
        "column_id": "doing", "version": card["version"]}).status_code == 200
    assert agent.put("/v1/boards/ops", json=board("Ops")).status_code == 403
    assert agent.put("/v1/admin/boards/ops/work", json={
        "card_types": [{"id": "t", "name": {"en": "T"}}],
        "priorities": [{"id": "p", "names": {"en": "P"}, "level": "low", "color": "#888888"}]}).status_code == 403
    agent.close()


def test_a_viewers_board_and_card_pages_offer_no_changes(desk):
    """The pages match the API: a viewer sees the board and the card, but no drag, no move
    dialog and none of the forms that would change a card; following it stays."""
    from playwright.sync_api import expect

    from tests.support.browser import chromium

    stack, admin = desk
    viewer = person(admin, "vic", "viewer", ["ops"])
    agent = person(admin, "ada", "agent", ["ops"])
    card = task(admin)
    try:
        with chromium() as browser:
            for who, read_only in ((viewer, True), (agent, False)):
                context = browser.new_context(locale="en-US")
                page = context.new_page()
                page.goto(f"{stack['boards'].url}/login?next=/board/ops")
                page.locator("input[name=token]").fill(who.headers["Authorization"].split()[1])
                page.locator("form button[type=submit]").click()
                expect(page).to_have_url(f"{stack['boards'].url}/board/ops")
                tile = page.locator(f".tile[data-id='{card['id']}']")
                expect(tile).to_have_attribute("draggable", "false" if read_only else "true")
                expect(page.get_by_role("link", name="New request")).to_have_count(
                    0 if read_only else 1)
                tile.focus()
                page.keyboard.press("Enter")  # the move dialog opens for an agent only
                expect(page.locator("#move-form")).to_be_visible(visible=not read_only)
                page.goto(f"{stack['boards'].url}/cards/{card['number']}")
                expect(page.locator("#reply-form")).to_be_visible(visible=not read_only)
                expect(page.locator("#card-edit")).to_be_visible(visible=not read_only)
                expect(page.locator("#follow")).to_be_visible()
                context.close()
    finally:
        viewer.close()
        agent.close()
