"""The agent workspace in headless Chromium against the real boards, sla and portal processes.

Sign in with an agent token, drag a card to another column and see it persisted and
shown in a second browser without reload, try a stale move (409 shown), reply in public
and add an internal note and check which one reaches the customer's portal, create a
service with a conditional field in the admin pages. Saves the README screenshots.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aio_pika
import httpx
import pytest
from desk_contracts import make_envelope
from desk_contracts.events import ReplyReceived, SlaBreached, SlaWarning
from desk_contracts.topology import Topology
from playwright.sync_api import Browser, Page, expect

from tests.support.stack import Stack, auth, mongo_find, sla_auth, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def api(stack: Stack, method: str, path: str, token: str | None = None, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else auth(stack)
    return httpx.request(method, f"{stack['boards'].url}{path}", headers=headers, timeout=15, **kw)


@pytest.fixture(scope="module")
def agent_token(stack) -> str:
    r = api(stack, "POST", "/v1/agents", json={"id": "ann", "name": "Ann Agent",
                                              "email": "ann@desk.example", "boards": ["support"]})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def new_card(stack: Stack, title: str, **extra) -> dict:
    body = {"service_id": "problem", "title": title, "text": "It broke this morning.",
            "requester": {"email": f"cust.{uuid.uuid4().hex[:6]}@acme.example",
                          "name": "Carla Customer"},
            "fields": {"system": "mail"}} | extra
    r = api(stack, "POST", "/v1/cards", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def signed_in(browser: Browser, stack: Stack, token: str, lang: str = "en-US") -> Page:
    context = browser.new_context(locale=lang, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    # the support board by name: the demo has several, and an admin sees them all
    page.goto(f"{stack['boards'].url}/board/support")
    expect(page).to_have_url(f"{stack['boards'].url}/login?next=/board/support")
    page.get_by_label("Agent API token" if lang.startswith("en") else "API-токен агента"
                      ).fill(token)
    page.get_by_role("button", name="Sign in" if lang.startswith("en") else "Войти").click()
    expect(page).to_have_url(f"{stack['boards'].url}/board/support")
    page.wait_for_selector("body[data-ready='1']")
    return page


def publish(stack: Stack, payload) -> None:
    """Put a real event on the stack's exchange (in a thread: Playwright owns this loop)."""
    envelope = make_envelope(payload, account_id="default")

    async def send() -> None:
        conn = await aio_pika.connect(stack.amqp_url)
        async with conn:
            channel = await conn.channel()
            exchange = await channel.get_exchange(Topology(stack.namespace).exchange)
            await exchange.publish(aio_pika.Message(
                json.dumps(envelope.model_dump(mode="json")).encode(),
                content_type="application/json"), routing_key=envelope.routing_key)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, send()).result()


def sla_signal(kind, card: dict, minutes: int):
    now = datetime.now(UTC)
    return kind(card_id=card["id"], number=card["number"], target="first_response",
                deadline=now + timedelta(minutes=minutes), at=now, policy="standard",
                service_id="problem")


def tile(page: Page, number: str):
    return page.locator(f".tile:has(a.num:text-is('{number}'))")


def cell(page: Page, column: str, lane: str = "l1"):
    return page.locator(f".cell[data-column='{column}'][data-lane='{lane}']")


def test_sign_in_is_refused_without_a_valid_token(stack, browser):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{stack['boards'].url}/board")
    page.get_by_label("Agent API token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").filter(has_text="not accepted")).to_be_visible()
    assert not [c for c in context.cookies() if c["name"] == "desk_agent_session"]
    context.close()


def test_session_cookie_is_httponly_strict_and_needs_csrf(stack, agent_token):
    base = stack["boards"].url
    with httpx.Client(base_url=base, timeout=10) as c:
        r = c.post("/v1/session", json={"token": agent_token})
        assert r.status_code == 200, r.text
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        csrf = r.json()["csrf_token"]
        card = new_card(stack, "CSRF probe")
        # reading works on the cookie alone
        assert c.get(f"/v1/cards/{card['id']}").status_code == 200
        # a state change on the cookie without (or with a wrong) CSRF token is refused
        move = {"column_id": "in-progress", "version": card["version"]}
        assert c.post(f"/v1/cards/{card['id']}/move", json=move).status_code == 403
        assert c.post(f"/v1/cards/{card['id']}/move", json=move,
                      headers={"X-CSRF-Token": "guess"}).status_code == 403
        assert api(stack, "GET", f"/v1/cards/{card['id']}").json()["column_id"] == "queue"
        r = c.post(f"/v1/cards/{card['id']}/move", json=move, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200 and r.json()["column_id"] == "in-progress"
        # the stored session is a hash, never the cookie value
        raw = c.cookies["desk_agent_session"]
        rows = mongo_find(stack.mongo_url, f"{stack.namespace}_boards", "agent_sessions", {})
        assert rows and all(raw not in (d["_id"], d.get("csrf")) for d in rows)
        # the plain sign-out form needs the token too
        assert c.post("/logout", data={"csrf": "guess"}).status_code == 403
        assert c.get(f"/v1/cards/{card['id']}").status_code == 200
        # sign-out deletes the session on the server: the old cookie no longer works
        assert c.delete("/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    with httpx.Client(base_url=base, timeout=10, cookies={"desk_agent_session": raw}) as old:
        assert old.get(f"/v1/cards/{card['id']}").status_code == 401
        assert old.get("/board", follow_redirects=False).headers["location"].startswith("/login")


def test_deactivated_agent_loses_the_session(stack):
    r = api(stack, "POST", "/v1/agents", json={"name": "Temp", "boards": ["support"]})
    token, agent_id = r.json()["token"], r.json()["id"]
    with httpx.Client(base_url=stack["boards"].url, timeout=10) as c:
        assert c.post("/v1/session", json={"token": token}).status_code == 200
        assert c.get("/v1/cards").status_code == 200
        assert api(stack, "PATCH", f"/v1/agents/{agent_id}", json={"active": False}).is_success
        assert c.get("/v1/cards").status_code == 401


def test_drag_persists_and_reaches_a_second_browser_live(stack, browser, agent_token):
    card = new_card(stack, "Printer on floor 3 jams", priority="high")
    other = new_card(stack, "VPN drops every hour")
    waiting = new_card(stack, "Password reset for the accountant", priority="critical")
    a = signed_in(browser, stack, agent_token)
    b = signed_in(browser, stack, agent_token)
    expect(b.locator("#live-state.on")).to_be_visible()
    expect(a.locator("#live-state.on")).to_be_visible()
    first = tile(a, card["number"])
    expect(first).to_be_visible()
    expect(first.locator("[data-sla]")).to_have_class("sla sla-green")

    first.drag_to(cell(a, "in-progress"))
    expect(cell(a, "in-progress").locator(f"a.num:text-is('{card['number']}')")).to_be_visible()
    wait_until(lambda: api(stack, "GET", f"/v1/cards/{card['id']}").json()["column_id"]
               == "in-progress")
    # the other agent's board follows without a reload
    marker = b.evaluate("window.__marker = 1")  # noqa: F841 - gone if the page reloaded
    expect(cell(b, "in-progress").locator(f"a.num:text-is('{card['number']}')")).to_be_visible()
    assert b.evaluate("window.__marker") == 1
    expect(b.locator("#announce")).to_contain_text(card["number"])

    # keyboard alternative: focus the card, Enter, choose the column and lane
    t = tile(b, other["number"])
    t.focus()
    b.keyboard.press("Enter")
    dialog = b.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Column").select_option("clarification")
    dialog.get_by_label("Lane").select_option("l2")
    dialog.get_by_role("button", name="Move").click()
    wait_until(lambda: (c := api(stack, "GET", f"/v1/cards/{other['id']}").json())
               ["column_id"] == "clarification" and c["lane_id"] == "l2")
    expect(cell(a, "clarification", "l2").locator(f"a.num:text-is('{other['number']}')")
           ).to_be_visible()

    # sla's signals reach the board live too: red with the overdue time, yellow with time left
    publish(stack, sla_signal(SlaBreached, card, -25))
    publish(stack, sla_signal(SlaWarning, other, 40))
    expect(tile(b, card["number"]).locator("[data-sla]")).to_have_class("sla sla-red")
    expect(tile(b, card["number"]).locator("[data-sla]")).to_contain_text("overdue")
    expect(tile(b, other["number"]).locator("[data-sla]")).to_have_class("sla sla-yellow")
    expect(tile(b, other["number"]).locator("[data-sla]")).to_contain_text("left")
    assert b.evaluate("window.__marker") == 1
    expect(tile(a, other["number"]).locator("[data-sla]")).to_have_class("sla sla-yellow")

    # the queue's 3-minute limit: a card that entered 5 minutes ago is highlighted
    expect(tile(a, waiting["number"])).not_to_have_class("stale")
    a.evaluate(f"""() => {{ const c = window.deskBoard.cards.get('{waiting['id']}');
        c.entered = new Date(Date.now() - 5 * 60e3).toISOString(); window.deskBoard.render(); }}""")
    expect(tile(a, waiting["number"])).to_have_class(re.compile(r"\bstale\b"))
    expect(tile(a, waiting["number"]).locator("[data-tic]")).to_contain_text("5m")
    shot(a, "board")

    # a stale version (someone moved it meanwhile): 409 is shown, the board shows the truth
    current = api(stack, "GET", f"/v1/cards/{card['id']}").json()
    a.evaluate(f"window.deskBoard.cards.get('{card['id']}').version = {current['version'] - 1}")
    tile(a, card["number"]).drag_to(cell(a, "pause"))
    expect(a.locator("#toast")).to_contain_text("Conflict")
    expect(cell(a, "in-progress").locator(f"a.num:text-is('{card['number']}')")).to_be_visible()
    assert api(stack, "GET", f"/v1/cards/{card['id']}").json()["column_id"] == "in-progress"
    a.context.close()
    b.context.close()


def test_public_reply_reaches_the_portal_and_the_internal_note_does_not(
        stack, browser, agent_token, mongo_url):
    card = new_card(stack, "Cannot open the CRM")
    # the SLA record exists once sla has heard card.created
    wait_until(lambda: httpx.get(f"{stack['sla'].url}/v1/cards/{card['id']}/sla",
                                 headers=sla_auth(stack)).status_code == 200)
    page = signed_in(browser, stack, agent_token)
    page.goto(f"{stack['boards'].url}/cards/{card['number']}")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("table.sla-record")).to_contain_text("first_response")
    expect(page.locator(".fields")).to_contain_text("customer sees")
    # the service says public by default
    expect(page.get_by_label("Public reply (customer sees it)")).to_be_checked()

    note = f"Internal: customer is on the old plan {uuid.uuid4().hex[:6]}"
    page.get_by_label("Internal note (agents only)").check()
    page.get_by_label("Text", exact=True).fill(note)
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".comment.internal")).to_contain_text(note)

    reply = f"Hello Carla, please try again now {uuid.uuid4().hex[:6]}"
    page.get_by_label("Public reply (customer sees it)").check()
    page.get_by_label("Text", exact=True).fill(reply)
    log = b"2026-11-25 CRM: connection refused\n" * 20
    page.locator("#reply-files").set_input_files(
        files=[{"name": "crm-error.log", "mimeType": "text/plain", "buffer": log}])
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".comment.public").filter(has_text=reply)).to_be_visible()
    # the file went to intake's store once and the link on the card serves it
    link = page.locator(".comment.public").filter(has_text=reply).get_by_role(
        "link", name="crm-error.log")
    assert httpx.get(link.get_attribute("href"), timeout=10).content == log
    expect(page.locator("#h-files + ul")).to_contain_text("crm-error.log")
    shot(page, "card")
    page.locator("#edit-assignee").select_option("ann")
    wait_until(lambda: api(stack, "GET", f"/v1/cards/{card['id']}").json()["assignee_id"]
               == "ann")
    expect(page.locator(".card-head .meta")).to_contain_text("Assignee: Ann Agent")

    db = f"{stack.namespace}_portal"
    texts = wait_until(lambda: (m := [d.get("text") for d in mongo_find(
        mongo_url, db, "messages", {"card_id": card["id"]})]) and reply in m and m)
    # the note was posted first, so had it leaked it would be there by now
    assert not any(note in (t or "") for t in texts)
    [shown] = mongo_find(mongo_url, db, "messages", {"card_id": card["id"], "text": reply})
    assert [a["filename"] for a in shown["attachments"]] == ["crm-error.log"]
    comments = api(stack, "GET", f"/v1/cards/{card['id']}/comments").json()["items"]
    assert {(c["visibility"], c["text"]) for c in comments} >= {("internal", note),
                                                               ("public", reply)}
    page.context.close()


def test_admin_creates_a_service_with_a_conditional_field(stack, browser, agent_token):
    new_card(stack, "Keeps the queue column busy")
    page = signed_in(browser, stack, stack.ADMIN_TOKEN)
    page.get_by_role("link", name="Admin").click()
    page.wait_for_selector("body[data-ready='1']")
    form = page.locator("#service-form")
    form.get_by_label("Id", exact=True).fill("laptop")
    form.get_by_label("Name (English)").fill("New laptop")
    form.get_by_label("Name (Russian)").fill("Новый ноутбук")
    form.get_by_label("Target board").select_option("support")
    form.get_by_label("Target column").select_option("queue")
    form.get_by_label("Target lane").select_option("l2")
    page.get_by_role("button", name="Add field").click()
    row = page.locator(".field-row").nth(0)
    row.get_by_label("Key", exact=True).fill("model")
    row.get_by_label("Label (en)").fill("Model")
    row.locator("[name=f_type]").select_option("select")
    row.get_by_label("Options (value=label, comma-separated)").fill("air=Air, pro=Pro, other=Other")
    row.get_by_label("Required").check()
    page.get_by_role("button", name="Add field").click()
    row = page.locator(".field-row").nth(1)
    row.get_by_label("Key", exact=True).fill("which")
    row.get_by_label("Label (en)").fill("Which model?")
    row.get_by_label("Shown when field").fill("model")
    row.get_by_label("has one of the values (comma-separated)").fill("other")
    row.get_by_label("Customer sees it").uncheck()
    page.get_by_role("button", name="Save").first.click()
    expect(page.locator("#service-result")).to_contain_text("laptop r1")
    shot(page, "admin")

    items = {i["service"]["id"]: i["service"]
             for i in api(stack, "GET", "/v1/services").json()["items"]}
    svc = items["laptop"]
    assert svc["name"] == {"en": "New laptop", "ru": "Новый ноутбук"}
    assert svc["target"] == {"board_id": "support", "column_id": "queue", "lane_id": "l2"}
    model, which = svc["fields"]
    assert model["type"] == "select" and [o["value"] for o in model["options"]] == [
        "air", "pro", "other"]
    assert which["condition"] == {"field": "model", "in": ["other"]}
    assert which["show_to_customer"] is False

    # a bad definition is refused with the reason, and nothing is saved
    page.get_by_role("button", name="Add field").click()
    row = page.locator(".field-row").nth(2)
    row.get_by_label("Key", exact=True).fill("oops")
    row.get_by_label("Shown when field").fill("nosuch")
    row.get_by_label("has one of the values (comma-separated)").fill("x")
    page.get_by_role("button", name="Save").first.click()
    expect(page.locator("#service-result")).to_contain_text("nosuch")
    assert len(api(stack, "GET", "/v1/services").json()["items"]) == len(items)

    # boards: add a review column with a 30-minute limit through the form
    board = page.locator("form.board-form[data-board='support']")
    board.get_by_role("button", name="Add column").click()
    row = board.locator(".col-row").last
    row.get_by_label("Id", exact=True).fill("review")
    row.get_by_label("Name", exact=True).fill("Review")
    row.locator("[name=c_category]").select_option("in_progress")
    row.get_by_label("Time limit (min)").fill("30")
    board.get_by_role("button", name="Save").click()
    expect(board.locator(".result")).to_have_text("Saved")
    saved = api(stack, "GET", "/v1/boards/support").json()
    assert saved["columns"][-1] == {"id": "review", "name": "Review", "category": "in_progress",
                                    "wip_limit": None, "time_limit_minutes": 30}
    assert "ann" in saved["members"]
    # a column that holds cards cannot be removed: the refusal is shown, nothing changes
    board.locator(".col-row").first.get_by_role("button", name="Remove").click()
    board.get_by_role("button", name="Save").click()
    expect(board.locator(".result")).to_contain_text("still in a column")
    assert api(stack, "GET", "/v1/boards/support").json()["columns"][0]["id"] == "queue"
    page.context.close()


def test_agent_files_a_phone_request_with_a_conditional_field_in_russian(
        stack, browser, agent_token):
    page = signed_in(browser, stack, agent_token, lang="ru-RU")
    expect(page.get_by_role("link", name="Мои карточки")).to_be_visible()
    page.get_by_role("link", name="Новое обращение").click()
    page.wait_for_selector("body[data-ready='1']")
    page.get_by_label("Услуга").select_option("problem")
    page.get_by_label("E-mail клиента").fill("boris@acme.example")
    page.get_by_label("Имя клиента").fill("Борис")
    page.get_by_label("Тема", exact=True).fill("Не работает почта")
    page.get_by_label("Текст", exact=True).fill("Звонил по телефону.")
    expect(page.get_by_label("Какая система? *", exact=True)).to_have_count(0)
    page.get_by_label("Система *", exact=True).select_option("other")
    page.get_by_label("Какая система? *", exact=True).fill("Jira")
    page.get_by_role("button", name="Создать").click()
    page.wait_for_url("**/cards/SD-*")
    number = page.url.rsplit("/", 1)[1]
    card = api(stack, "GET", f"/v1/cards/{number}").json()
    assert card["fields"] == {"system": "other", "system_other": "Jira"}
    assert card["requester"]["email"] == "boris@acme.example"
    expect(page.locator("h1")).to_contain_text("Не работает почта")
    # "My cards": what I am responsible for
    assert api(stack, "POST", f"/v1/cards/{number}/assign",
               json={"assignee_id": "ann"}).is_success
    page.get_by_role("link", name="Мои карточки").click()
    expect(page.locator("table.list")).to_contain_text(number)
    page.goto(f"{stack['boards'].url}/board")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator(".col-head").first).to_contain_text("лимит 3 мин")
    # counts agree in number: 1 карточка, 2 карточки, 5 карточек
    for text in page.locator(".lane-head .count").all_inner_texts():
        n = int(text.split()[0])
        word = text.split()[1]
        expected = ("карточка" if n % 10 == 1 and n % 100 != 11 else
                    "карточки" if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14) else
                    "карточек")
        assert word == expected, text
    shot(page, "board-ru")
    page.context.close()


def test_live_feed_only_carries_boards_the_agent_is_on(stack, agent_token):
    """An agent's SSE stream never mentions a card of a board they are not a member of."""
    secret_board = {"name": "Secret", "columns": [{"id": "in", "name": "In",
                                                   "category": "queued"}],
                    "lanes": [{"id": "all", "name": "All"}]}
    assert api(stack, "PUT", "/v1/boards/secret", json=secret_board).is_success
    svc = {"id": "secret-svc", "name": {"en": "Secret"},
           "target": {"board_id": "secret", "column_id": "in", "lane_id": "all"}}
    assert api(stack, "PUT", "/v1/services/secret-svc", json=svc).is_success
    lines: list[str] = []
    with httpx.Client(base_url=stack["boards"].url, timeout=30) as c:
        assert c.post("/v1/session", json={"token": agent_token}).status_code == 200

        def read() -> None:
            with contextlib.suppress(httpx.HTTPError), c.stream("GET", "/v1/live") as r:
                for line in r.iter_lines():
                    lines.append(line)
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        wait_until(lambda: any(line.startswith("event: hello") for line in lines))
        hidden = new_card(stack, "Board the agent is not on", service_id="secret-svc",
                          fields={})
        seen = new_card(stack, "Board the agent is on")
        wait_until(lambda: any(seen["id"] in line for line in lines))
        assert not any(hidden["id"] in line for line in lines)
        # nor can the page or the API show it
        assert c.get(f"/v1/cards/{hidden['id']}").status_code == 404
        assert c.get(f"/cards/{hidden['number']}").status_code == 404


def test_pages_escape_content_refuse_login_csrf_and_foreign_redirects(
        stack, browser, agent_token):
    base = stack["boards"].url
    # the login form needs its double-submit cookie: a cross-site POST gets no session
    with httpx.Client(base_url=base, timeout=10) as c:
        r = c.post("/login", data={"token": agent_token, "csrf": "x", "next": "/board"})
        assert r.status_code == 303 and "failed=1" in r.headers["location"]
        assert "desk_agent_session" not in c.cookies
        # after sign-in, `next` may only be a path on this site
        page = c.get("/login?next=//evil.example/x").text
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        r = c.post("/login", data={"token": agent_token, "csrf": token,
                                   "next": "//evil.example/x"})
        assert r.status_code == 303 and r.headers["location"] == "/board"
        assert "desk_agent_session" in c.cookies
        assert "script-src 'self'" in c.get("/board/support").headers[
            "content-security-policy"]
    # a hostile title is shown as text on the board and on the card, never run
    evil = new_card(stack, '<img src=x onerror="window.__pwned=1">Evil</b>')
    page = signed_in(browser, stack, agent_token)
    expect(tile(page, evil["number"]).locator(".title")).to_contain_text("<img src=x")
    page.goto(f"{base}/cards/{evil['number']}")
    expect(page.locator("h1")).to_contain_text("<img src=x")
    assert page.evaluate("window.__pwned") is None
    page.context.close()


def test_customer_reply_marker_arrives_live_and_canned_answer_clears_it(
        stack, browser, agent_token):
    card = new_card(stack, "Scanner shows error E42")
    r = api(stack, "POST", "/v1/canned-responses", json={
        "title": "Try again", "text": "Hello {customer_name}, {number} is fixed; "
                                      "please try again. {agent_name}"})
    assert r.status_code == 201, r.text
    page = signed_in(browser, stack, agent_token)
    expect(tile(page, card["number"]).locator(".badge.unread")).to_have_count(0)

    # the customer writes again (a real request.reply_received on the bus)
    publish(stack, ReplyReceived(
        reply_id=str(uuid.uuid4()), card_id=card["id"], channel="email",
        author={"email": card["requester"]["email"], "name": "Carla Customer"},
        text="Still broken, see the display.", received_at=datetime.now(UTC)))
    expect(tile(page, card["number"]).locator(".badge.unread")).to_have_text(
        "New customer reply")

    page.goto(f"{stack['boards'].url}/cards/{card['number']}")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator(".comment.public").last).to_contain_text("Still broken")
    page.get_by_label("Canned response").select_option(label="Try again")
    expect(page.locator("#canned-preview")).to_have_text(
        f"Hello Carla Customer, {card['number']} is fixed; please try again. Ann Agent")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".comment.public").last).to_contain_text(
        f"{card['number']} is fixed")
    page.get_by_role("button", name="Mark as read").click()
    expect(page.get_by_role("button", name="Mark as read")).to_have_count(0)
    page.wait_for_selector("body[data-ready='1']")  # the page reloaded after marking
    assert api(stack, "GET", f"/v1/cards/{card['id']}").json()["unread_customer_reply"] is False

    # checklist and a child card, from the card page
    page.get_by_placeholder("Add item").fill("Replace the scanner's cable")
    page.locator("#checklist-add button").click()
    page.get_by_label("Replace the scanner's cable").check()
    wait_until(lambda: api(stack, "GET", f"/v1/cards/{card['id']}").json()["checklist"]
               == [{"text": "Replace the scanner's cable", "done": True}])
    # title, tags and due date, edited on the card page
    page.get_by_label("Title").fill("Scanner shows error E42 after the update")
    page.get_by_label("Tags").fill("hardware, scanner, hardware")
    page.get_by_label("Due date").fill("2026-12-01")
    page.locator("#card-details button").click()
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("h1")).to_contain_text("after the update")
    saved = api(stack, "GET", f"/v1/cards/{card['id']}").json()
    assert (saved["title"], saved["tags"], saved["due_date"]) == (
        "Scanner shows error E42 after the update", ["hardware", "scanner"], "2026-12-01")
    child = new_card(stack, "Order a new scanner cable")
    page.get_by_label("Add child card").fill(child["number"])
    page.locator("#link-add button").click()
    expect(page.locator("section[aria-labelledby='h-links']")).to_contain_text(child["number"])
    assert api(stack, "GET", f"/v1/cards/{child['id']}").json()["parent_id"] == card["id"]
    page.context.close()


def test_a_restarting_replica_closes_streams_and_the_board_reconnects(
        stack, browser, agent_token):
    page = signed_in(browser, stack, agent_token)
    expect(page.locator("#live-state.on")).to_be_visible()
    page.evaluate("window.__marker = 1")
    boards = stack["boards"]
    boards.stop()  # SIGTERM with an open event stream: it must end, not wait to be killed
    assert boards.proc.returncode != -9, "boards had to be killed: the SSE stream held it"
    expect(page.locator("#live-state.on")).to_have_count(0)
    boards.start()
    expect(page.locator("#live-state.on")).to_be_visible(timeout=30_000)
    card = new_card(stack, "Filed after the restart")
    expect(cell(page, "queue").locator(f"a.num:text-is('{card['number']}')")).to_be_visible()
    assert page.evaluate("window.__marker") == 1
    page.context.close()

