"""The help centre in headless Chromium: suggestions while a request's subject is typed,
"This solved my problem" closing the draft without a request (counted as a deflection),
and an article whose body tries every trick staying inert."""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.sync_api import expect

from tests.kb.helpers import write_article
from tests.portal.helpers import sign_in
from tests.support.browser import chromium
from tests.support.stack import auth, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

XSS_BODY = """Try these:

<script>window.__pwned = 'script'</script>
<img src=x onerror="window.__pwned='img'">
[click me](javascript:window.__pwned='link')
[data link](data:text/html,<script>alert(1)</script>)
<a href="javascript:window.__pwned='a'">raw anchor</a>
"""


@pytest.fixture(scope="module")
def browser(stack):
    with chromium() as b:
        yield b


def signed_in_page(browser, stack, mail, email):
    client = sign_in(stack, mail, email)
    context = browser.new_context(locale="en-US", viewport={"width": 1100, "height": 900})
    context.set_default_timeout(15_000)
    context.add_cookies([{"name": c.name, "value": c.value, "url": stack.url("portal")}
                         for c in client.cookies.jar])
    return context.new_page()


def deflections(stack) -> int:
    r = httpx.get(f"{stack.url('boards')}/v1/kb/deflections", headers=auth(stack), timeout=10)
    return r.json()["total"]


def test_suggestions_while_typing_and_this_solved_my_problem(browser, stack, mail):
    tag = uuid.uuid4().hex[:6]
    article = write_article(stack, title=f"Monitor flickers {tag}", categories=["problem"],
                            body="Replace the **display cable** and restart the monitor.")
    before = deflections(stack)
    page = signed_in_page(browser, stack, mail, f"flicker.{tag}@acme.example")
    page.goto(stack.url("portal") + "/services/problem/new")
    suggestions = page.locator("#help-suggest")
    expect(suggestions).to_be_hidden()
    page.get_by_label("Subject").press_sequentially(f"monit flick {tag}", delay=20)
    expect(suggestions).to_be_visible()
    hit = suggestions.locator("li").first
    expect(hit.locator("a")).to_contain_text(f"Monitor flickers {tag}")
    expect(hit.locator("a mark").first).to_have_text("Monitor")
    hit.get_by_role("button", name="This solved my problem").click()
    expect(page.locator("#help-solved")).to_contain_text("no request was filed")
    expect(page.get_by_role("heading", name=f"Monitor flickers {tag}")).to_be_visible()
    assert page.url.endswith(f"{article['path']}?solved=1")
    wait_until(lambda: deflections(stack) == before + 1)
    # the statistics count it too: in the summary (API) and as a tile on the stats page
    r = httpx.get(f"{stack.url('boards')}/v1/stats/summary", headers=auth(stack), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["deflected"]["total"] == before + 1
    assert r.json()["deflected"]["by_service"].get("problem", 0) >= 1
    html = httpx.get(f"{stack.url('boards')}/stats", headers=auth(stack), timeout=10).text
    tile = html[html.index('id="tile-deflected"'):]
    assert f'<div class="v">{before + 1}</div>' in tile[:300]
    # and no request was filed: the customer's list has nothing pending or open
    page.goto(stack.url("portal") + "/")
    expect(page.get_by_text("You have no open requests")).to_be_visible()


def test_an_article_body_with_scripts_stays_inert(browser, stack):
    article = write_article(stack, title="Tricky article", body=XSS_BODY)
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(stack.url("portal") + article["path"])  # public: no sign-in needed
    body = page.locator(".help-body")
    expect(body).to_contain_text("<script>window.__pwned = 'script'</script>")
    expect(body).to_contain_text("[click me](javascript:window.__pwned='link')")
    assert body.locator("script, img, iframe").count() == 0
    for link in body.locator("a").all():
        href = link.get_attribute("href") or ""
        assert href.startswith(("http://", "https://", "/")), href
    page.get_by_text("raw anchor", exact=False).click()
    assert page.evaluate("window.__pwned") is None and dialogs == []
    context.close()
