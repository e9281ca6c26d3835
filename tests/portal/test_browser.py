"""A customer's whole journey in headless Chromium, against the real processes.

Sign in with the code from the real e-mail, file a request whose conditional field
appears only after choosing an option, see it listed, get the agent's public reply (not
the internal note), reply, rate, and reopen as a follow-up. Saves the README screenshots.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.portal.helpers import (
    agent_comment,
    card_by_title,
    client_ip,
    close_card,
    code_from,
    new_email,
)
from tests.support.browser import chromium
from tests.support.stack import auth, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def browser(stack):
    # depends on the stack so it closes first: Playwright's loop must be gone before the
    # stack's clean-up runs its own
    with chromium(loopback_embedding=True) as b:
        yield b


def new_page(browser, *, javascript: bool = True, mobile: bool = False, lang: str = "en-US"
             ) -> Page:
    context = browser.new_context(
        java_script_enabled=javascript, locale=lang,
        viewport={"width": 390, "height": 844} if mobile else {"width": 1200, "height": 900},
        extra_http_headers={"X-Forwarded-For": client_ip()})
    context.set_default_timeout(15_000)
    return context.new_page()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"portal-{name}.png"), full_page=True)


def sign_in(page: Page, stack, mail, email: str, screenshots: bool = False) -> None:
    page.goto(stack.url("portal") + "/")
    expect(page).to_have_url(re.compile(r"/login"))
    if screenshots:
        shot(page, "sign-in")
    page.get_by_label("E-mail").fill(email)
    before = len(mail.to(email))
    page.get_by_role("button", name="Send me a code").click()
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    page.get_by_label("Code from the e-mail").fill(code_from(mail, email, before + 1))
    if screenshots:
        shot(page, "sign-in-code")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="How can we help?")).to_be_visible()


def assert_accessible_form(page: Page) -> None:
    """Every visible control has a label, and the page has one h1 and a main landmark."""
    unlabelled = page.evaluate("""() => Array.from(
        document.querySelectorAll('input:not([type=hidden]), select, textarea, button'))
        .filter(el => el.offsetParent !== null)
        .filter(el => el.tagName === 'BUTTON' ? !el.textContent.trim()
                                              : !(el.labels && el.labels.length))
        .map(el => el.outerHTML.slice(0, 80))""")
    assert unlabelled == []
    assert page.locator("h1").count() == 1 and page.locator("main").count() == 1


def reload_until(page: Page, text: str, timeout: float = 30) -> None:
    def seen() -> bool:
        page.reload()
        return text in page.content()
    wait_until(seen, timeout=timeout, interval=0.3)


def test_customer_journey(browser, stack, mail):
    email = new_email("anna")
    page = new_page(browser)
    sign_in(page, stack, mail, email, screenshots=True)

    # the catalog, grouped, and a request whose conditional field appears on demand
    expect(page.get_by_role("heading", name="IT")).to_be_visible()
    page.get_by_role("link", name="Problem / bug").click()
    other_system = page.get_by_label("Which system?")
    expect(other_system).to_be_hidden()
    page.get_by_label(re.compile(r"^System")).select_option("crm")
    expect(other_system).to_be_hidden()
    page.get_by_label(re.compile(r"^System")).select_option("other")
    expect(other_system).to_be_visible()
    title = f"Scanner on floor 3 is offline {uuid.uuid4().hex[:5]}"
    page.get_by_label("Subject").fill(title)
    other_system.fill("Scanner hub")
    page.get_by_label("How many people are affected?").fill("12")
    page.get_by_label("Describe your request").fill("It shows a red light since Monday.")
    assert_accessible_form(page)
    shot(page, "new-request")
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("status")).to_contain_text("Your request has been sent")

    card = card_by_title(stack, title)
    assert card["fields"] == {"system": "other", "system_other": "Scanner hub", "impact": 12}
    assert card["requester"]["email"] == email and card["channel"] == "portal"
    reload_until(page, card["number"])
    expect(page.get_by_role("link", name=card["number"])).to_be_visible()
    shot(page, "home")

    # the agent answers publicly and writes an internal note
    agent_comment(stack, card, "We are sending a technician today.")
    agent_comment(stack, card, "INTERNAL: the vendor contract expired", visibility="internal")
    page.get_by_role("link", name=card["number"]).click()
    reload_until(page, "We are sending a technician today.")
    expect(page.get_by_text("Which system?")).to_be_visible()
    assert "INTERNAL" not in page.content()

    # the customer replies
    page.get_by_label("Your message").fill("Thanks, I will be at my desk.")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Your message has been sent")
    expect(page.get_by_text("Thanks, I will be at my desk.")).to_be_visible()

    def reply_on_card() -> bool:
        r = httpx.get(f"{stack['boards'].url}/v1/cards/{card['id']}/comments",
                      headers=auth(stack))
        return any(c.get("text") == "Thanks, I will be at my desk." for c in r.json()["items"])
    wait_until(reply_on_card)
    wait_until(lambda: page.reload() or "Sending…" not in page.content(), interval=0.3)
    assert_accessible_form(page)
    shot(page, "request")

    # done: rate it, then say it is not solved after all
    close_card(stack, card)
    reload_until(page, "How did we do?")
    expect(page.get_by_test_id("status")).to_have_text("Done")
    page.get_by_label("4", exact=True).check()
    page.get_by_label("Comment (optional)").fill("Quick and friendly.")
    shot(page, "rate")
    page.get_by_role("button", name="Rate").click()
    expect(page.get_by_test_id("rated").first).to_contain_text("4 of 5")

    def rating_on_card():
        full = httpx.get(f"{stack['boards'].url}/v1/cards/{card['id']}", headers=auth(stack))
        return full.json().get("rating")
    rating = wait_until(rating_on_card)
    assert (rating["score"], rating["comment"]) == (4, "Quick and friendly.")

    page.get_by_label("What is still wrong, or what is your new question?").fill(
        "The scanner is offline again.")
    page.get_by_role("button", name="Open a follow-up request").click()
    expect(page.get_by_role("status")).to_contain_text("Your request has been sent")
    follow = card_by_title(stack, f"Follow-up to {card['number']}: {title}")
    assert follow["parent_id"] == card["id"]
    reload_until(page, follow["number"])
    page.get_by_role("link", name=follow["number"]).click()
    expect(page.get_by_role("link", name=card["number"])).to_be_visible()  # "follow-up of"
    expect(page.get_by_text("The scanner is offline again.")).to_be_visible()

    # notification settings
    page.get_by_role("link", name="Notifications").click()
    page.get_by_label("Reminders when we wait for your answer: E-mail").uncheck()
    assert_accessible_form(page)
    shot(page, "notifications")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("saved")
    expect(page.get_by_label("Reminders when we wait for your answer: E-mail")).not_to_be_checked()

    # Russian, by the switcher (a cookie), then on a phone
    page.goto(stack.url("portal") + "/")
    page.get_by_role("link", name="Русский").click()
    expect(page.get_by_role("heading", name="Чем мы можем помочь?")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    shot(page, "home-ru")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(stack.url("portal") + f"/requests/{card['id']}")
    expect(page.get_by_test_id("status")).to_have_text("Готово")
    shot(page, "request-mobile")

    # the widget lists the same customer's requests
    page.goto(stack.url("portal") + "/widget")
    expect(page.get_by_role("link", name=re.compile(f"^{card['number']} · "))).to_be_visible()
    page.context.close()


def test_russian_from_accept_language_and_sign_out(browser, stack, mail):
    page = new_page(browser, lang="ru-RU")
    page.goto(stack.url("portal") + "/login")
    expect(page.get_by_role("heading", name="Вход")).to_be_visible()
    email = new_email("ivan")
    page.get_by_label("E-mail").fill(email)
    page.get_by_role("button", name="Прислать код").click()
    page.get_by_label("Код из письма").fill(code_from(mail, email))
    page.get_by_role("button", name="Войти").click()
    expect(page.get_by_role("heading", name="Чем мы можем помочь?")).to_be_visible()
    assert "Ваш код для входа" in mail.to(email)[0]["Subject"]
    page.get_by_role("button", name="Выйти").click()
    expect(page.get_by_role("heading", name="Вход")).to_be_visible()
    page.goto(stack.url("portal") + "/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.context.close()


def test_core_paths_work_without_javascript(browser, stack, mail):
    page = new_page(browser, javascript=False)
    sign_in(page, stack, mail, new_email("nojs"))
    page.goto(stack.url("portal") + "/services/problem/new")
    # every field is there, with a note saying when it applies
    expect(page.get_by_label("Which system?")).to_be_visible()
    expect(page.get_by_text("Only if “System” is: Other")).to_be_visible()
    title = f"No-JS request {uuid.uuid4().hex[:5]}"
    page.get_by_label("Subject").fill(title)
    page.get_by_label(re.compile(r"^System")).select_option("other")
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("alert")).to_contain_text("Please correct")
    expect(page.get_by_text("is required")).to_be_visible()  # "Which system?" still missing
    page.get_by_label("Which system?").fill("Badge reader")
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("status")).to_contain_text("Your request has been sent")
    card = card_by_title(stack, title)
    assert card["fields"]["system_other"] == "Badge reader"
    page.context.close()


def test_widget_script_embeds_the_list_on_an_allowed_intranet(browser, stack):
    page = new_page(browser)
    script = stack.url("portal") + "/widget.js"
    page.route("http://intranet.acme.example/", lambda route: route.fulfill(
        content_type="text/html",
        body=f"<!doctype html><h1>Intranet</h1><script src='{script}'></script>"))
    page.goto("http://intranet.acme.example/")
    frame = page.frame_locator("iframe")
    # cookies are not sent to a cross-site frame, so a visitor is asked to sign in
    expect(frame.get_by_role("link", name="Sign in to see your requests")).to_be_visible()
    page.context.close()
