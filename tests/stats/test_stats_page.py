"""The statistics page in headless Chromium: signed in, figures and SVG charts visible."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from tests.stats import scenario
from tests.support.browser import chromium

pytestmark = [pytest.mark.browser]

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def browser(desk):
    # depends on the desk so it closes first: Playwright's loop must be gone before the
    # stack's clean-up runs its own
    with chromium() as b:
        yield b


def sign_in(page, url: str, token: str, path: str) -> None:
    """Through the workspace's sign-in page, as an agent would."""
    page.goto(f"{url}{path}")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/stats?**")


def test_page_signs_in_and_draws_every_chart(desk, browser):
    url = desk.stack["boards"].url
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    # not signed in: sent to the workspace's sign-in, which brings the agent back here
    page.goto(f"{url}/stats?{urlencode(scenario.PERIOD)}")
    assert page.url.startswith(f"{url}/login?next=")
    assert page.locator("svg.chart").count() == 0
    page.fill("input[name=token]", "not-a-token")
    page.click("button[type=submit]")
    assert "/login" in page.url and page.locator("svg.chart").count() == 0
    page.fill("input[name=token]", desk.stack.ADMIN_TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/stats?**")
    assert "from=2026-11-01" in page.url and "token" not in page.url
    expect(page.locator("#tile-received .v")).to_have_text("6")
    expect(page.locator("#tile-closed .v")).to_have_text("5")
    expect(page.locator("#tile-first_response .v")).to_have_text("30m")  # median 1800 s
    expect(page.locator("#tile-reopen .v")).to_have_text("40.0%")
    expect(page.locator("#tile-csat .v")).to_have_text("3.50")
    for chart in ("backlog", "cfd", "cycle", "throughput", "columns", "csat"):
        svg = page.locator(f"#chart-{chart} svg.chart")
        expect(svg).to_be_visible()
        box = svg.bounding_box()
        assert box and box["width"] > 300 and box["height"] > 100, chart
    assert page.locator("#chart-backlog polyline.series").count() == 1
    assert page.locator("#chart-cfd polygon.area").count() == 5
    assert page.locator("#chart-cycle circle.point").count() == 5
    assert page.locator("#chart-cycle line.percentile").count() == 3
    assert page.locator("#chart-throughput rect.bar").count() == 4  # weeks with closings
    # the customer's formula-looking comment is shown as text, not markup
    expect(page.locator("#comments")).to_contain_text('=HYPERLINK("http://evil.example"')
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "stats.png"), full_page=True)
    # a bad period is explained, not answered with the sign-in form
    resp = page.goto(f"{url}/stats?from=2026-11-30&to=2026-11-01")
    assert resp.status == 422
    expect(page.locator("p.error")).to_contain_text("`from` must be before `to`")
    page.goto(f"{url}/stats?{urlencode(scenario.PERIOD)}")
    # grouping and the CSV link work with the cookie alone
    page.select_option("select[name=group_by]", "service")
    page.click("button[type=submit]")
    expect(page.locator("#groups")).to_contain_text("hardware")
    with page.expect_download() as dl:
        page.click("text=cards.csv")
    text = Path(dl.value.path()).read_text()
    assert text.startswith("card_id,number,") and "SD-2" in text
    context.close()


def test_page_in_russian(desk, browser):
    url = desk.stack["boards"].url
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="ru-RU")
    page = context.new_page()
    sign_in(page, url, desk.stack.ADMIN_TOKEN, f"/stats?{urlencode(scenario.PERIOD)}")
    expect(page.locator("h1")).to_have_text("Статистика")
    expect(page.locator("#tile-received")).to_contain_text("Поступило")
    page.screenshot(path=str(SHOTS / "stats-ru.png"), full_page=True)
    context.close()


def test_customer_text_is_shown_as_text_never_markup(desk, browser):
    from tests.stats.conftest import envelope

    card = scenario.Card(777, "access", "email", "std", "12-02 10:00")
    card.move("done", "12-02 11:00").rate(1, "12-02 12:00",
                                           '<img src=x onerror="document.title=\'owned\'">')
    desk.publish([envelope(e) for e in card.events])
    desk.settle()
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, desk.stack["boards"].url, desk.stack.ADMIN_TOKEN,
            "/stats?from=2026-12-01&to=2026-12-31")
    expect(page.locator("#comments")).to_contain_text('<img src=x onerror=')
    assert page.locator("#comments img").count() == 0
    assert page.title() != "owned"
    context.close()
