"""The admin pages, walked through as a new admin would, on the real services: SLA
calendars, holidays and a deadline preview (a calendar change re-prices an open clock),
an alert route (an alert arrives at a fake Slack), customer mail templates, canned
responses, portal access, and the audit log of who changed what; only admins get in."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import SCREENSHOTS, chromium
from tests.support.fake_slack import FakeSlack
from tests.support.fake_telegram import FakeTelegram
from tests.support.imap import DovecotServer, dovecot_available
from tests.support.mail import MailSink
from tests.portal.helpers import PORTAL_ENV, card_by_title, sign_in, submit, wait_in_portal
from tests.support.stack import Stack, auth, card_for, cleanup, mta_auth, sla_auth, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TG_TOKEN = "123456789:AAtest-token-of-the-admin-pages-0001"
TG_CHAT = 5151


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
def stack(mongo_url, amqp_url, tmp_path_factory, slack, mail, tg):
    s = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("admin"), smtp_port=mail.port)
    # the admin pages reach each owner's admin API with that owner's admin token
    s.extra["boards"] = {"BOARDS_SLA_ADMIN_TOKEN": s.ADMIN_TOKEN,
                         "BOARDS_NOTIFY_URL": s.url("notify"),
                         "BOARDS_NOTIFY_ADMIN_TOKEN": s.ADMIN_TOKEN,
                         "BOARDS_PORTAL_ADMIN_URL": s.url("portal"),
                         "BOARDS_PORTAL_ADMIN_TOKEN": s.ADMIN_TOKEN,
                         "BOARDS_INTAKE_ADMIN_TOKEN": s.ADMIN_TOKEN}
    s.extra["sla"] = {"SLA_ADMIN_TOKEN": s.ADMIN_TOKEN}
    # no bot until an admin sets one on the channels page; Telegram is the fake
    s.extra["intake"] = {"INTAKE_TELEGRAM__API_BASE": tg.base_url,
                         "INTAKE_TELEGRAM__POLL_TIMEOUT_SECONDS": "1"}
    s.extra["portal"] = dict(PORTAL_ENV)  # plain-http cookies, test rate limits
    s.start()
    yield s
    s.stop()
    cleanup(mongo_url, amqp_url, s.namespace)


@pytest.fixture(scope="module")
def browser(stack):
    with chromium() as b:
        yield b


def api(stack: Stack, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, f"{stack['boards'].url}{path}", headers=auth(stack),
                         timeout=15, **kw)


@pytest.fixture(scope="module")
def admin_token(stack) -> str:
    r = api(stack, "POST", "/v1/agents", json={"id": "ada", "name": "Ada Admin",
                                              "role": "admin", "boards": ["support"]})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def signed_in(browser: Browser, stack: Stack, token: str, path: str,
              lang: str = "en-US") -> Page:
    context = browser.new_context(locale=lang, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())
    page.goto(f"{stack['boards'].url}/login?next={path}")
    page.locator("input[name=token]").fill(token)
    page.locator("form button[type=submit]").click()
    expect(page).to_have_url(f"{stack['boards'].url}{path}")
    page.wait_for_selector("body[data-ready='1']")
    return page


def submit_request(stack: Stack, service: str, fields: dict | None = None) -> dict:
    body = {"service": service, "subject": "VPN drops every hour", "text": "Since Monday.",
            "requester": {"email": f"c.{uuid.uuid4().hex[:6]}@acme.example", "name": "C"},
            "fields": fields or {}}

    def post():
        r = httpx.post(f"{stack['intake'].url}/v1/requests", json=body, timeout=10)
        return r if r.status_code != 404 else None  # intake may still learn the service
    r = wait_until(post, timeout=20)
    assert r.status_code == 202, r.text
    return card_for(stack, r.json()["request_id"])


def sla_deadline(stack: Stack, card_id: str, target: str = "first_response") -> datetime:
    def read():
        r = httpx.get(f"{stack['sla'].url}/v1/cards/{card_id}/sla", headers=sla_auth(stack))
        return r.status_code == 200 and r.json()
    record = wait_until(read)
    found = next(t for t in record["targets"] if t["target"] == target)
    return datetime.fromisoformat(found["deadline"].replace("Z", "+00:00"))


# --- who gets in --------------------------------------------------------------------------

def test_only_admins_reach_the_admin_pages_and_their_api(stack, admin_token):
    r = api(stack, "POST", "/v1/agents", json={"id": "otto", "name": "Otto Agent",
                                              "boards": ["support"]})
    assert r.status_code == 201, r.text
    base = stack["boards"].url
    policy = {"calendar": "24x7", "targets": {"first_response": 5}}
    with httpx.Client(base_url=base, timeout=15) as agent:
        csrf = agent.post("/v1/session", json={"token": r.json()["token"]}).json()["csrf_token"]
        for path in ("/admin/sla", "/admin/notifications", "/admin/access", "/admin/audit"):
            assert agent.get(path).status_code == 403, path
        refused = agent.put("/v1/admin/sla/policies/sneaky", json=policy,
                            headers={"X-CSRF-Token": csrf})
        assert refused.status_code == 403
    with httpx.Client(base_url=base, timeout=15) as admin:
        admin.post("/v1/session", json={"token": admin_token})
        # a cookie alone (a forged cross-site form) is not enough to change anything
        assert admin.put("/v1/admin/sla/policies/sneaky", json=policy).status_code == 403
        assert admin.get("/admin/sla").status_code == 200
    with httpx.Client(base_url=base, timeout=15) as nobody:
        assert nobody.get("/v1/admin/audit").status_code == 401
        assert nobody.get("/admin/sla", follow_redirects=False).headers["location"].startswith(
            "/login")
    names = [p["name"] for p in httpx.get(f"{stack['sla'].url}/v1/policies",
                                          headers=sla_auth(stack)).json()["items"]]
    assert "sneaky" not in names
    # a name that would change the owner's path is refused before it is sent on
    with httpx.Client(base_url=base, timeout=15) as admin:
        csrf = admin.post("/v1/session", json={"token": admin_token}).json()["csrf_token"]
        bad = admin.put("/v1/admin/sla/policies/..%2Fcalendars%2Fx", json=policy,
                        headers={"X-CSRF-Token": csrf})
        assert bad.status_code in (404, 422)


# --- SLA ------------------------------------------------------------------------------------

def test_a_calendar_with_holidays_a_deadline_preview_and_open_clocks_repriced(
        browser, stack, admin_token):
    page = signed_in(browser, stack, admin_token, "/admin/sla")
    form = page.locator("#calendar-form")
    form.get_by_label("Name").fill("office")
    form.get_by_label("Time zone").fill("Mars/Olympus")
    for day in ("Mon", "Tue", "Wed", "Thu", "Fri"):
        form.get_by_label(day, exact=True).fill("09:00-18:00")
    form.get_by_role("button", name="Save").click()
    # refused by sla, shown beside the field it is about
    expect(form.get_by_label("Time zone")).to_have_attribute("aria-invalid", "true")
    expect(form.locator(".field-error")).to_contain_text("unknown time zone")
    form.get_by_label("Time zone").fill("UTC")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#admin-status")).to_have_text("Saved.")
    expect(page.locator("table.list").nth(1)).to_contain_text("office")

    form = page.locator("#policy-form")
    form.get_by_label("Name").fill("office-hours")
    form.get_by_label("Calendar").select_option("office")
    form.locator("input[name='targets.first_response']").fill("60")
    form.locator("input[name='targets.resolution']").fill("600")
    form.locator("input[name='priority_overrides.critical.first_response']").fill("15")
    # the resolution clock also stops while a card is in_progress here (not by default)
    form.get_by_label("Resolution: pauses in in_progress").check()
    form.get_by_label("Warn at this share of a target (empty: sla's setting)").fill("1.5")
    form.get_by_role("button", name="Save").click()
    expect(form.locator(".field-error")).to_contain_text("less than 1")
    form.get_by_label("Warn at this share of a target (empty: sla's setting)").fill("0.7")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#admin-status")).to_have_text("Saved.")
    policies = httpx.get(f"{stack['sla'].url}/v1/policies", headers=sla_auth(stack)).json()
    saved = next(p for p in policies["items"] if p["name"] == "office-hours")
    assert set(saved["pause_on"]["resolution"]) == {"in_progress", "waiting_for_customer",
                                                    "paused"}
    assert saved["pause_on"]["next_response"] == ["paused"] and saved["warn_share"] == 0.7

    # Friday 17:30 UTC + 60 working minutes = Monday 09:30; critical: Friday 17:45
    preview = page.locator("#preview-form")
    preview.get_by_label("Policy").select_option("office-hours")
    preview.get_by_label("Start (UTC)").fill("2030-01-04T17:30")
    preview.get_by_role("button", name="Show").click()
    row = page.locator("#preview-result tr[data-target=first_response]")
    expect(row).to_contain_text("2030-01-07 09:30")
    preview.get_by_label("Priority").select_option("critical")
    preview.get_by_role("button", name="Show").click()
    expect(row).to_contain_text("2030-01-04 17:45")

    # a service on that policy: a request's clock follows the office calendar
    service = {"id": "vpn", "name": {"en": "VPN", "ru": "VPN"},
               "target": {"board_id": "support", "column_id": "queue", "lane_id": "l1"},
               "fields": [], "sla_policy": "office-hours"}
    assert api(stack, "PUT", "/v1/services/vpn", json=service).status_code == 200, service
    card = submit_request(stack, "vpn")
    before = sla_deadline(stack, card["id"])
    assert before < datetime.now(UTC) + timedelta(days=5)

    # the next three weeks become holidays, imported as a list on the calendar's page
    page.goto(f"{stack['boards'].url}/admin/sla?calendar=office")
    today = date.today()
    days = "\n".join(f"{today + timedelta(days=n)} closed" for n in range(21))
    holidays = page.locator("#holidays-form")
    holidays.get_by_label("Holidays", exact=True).fill("2030-02-30 not a day")
    holidays.get_by_role("button", name="Import").click()
    expect(holidays.locator(".field-error")).to_contain_text("line 1")
    holidays.get_by_label("Holidays", exact=True).fill(days)
    holidays.get_by_role("button", name="Import").click()
    expect(page.locator("#admin-status")).to_have_text("Imported 21 dates.")
    page.screenshot(path=SCREENSHOTS / "admin-sla.png", full_page=True)

    # the open request's deadline is re-priced past the holidays, without a restart
    after = wait_until(lambda: (d := sla_deadline(stack, card["id"])) != before and d,
                       timeout=30)
    assert after.date() >= today + timedelta(days=21)
    page.context.close()


# --- the catalog: a service with a conditional form, on the portal, on its board and SLA ---

def test_a_new_service_with_a_conditional_form_reaches_the_portal_board_and_sla(
        browser, stack, admin_token, mail):
    page = signed_in(browser, stack, admin_token, "/admin")
    form = page.locator("#service-form")
    form.get_by_label("Id", exact=True).fill("laptop")
    form.get_by_label("Name (English)").fill("New laptop")
    form.get_by_label("Name (Russian)").fill("Новый ноутбук")
    form.get_by_label("Target board").select_option("support")
    form.get_by_label("Target column").select_option("queue")
    form.get_by_label("Target lane").select_option("l2")
    form.get_by_label("SLA policy").fill("office-hours")  # made on the SLA page above
    page.get_by_role("button", name="Add field").click()
    row = page.locator(".field-row").nth(0)
    row.get_by_label("Key", exact=True).fill("model")
    row.get_by_label("Label (en)").fill("Model")
    row.locator("[name=f_type]").select_option("select")
    row.get_by_label("Options (value=label, comma-separated)").fill("air=Air, other=Other")
    row.get_by_label("Required").check()
    page.get_by_role("button", name="Add field").click()
    row = page.locator(".field-row").nth(1)
    row.get_by_label("Key", exact=True).fill("which")
    row.get_by_label("Label (en)").fill("Which model?")
    row.get_by_label("Required").check()
    row.get_by_label("Shown when field").fill("model")
    row.get_by_label("has one of the values (comma-separated)").fill("other")
    # the live preview of the portal form follows the editor and applies the condition
    preview = page.get_by_role("region", name="Portal form preview")
    expect(preview.get_by_role("heading", name="New laptop")).to_be_visible()
    expect(preview.get_by_label("Which model?")).to_have_count(0)
    preview.get_by_label("Model").select_option("other")
    expect(preview.get_by_label("Which model?")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "admin-catalog.png", full_page=True)
    page.get_by_role("button", name="Save").first.click()
    expect(page.locator("#service-result")).to_contain_text("laptop r1")
    page.context.close()

    # the portal lists it (it heard catalog.service_changed) and enforces its form
    customer = sign_in(stack, mail, f"lea.{uuid.uuid4().hex[:6]}@acme.example")
    wait_until(lambda: "New laptop" in customer.get("/").text, timeout=20)
    refused = submit(customer, "laptop", "Screen cracked", {"model": "other"})
    assert refused.status_code in (400, 422) and "Which model?" in refused.text
    assert submit(customer, "laptop", "Screen cracked",
                  {"model": "other", "which": "X13"}).status_code == 303

    # on the service's board, column and lane, its clock on the service's policy
    card = card_by_title(stack, "Screen cracked")
    assert (card["board_id"], card["column_id"], card["lane_id"]) == ("support", "queue", "l2")
    assert card["fields"] == {"model": "other", "which": "X13"}
    record = wait_until(lambda: (r := httpx.get(
        f"{stack['sla'].url}/v1/cards/{card['id']}/sla", headers=sla_auth(stack))
    ).status_code == 200 and r.json())
    assert record["policy"] == "office-hours"


def test_a_board_s_limits_changed_on_the_admin_page_keep_its_card_types_and_priorities(
        browser, stack, admin_token):
    board = {"name": "Work", "columns": [{"id": "todo", "name": "To do", "category": "queued"},
                                         {"id": "done", "name": "Done", "category": "done"}],
             "lanes": [{"id": "main", "name": "Main"}], "members": ["ada"],
             "card_types": [{"id": "feature", "name": {"en": "Feature"}}],
             "priorities": [{"id": "soon", "names": {"en": "Soon"}, "level": "high",
                             "color": "#c62828"}]}
    r = api(stack, "PUT", "/v1/boards/work", json=board)
    assert r.status_code == 200, r.text
    page = signed_in(browser, stack, admin_token, "/admin")
    form = page.locator("form.board-form[data-board=work]")
    form.get_by_label("Board name").fill("Work (dev)")
    wip = form.locator(".col-rows input[name=c_wip]").nth(1)
    wip.fill("0")
    form.get_by_role("button", name="Save").click()
    # refused beside the column's field it is about (the second column's limit)
    expect(wip).to_have_attribute("aria-invalid", "true")
    expect(form.locator(".result")).to_have_class(re.compile(r"\berror\b"))
    wip.fill("")
    form.locator(".col-rows input[name=c_wip]").first.fill("5")
    form.get_by_role("button", name="Save").click()
    expect(form.locator(".result")).to_have_class(re.compile(r"\bok\b"))
    saved = api(stack, "GET", "/v1/boards/work").json()
    assert saved["name"] == "Work (dev)" and saved["columns"][0]["wip_limit"] == 5
    assert saved["columns"][1]["wip_limit"] is None
    # a new agent with an id the API refuses: marked beside the id, nobody created
    agent_form = page.locator("#agent-form")
    agent_form.get_by_label("Id", exact=True).fill("no spaces allowed")
    agent_form.locator("input[name=name]").fill("Nobody")
    agent_form.get_by_role("button", name="Create").click()
    expect(agent_form.get_by_label("Id", exact=True)).to_have_attribute("aria-invalid", "true")
    assert "Nobody" not in [a["name"] for a in api(stack, "GET", "/v1/agents").json()["items"]]
    assert [t["id"] for t in saved["card_types"]] == ["feature"]
    assert [p["id"] for p in saved["priorities"]] == ["soon"]
    page.context.close()


def test_card_types_and_priorities_of_a_board_set_on_their_page(browser, stack, admin_token):
    page = signed_in(browser, stack, admin_token, "/admin/boards?board=work")
    form = page.locator("#work-form")
    form.get_by_label("Id 2", exact=True).fill("bug")
    form.get_by_label("Name (English) 2", exact=True).fill("Bug")
    form.get_by_label("Name (Russian) 2", exact=True).fill("Ошибка")
    form.get_by_label("Priority id 2", exact=True).fill("Right Now!")
    form.get_by_label("Priority name (English) 2", exact=True).fill("Right now")
    form.get_by_label("SLA level 2", exact=True).select_option("critical")
    form.get_by_role("button", name="Save").click()
    # refused by the board's rules, marked on the row it is about
    expect(form.get_by_label("Priority id 2", exact=True)).to_have_attribute(
        "aria-invalid", "true")
    form.get_by_label("Priority id 2", exact=True).fill("now")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#admin-status")).to_have_text("Saved.")
    page.screenshot(path=SCREENSHOTS / "admin-boards.png", full_page=True)
    saved = api(stack, "GET", "/v1/boards/work").json()
    assert [t["id"] for t in saved["card_types"]] == ["feature", "bug"]
    assert saved["card_types"][1]["name"] == {"en": "Bug", "ru": "Ошибка"}
    assert [(p["id"], p["level"]) for p in saved["priorities"]] == [("soon", "high"),
                                                                     ("now", "critical")]
    assert saved["name"] == "Work (dev)" and saved["columns"][0]["wip_limit"] == 5
    page.context.close()


# --- people: API tokens -------------------------------------------------------------------

def test_an_api_token_created_shown_once_used_and_revoked_with_its_sessions(
        browser, stack, admin_token):
    r = api(stack, "POST", "/v1/agents", json={"id": "tina", "name": "Tina Tokens",
                                              "boards": ["support"]})
    first = r.json()["token"]
    page = signed_in(browser, stack, admin_token, "/admin/people")
    form = page.get_by_role("form", name="New token: Tina Tokens")
    form.get_by_role("button", name="New token").click()
    expect(form.get_by_label("What it is for")).to_have_attribute("aria-invalid", "true")
    form.get_by_label("What it is for").fill("CI script")
    form.get_by_role("button", name="New token").click()
    expect(page.locator("#new-token")).to_be_visible()
    token = page.locator("#new-token-value").text_content()
    assert token and token != first

    boards = stack["boards"].url
    assert httpx.get(f"{boards}/v1/boards", timeout=10,
                     headers={"Authorization": f"Bearer {token}"}).status_code == 200
    browser_like = httpx.Client(base_url=boards, timeout=10)
    assert browser_like.post("/v1/session", json={"token": token}).status_code == 200
    page.reload()
    row = page.locator("section.person", has_text="Tina Tokens").locator(
        "tr", has_text="CI script")
    expect(row.locator(".last-used")).not_to_have_text("never")
    page.screenshot(path=SCREENSHOTS / "admin-people.png", full_page=True)

    row.get_by_role("button", name="Revoke CI script").click()
    expect(page.locator("#admin-status")).to_have_text("Deleted.")
    expect(page.locator("section.person", has_text="Tina Tokens").locator(
        "tr", has_text="CI script")).to_have_count(0)
    # the token and the session it opened stop at once; the agent's other token works
    assert httpx.get(f"{boards}/v1/boards", timeout=10,
                     headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert browser_like.get("/v1/session").status_code == 401
    assert httpx.get(f"{boards}/v1/boards", timeout=10,
                     headers={"Authorization": f"Bearer {first}"}).status_code == 200
    browser_like.close()
    page.context.close()


def test_a_role_and_boards_changed_on_the_people_page(browser, stack, admin_token):
    page = signed_in(browser, stack, admin_token, "/admin/people")
    form = page.get_by_role("form", name="Role: Tina Tokens")
    form.get_by_label("Role").select_option("lead")
    form.get_by_label("Boards (comma-separated ids)").fill("support, no-such-board")
    form.get_by_role("button", name="Save").click()
    expect(form.get_by_label("Boards (comma-separated ids)")).to_have_attribute(
        "aria-invalid", "true")
    form.get_by_label("Boards (comma-separated ids)").fill("support")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#admin-status")).to_have_text("Saved.")
    tina = next(a for a in api(stack, "GET", "/v1/agents").json()["items"] if a["id"] == "tina")
    assert (tina["role"], tina["boards"]) == ("lead", ["support"])
    # an admin cannot take their own admin role away by a slip of the menu
    own = page.get_by_role("form", name="Role: Ada Admin")
    own.get_by_label("Role").select_option("viewer")
    own.get_by_role("button", name="Save").click()
    expect(own.get_by_label("Role")).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=SCREENSHOTS / "admin-people-roles.png", full_page=True)
    page.context.close()


# --- notifications --------------------------------------------------------------------------

def test_a_slack_route_added_on_the_page_brings_an_alert(browser, stack, admin_token, slack):
    page = signed_in(browser, stack, admin_token, "/admin/notifications")
    form = page.locator("#route-form")
    form.get_by_label("Route").fill("l1-slack")
    form.get_by_label("Board").select_option("support")
    form.get_by_label("new request").check()
    form.locator("select[name=channel]").select_option("slack_webhook")
    form.get_by_role("button", name="Save").click()
    expect(form.locator(".form-error")).to_contain_text("needs webhook_url")
    hook = slack.webhook_url("desk")
    form.get_by_label("Slack webhook URL").fill(hook)
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#admin-status")).to_have_text("Saved.")
    expect(page.locator("table.list").first).to_contain_text("l1-slack")

    card = submit_request(stack, "problem", {"system": "mail"})
    posts = wait_until(lambda: slack.webhook_posts(hook), timeout=30)
    assert card["number"] in str(posts[0])
    page.context.close()


def test_a_mail_template_previewed_refused_when_broken_test_sent_and_saved(
        browser, stack, admin_token, mail):
    page = signed_in(browser, stack, admin_token,
                     "/admin/notifications?template=acknowledgment/en")
    form = page.locator("#template-form")
    form.get_by_label("Subject").fill("We have it: {{ card.number }}")
    form.get_by_role("button", name="Preview").click()
    expect(form.locator(".form-error")).to_have_text("")
    expect(page.locator("#template-shown .shown-subject")).to_contain_text("We have it: ")
    form.get_by_label("Test address").fill("lead@acme.example")
    form.get_by_role("button", name="Send a test").click()
    expect(page.locator("#admin-status")).to_have_text("Sent to lead@acme.example.")
    [sent] = mail.wait_for("lead@acme.example")
    assert sent["Subject"] == "We have it: SD-42"  # the sample request's number
    form.get_by_label("Subject").fill("Broken {{ card.number ")
    form.get_by_role("button", name="Save").click()
    expect(form.get_by_label("Subject")).to_have_attribute("aria-invalid", "true")
    form.get_by_label("Subject").fill("We have it: {{ card.number }}")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#admin-status")).to_have_text("Saved.")
    r = httpx.get(f"{stack['notify'].url}/v1/templates/acknowledgment/en", headers=auth(stack))
    assert r.json()["subject"] == "We have it: {{ card.number }}" and r.json()["custom"]
    page.screenshot(path=SCREENSHOTS / "admin-notifications.png", full_page=True)
    page.context.close()


def test_canned_responses_created_edited_and_deleted(browser, stack, admin_token):
    page = signed_in(browser, stack, admin_token, "/admin/notifications")
    new = page.locator("#canned-new")
    new.get_by_label("Title").fill("Restart first")
    new.get_by_role("button", name="Save").click()
    expect(new.locator(".field-error")).to_be_visible()  # the text is required
    new.get_by_label("Text", exact=True).fill("Please restart {customer_name}'s laptop.")
    new.get_by_role("button", name="Save").click()
    expect(page.locator("#admin-status")).to_have_text("Saved.")
    form = page.get_by_role("form", name="Restart first")
    form.get_by_label("Title").fill("Restart it first")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#admin-status")).to_have_text("Saved.")

    def titles():
        return [c["title"] for c in api(stack, "GET", "/v1/canned-responses").json()["items"]]
    assert "Restart it first" in titles() and "Restart first" not in titles()
    page.get_by_role("form", name="Restart it first").get_by_role(
        "button", name="Delete").click()
    expect(page.locator("#admin-status")).to_have_text("Deleted.")
    assert "Restart it first" not in titles()

    # an admin's text is shown as text on the admin pages and in the audit log, never run
    markup = '<img src=x onerror="window.__owned=1">'
    assert api(stack, "POST", "/v1/canned-responses",
               json={"title": markup, "text": "x"}).status_code == 201
    page.reload()
    expect(page.get_by_role("form", name=markup)).to_be_visible()
    new = page.locator("#canned-new")
    new.get_by_label("Title").fill(markup + " 2")
    new.get_by_label("Text", exact=True).fill(markup)
    new.get_by_role("button", name="Save").click()
    expect(page.locator("#admin-status")).to_have_text("Saved.")
    page.goto(f"{stack['boards'].url}/admin/audit?area=canned")
    expect(page.locator("table.audit")).to_contain_text(markup)
    assert page.evaluate("window.__owned") is None
    page.context.close()


# --- portal access --------------------------------------------------------------------------

def test_portal_groups_and_allowlist_take_effect_without_a_restart(browser, stack, admin_token):
    page = signed_in(browser, stack, admin_token, "/admin/access", lang="ru-RU")
    new = page.locator("#group-new")
    new.get_by_label("Имя").fill("VIP!")
    new.get_by_role("button", name="Сохранить").click()
    expect(new.get_by_label("Имя")).to_have_attribute("aria-invalid", "true")
    new.get_by_label("Имя").fill("vip")
    new.get_by_label("Домены").fill("vip.example")
    new.get_by_role("button", name="Сохранить").click()
    expect(page.locator("#admin-status")).to_have_text("Сохранено.")
    access = httpx.get(f"{stack['portal'].url}/v1/access", headers=auth(stack)).json()
    assert access["groups"]["vip"]["domains"] == ["vip.example"]

    allow = page.locator("#allow-form")
    allow.get_by_label("Домены").fill("acme.example")
    allow.get_by_role("button", name="Сохранить").click()
    expect(page.locator("#admin-status")).to_have_text("Сохранено.")
    # stored by the portal (its sign-in reads it within a second, no restart)
    after = httpx.get(f"{stack['portal'].url}/v1/access", headers=auth(stack)).json()
    assert after["allow"]["domains"] == ["acme.example"]
    assert after["revision"] > access["revision"]
    page.screenshot(path=SCREENSHOTS / "admin-access-ru.png", full_page=True)
    allow.get_by_label("Домены").fill("")
    allow.get_by_label("Адреса").fill("")  # both empty: everybody may sign in
    allow.get_by_role("button", name="Сохранить").click()
    expect(page.locator("#admin-status")).to_have_text("Сохранено.")
    page.context.close()


def test_icons_order_and_group_visibility_set_in_the_editor_show_on_the_portal(
        browser, stack, admin_token, mail):
    for sid, name in (("printer", "Printer"), ("monitor", "Monitor")):
        service = {"id": sid, "name": {"en": name}, "group": {"en": "Hardware"},
                   "target": {"board_id": "support", "column_id": "queue", "lane_id": "l1"},
                   "fields": []}
        assert api(stack, "PUT", f"/v1/services/{sid}", json=service).status_code == 200
    acme = sign_in(stack, mail, f"ann.{uuid.uuid4().hex[:6]}@acme.example")
    home = wait_until(lambda: (t := acme.get("/").text) and "Printer" in t and "Monitor" in t
                      and t, timeout=20)
    assert home.index("Monitor") < home.index("Printer")  # same order: by name

    page = signed_in(browser, stack, admin_token, "/admin?service=printer")
    form = page.locator("#service-form")
    form.get_by_label("Icon", exact=True).fill("<b>")
    page.get_by_role("button", name="Save").first.click()
    expect(page.locator("#service-result")).to_contain_text("icon")  # refused, nothing kept
    expect(form.get_by_label("Icon", exact=True)).to_have_attribute("aria-invalid", "true")
    form.get_by_label("Icon", exact=True).fill("🖨")
    form.get_by_label("Order (lower first)").fill("1")
    page.get_by_role("button", name="Save").first.click()
    expect(page.locator("#service-result")).to_contain_text("printer r2")
    page.goto(f"{stack['boards'].url}/admin?service=monitor")
    form.get_by_label("Order (lower first)").fill("5")
    form.get_by_label("Customer groups (empty: any)").fill("vip")  # made on Portal access
    page.get_by_role("button", name="Save").first.click()
    expect(page.locator("#service-result")).to_contain_text("monitor r2")
    form.screenshot(path=SCREENSHOTS / "admin-catalog-order.png")
    page.context.close()

    # without a restart: the icon shows, the monitor only for the group's members, and the
    # admin's order (printer 1, monitor 5) wins over the names'
    wait_until(lambda: "Monitor" not in acme.get("/").text, timeout=20)
    assert "🖨" in acme.get("/").text
    vip = sign_in(stack, mail, f"val.{uuid.uuid4().hex[:6]}@vip.example")
    home = vip.get("/").text
    assert "Monitor" in home and home.index("Printer") < home.index("Monitor")
    assert vip.get("/services/monitor/new").status_code == 200
    assert acme.get("/services/monitor/new").status_code == 404


def test_an_organisation_lets_its_members_see_each_other_s_requests_on_the_portal(
        browser, stack, admin_token, mail):
    tag = uuid.uuid4().hex[:6]
    anna_at, boris_at = f"anna.{tag}@acme.example", f"boris.{tag}@acme.example"
    anna, boris = sign_in(stack, mail, anna_at), sign_in(stack, mail, boris_at)
    assert submit(anna, "problem", "Projector in room 4 is dead",
                  {"system": "mail"}).status_code == 303
    card = card_by_title(stack, "Projector in room 4 is dead")
    wait_in_portal(anna, card["id"])
    assert boris.get(f"/requests/{card['id']}").status_code == 404  # not yet colleagues

    page = signed_in(browser, stack, admin_token, "/admin/access")
    new = page.locator("#org-new")
    new.get_by_label("Id").fill("initech")
    new.get_by_label("Organisation name").fill("Initech")
    new.get_by_label("Domains").fill("not a domain")
    new.get_by_role("button", name="Save").click()
    expect(new.get_by_label("Domains")).to_have_attribute("aria-invalid", "true")
    new.get_by_label("Domains").fill("")
    new.get_by_label("Member addresses").fill(f"{anna_at}\n{boris_at}")
    new.get_by_role("button", name="Save").click()
    expect(page.locator("#admin-status")).to_have_text("Saved.")
    expect(page.get_by_role("form", name="Organisation Initech")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "admin-access.png", full_page=True)

    # intake hears it too (customer.groups_changed): Boris may reply on Anna's e-mail thread
    copy = wait_until(lambda: (r := httpx.get(
        f"{stack['intake'].url}/v1/access/groups", headers=auth(stack)).json())
        and "initech" in (r["organisations"] or {}) and r, timeout=20)
    assert sorted(copy["organisations"]["initech"]["addresses"]) == sorted([anna_at, boris_at])
    # without a restart: Boris sees Anna's request, listed under the organisation's name
    assert wait_in_portal(boris, card["id"], "Projector in room 4 is dead")
    assert "Initech" in boris.get("/").text
    outsider = sign_in(stack, mail, f"eve.{uuid.uuid4().hex[:6]}@acme.example")
    assert outsider.get(f"/requests/{card['id']}").status_code == 404

    page.get_by_role("form", name="Organisation Initech").get_by_role(
        "button", name="Delete").click()
    expect(page.locator("#admin-status")).to_have_text("Deleted.")
    assert boris.get(f"/requests/{card['id']}").status_code == 404
    assert anna.get(f"/requests/{card['id']}").status_code == 200  # her own, always
    page.goto(f"{stack['boards'].url}/admin/audit?area=access")
    expect(page.locator("table.audit tbody tr").filter(
        has_text="organisation initech")).to_have_count(2)
    page.context.close()


# --- channels: an IMAP mailbox -------------------------------------------------------------

@pytest.mark.skipif(not dovecot_available(), reason="dovecot-imapd not installed")
def test_an_imap_mailbox_tested_from_the_page_shows_its_error_then_brings_mail(
        browser, stack, admin_token):
    user = "helpdesk@acme.example"
    with DovecotServer() as imap:
        imap.add_user(user, "right-secret")
        page = signed_in(browser, stack, admin_token, "/admin/channels")
        form = page.locator("#mailbox-form")
        form.get_by_label("Service").select_option("problem")
        form.get_by_label("Server").fill("127.0.0.1")
        form.get_by_label("Port").fill(str(imap.port))
        form.get_by_label("Security").select_option("none")
        form.get_by_label("User name").fill(user)
        form.get_by_label("Password").fill("wrong-secret")
        form.get_by_label("After fetching").select_option("move")
        form.get_by_role("button", name="Save").click()
        expect(form.get_by_label("Move to folder")).to_have_attribute("aria-invalid", "true")
        form.get_by_label("After fetching").select_option("seen")
        form.get_by_role("button", name="Save").click()
        expect(page.locator("#admin-status")).to_have_text("Saved.")

        # the test says what the server said; the row keeps it as the last error
        page.get_by_role("button", name="Test: poll now problem").click()
        expect(page.locator("#admin-status")).to_contain_text("did not answer", timeout=20_000)
        page.reload()
        expect(page.locator("tr[data-mailbox=problem] .error-text")).not_to_be_empty()

        page.goto(f"{stack['boards'].url}/admin/channels?mailbox=problem")
        form.get_by_label("Password").fill("right-secret")
        form.get_by_role("button", name="Save").click()
        expect(page.locator("#admin-status")).to_have_text("Saved.")
        raw = (f"From: Bo <bo@acme.example>\r\nTo: {user}\r\nSubject: Printer on fire\r\n"
               f"Message-ID: <{uuid.uuid4().hex}@acme.example>\r\n\r\nPlease help.\r\n")
        imap.append(user, raw.encode())
        page.get_by_role("button", name="Test: poll now problem").click()
        expect(page.locator("#admin-status")).to_have_text("Polled: 1 fetched.")
        assert card_by_title(stack, "Printer on fire")["board_id"] == "support"
        page.reload()
        expect(page.locator("tr[data-mailbox=problem] .error-text")).to_be_empty()
        page.screenshot(path=SCREENSHOTS / "admin-channels.png", full_page=True)
        page.get_by_role("button", name="Delete problem").click()
        expect(page.locator("#admin-status")).to_have_text("Deleted.")
        # notify's relay (the test's SMTP sink) answers the check
        page.get_by_role("button", name="Check the SMTP settings").click()
        expect(page.locator("#admin-status")).to_contain_text(
            f"The relay 127.0.0.1:{stack.smtp_port} (none) answered.")
        page.context.close()


# --- channels: the Telegram bot and the inbound addresses ----------------------------------

def test_the_telegram_bot_set_on_the_page_tested_and_running_without_a_restart(
        browser, stack, admin_token, tg):
    page = signed_in(browser, stack, admin_token, "/admin/channels")
    form = page.locator("#telegram-form")
    expect(form.locator(".telegram-state")).to_contain_text("Now: off")
    form.get_by_label("Mode").select_option("webhook")
    form.get_by_label("Bot token").fill("not-a-token")
    form.get_by_label("Webhook URL (https)").fill("http://desk.example/v1/telegram/webhook")
    form.get_by_role("button", name="Save").click()
    expect(form.get_by_label("Bot token")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_label("Webhook URL (https)")).to_have_attribute("aria-invalid", "true")
    # a token Telegram does not know: the test says what Telegram said
    form.get_by_label("Bot token").fill("123456789:AAsomebody-elses-token-000000000")
    form.get_by_role("button", name="Test the bot").click()
    expect(page.locator("#admin-status")).to_have_text(
        "Telegram did not accept the bot: 401 Unauthorized")
    form.get_by_label("Bot token").fill(TG_TOKEN)
    form.get_by_role("button", name="Test the bot").click()
    expect(page.locator("#admin-status")).to_have_text(
        "Telegram answered: the bot is @desk_test_bot.")
    # webhook mode: intake tells Telegram where to post, with a secret it made
    hook = "https://desk.example/v1/telegram/webhook"
    form.get_by_label("Webhook URL (https)").fill(hook)
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#admin-status")).to_have_text("Saved.")
    set_hook = wait_until(lambda: tg.webhook, timeout=30)
    assert set_hook["url"] == hook and set_hook["secret_token"]
    # polling instead: intake takes the webhook down and polls
    form.get_by_label("Mode").select_option("polling")
    form.get_by_label("Webhook URL (https)").fill("")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#admin-status")).to_have_text("Saved.")
    # the token is never shown back in full, only enough to recognise it
    expect(page.locator("#token-help")).to_contain_text("123456789:…0001")
    assert TG_TOKEN not in page.content()
    bot = httpx.get(f"{stack['intake'].url}/v1/telegram/bot", headers=auth(stack)).json()
    assert bot["mode"] == "polling" and TG_TOKEN not in str(bot)
    # intake runs the bot now (no restart): a /start is answered with the services
    tg.push_update(tg.message_update(TG_CHAT, "/start"))
    menu = wait_until(lambda: tg.messages_to(TG_CHAT), timeout=30)[0]
    assert "svc:problem" in str(menu.get("reply_markup"))
    # the stored token is what the test uses when none is typed
    form.get_by_role("button", name="Test the bot").click()
    expect(page.locator("#admin-status")).to_have_text(
        "Telegram answered: the bot is @desk_test_bot.")
    page.screenshot(path=SCREENSHOTS / "admin-channels-telegram.png", full_page=True)
    # switched off: the bot stops polling (its token kept for next time)
    form.get_by_label("Mode").select_option("off")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#admin-status")).to_have_text("Saved.")
    expect(page.locator("#token-help")).to_contain_text("123456789:…0001")
    page.goto(f"{stack['boards'].url}/admin/audit?area=channels")
    row = page.locator("table.audit tbody tr").filter(has_text="telegram bot").first
    expect(row).to_contain_text("Ada Admin")
    assert TG_TOKEN not in page.content()
    page.context.close()


def test_an_inbound_address_routes_mail_to_its_service(browser, stack, admin_token):
    page = signed_in(browser, stack, admin_token, "/admin/channels", lang="ru-RU")
    form = page.locator("#address-form")
    form.get_by_label("Адрес").fill("help at acme")
    form.get_by_role("button", name="Сохранить").click()
    expect(form.get_by_label("Адрес")).to_have_attribute("aria-invalid", "true")
    # an address of the desk's own domain that is another service's already is refused
    domain = httpx.get(f"{stack['intake'].url}/v1/inbound-addresses",
                       headers=auth(stack)).json()["inbound_domain"]
    form.get_by_label("Адрес").fill(f"problem@{domain}")
    form.get_by_label("Услуга").select_option("access")
    form.get_by_role("button", name="Сохранить").click()
    expect(form.locator(".field-error")).to_contain_text("service 'problem'")
    form.get_by_label("Адрес").fill("Help@Acme.example")
    form.get_by_role("button", name="Сохранить").click()
    expect(page.locator("#admin-status")).to_have_text("Сохранено.")
    expect(page.locator("tr[data-address='help@acme.example']")).to_contain_text("access")
    page.screenshot(path=SCREENSHOTS / "admin-channels-ru.png", full_page=True)

    # mail the MTA hands over for that address opens a request in that service
    raw = (f"From: Ivo <ivo@acme.example>\r\nTo: help@acme.example\r\n"
           f"Cc: boss@acme.example\r\nSubject: Badge does not open the door\r\n"
           f"Message-ID: <{uuid.uuid4().hex}@acme.example>\r\n\r\nSince today.\r\n")
    r = httpx.post(f"{stack['intake'].url}/v1/inbound/email",
                   params={"recipient": "help@acme.example"}, content=raw.encode(),
                   headers=mta_auth(stack) | {"Content-Type": "message/rfc822"}, timeout=10)
    assert r.status_code == 202, r.text
    card = card_by_title(stack, "Badge does not open the door")
    assert card["service_id"] == "access"
    found = httpx.get(f"{stack['intake'].url}/v1/inbound/messages",
                      params={"status": "request"}, headers=auth(stack)).json()["items"]
    mine = [m for m in found if m.get("title") == "Badge does not open the door"]
    assert mine and mine[0]["service"] == "access"

    page.get_by_role("button", name="Удалить help@acme.example").click()
    expect(page.locator("#admin-status")).to_have_text("Удалено.")
    expect(page.locator("tr[data-address='help@acme.example']")).to_have_count(0)
    gone = httpx.post(f"{stack['intake'].url}/v1/inbound/email",
                      params={"recipient": "help@acme.example"}, content=raw.encode(),
                      headers=mta_auth(stack) | {"Content-Type": "message/rfc822"}, timeout=10)
    assert gone.status_code == 422
    page.context.close()


# --- the audit log --------------------------------------------------------------------------

def test_the_audit_log_shows_who_changed_what_before_and_after(browser, stack, admin_token):
    page = signed_in(browser, stack, admin_token, "/admin/audit")
    rows = page.locator("table.audit tbody tr")
    expect(rows.first).to_be_visible()
    calendar_row = rows.filter(has_text="calendar office").filter(has_text="holidays imported")
    expect(calendar_row).to_contain_text("Ada Admin")
    calendar_row.locator("summary").click()
    expect(calendar_row.locator("pre.after")).to_contain_text(str(date.today()))
    expect(calendar_row.locator("pre.before")).not_to_contain_text(str(date.today()))
    page.goto(f"{stack['boards'].url}/admin/audit?area=access")
    expect(rows.filter(has_text="group vip")).to_contain_text("created")
    page.goto(f"{stack['boards'].url}/admin/audit?area=boards")
    expect(rows.filter(has_text="board work types and priorities")).to_contain_text("Ada Admin")
    expect(rows.filter(has_text="calendar office")).to_have_count(0)
    # the older /admin page's changes too: a service and a board saved there, agents
    expect(rows.filter(has_text="board work").filter(has_text="Ada Admin").first).to_contain_text(
        "updated")
    page.goto(f"{stack['boards'].url}/admin/audit?area=catalog")
    laptop = rows.filter(has_text="service laptop").filter(has_text="created")
    expect(laptop).to_contain_text("Ada Admin")
    laptop.locator("summary").click()
    expect(laptop.locator("pre.after")).to_contain_text("Which model?")
    printer = rows.filter(has_text="service printer").filter(has_text="updated").first
    printer.locator("summary").click()
    expect(printer.locator("pre.after")).to_contain_text("🖨")
    expect(printer.locator("pre.before")).not_to_contain_text("🖨")
    # an agent deactivated on /admin: who did it, and the agent before and after
    page.goto(f"{stack['boards'].url}/admin")
    page.locator("button.deactivate[data-agent=otto]").click()
    expect(page.locator("button.deactivate[data-agent=otto]")).to_have_count(0)
    page.goto(f"{stack['boards'].url}/admin/audit?area=people")
    expect(rows.filter(has_text="agent otto").filter(has_text="created")).to_have_count(1)
    otto = rows.filter(has_text="agent otto").filter(has_text="deactivated")
    expect(otto).to_contain_text("Ada Admin")
    otto.locator("summary").click()
    expect(otto.locator("pre.after")).to_contain_text('"active": false')
    assert "token" not in otto.locator("pre.after").text_content().replace("token_", "")
    page.goto(f"{stack['boards'].url}/admin/audit")
    page.screenshot(path=SCREENSHOTS / "admin-audit.png", full_page=True)
    page.context.close()
