"""Writing articles and calling boards' help API the way the portal does, for the kb tests."""

from __future__ import annotations

import httpx

from tests.support.stack import Stack, auth


def write_article(stack: Stack, **fields) -> dict:
    """An article saved through the agents' API (published unless said otherwise)."""
    body = {"language": "en", "status": "published", "visibility": "public"} | fields
    r = httpx.post(f"{stack.url('boards')}/v1/kb/articles", json=body, headers=auth(stack),
                   timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


def portal_api(stack: Stack, path: str, **params) -> httpx.Response:
    """boards' help API as the portal calls it (its own credential)."""
    return httpx.get(f"{stack.url('boards')}/v1/kb/help{path}", params=params, timeout=10,
                     headers={"Authorization": f"Bearer {stack.KB_PORTAL_TOKEN}"})
