"""Which language a workspace page speaks: switcher, remembered choice, then the browser's."""

from __future__ import annotations

import pytest
from boards.web.i18n import LANG_COOKIE, TEXT, pick_language
from starlette.requests import Request


def request(query: str = "", cookie: str | None = None, accept: str | None = None) -> Request:
    headers = []
    if cookie:
        headers.append((b"cookie", f"{LANG_COOKIE}={cookie}".encode()))
    if accept is not None:
        headers.append((b"accept-language", accept.encode()))
    return Request({"type": "http", "method": "GET", "path": "/board", "headers": headers,
                    "query_string": query.encode()})


@pytest.mark.parametrize(("query", "cookie", "accept", "expected"), [
    ("", None, None, "en"),
    ("", None, "ru-RU,ru;q=0.9,en;q=0.8", "ru"),
    ("", None, "de-DE,en;q=0.5,ru;q=0.7", "ru"),     # the best-weighted language we speak
    ("", None, "fr, de", "en"),                       # none we speak: English
    ("", None, "ru;q=bogus, en", "en"),               # a broken weight counts as 0
    ("", "ru", "en-US", "ru"),                        # the remembered choice beats the browser
    ("lang=en", "ru", "ru", "en"),                    # the switcher beats both
    ("lang=xx", None, "ru", "ru"),                    # an unknown choice is ignored
])
def test_language_choice(query, cookie, accept, expected):
    assert pick_language(request(query, cookie, accept)) == expected


def test_both_languages_have_every_text():
    assert set(TEXT["en"]) == set(TEXT["ru"])
    assert all(v.strip() for lang in TEXT.values() for v in lang.values())
