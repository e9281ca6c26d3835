"""Shared page plumbing: language negotiation, tokens, autoescaped templates, cookies."""

from __future__ import annotations

from desk_runtime.web import (
    bound_token,
    negotiate_language,
    session_dependency,
    set_cookie,
    template_environment,
    tokens_equal,
)
from fastapi import Depends, FastAPI, Response
from fastapi.testclient import TestClient


def test_language_order_is_switcher_then_cookie_then_browser_then_default():
    langs = ("en", "ru")
    assert negotiate_language(langs, query="ru", cookie="en", accept_language="en") == "ru"
    assert negotiate_language(langs, query="xx", cookie="ru", accept_language="en") == "ru"
    assert negotiate_language(langs, accept_language="de-DE,ru;q=0.8,en;q=0.5") == "ru"
    assert negotiate_language(langs, accept_language="fr, de;q=0.9") == "en"
    assert negotiate_language(langs, accept_language="ru;q=abc, en;q=0.1") == "en"
    assert negotiate_language(langs, default="ru") == "ru"


def test_tokens_compare_only_when_both_are_present_and_equal():
    assert tokens_equal("abc", "abc")
    assert not tokens_equal("abc", "abd")
    assert not tokens_equal(None, None) and not tokens_equal("", "")
    a = bound_token("login", "pre-session-1", b"secret")
    assert a == bound_token("login", "pre-session-1", b"secret")
    assert a != bound_token("login", "pre-session-2", b"secret")
    assert a != bound_token("rate", "pre-session-1", b"secret")
    assert a != bound_token("login", "pre-session-1", b"other")


def test_templates_escape_what_they_are_given(tmp_path):
    (tmp_path / "page.html").write_text("<p>{{ name }} {{ site }}</p>")
    env = template_environment(tmp_path, site="Desk")
    assert env.get_template("page.html").render(name="<script>x</script>") == \
        "<p>&lt;script&gt;x&lt;/script&gt; Desk</p>"


def test_a_session_dependency_reads_its_own_cookie_and_cookies_are_strict():
    seen: list[str] = []

    async def lookup(request, raw):
        seen.append(raw)
        return {"who": "ann"} if raw == "good" else None

    app = FastAPI()
    current = session_dependency(lookup, cookie="desk_test_session")

    @app.get("/me")
    async def me(person=Depends(current)):
        return {"person": person}

    @app.post("/in")
    async def sign_in(response: Response):
        set_cookie(response, "desk_test_session", "good", max_age=60, secure=True)
        return {}

    client = TestClient(app, base_url="https://testserver")
    assert client.get("/me").json() == {"person": None}
    assert seen == []  # no cookie: no lookup
    header = client.post("/in").headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header and "secure" in header
    assert client.get("/me").json() == {"person": {"who": "ann"}}
    client.cookies.set("desk_test_session", "forged")
    assert client.get("/me").json() == {"person": None}
