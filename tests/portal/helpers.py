"""Driving the portal over HTTP like a browser would, for the portal's process-level tests."""

from __future__ import annotations

import itertools
import json
import re
import uuid

import httpx

from tests.support.mail import MailSink
from tests.support.stack import Stack, auth, wait_until

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CODE = re.compile(r"\b(\d{6})\b")
_clients = itertools.count(10)

ACCESS = {"domains": ["acme.example", "globex.example", "*.partner.example"],
          "addresses": ["freelancer@gmail.example"]}
PORTAL_ENV = {
    "PORTAL_COOKIE_SECURE": "false",          # plain http://127.0.0.1 in tests
    "PORTAL_TRUSTED_PROXIES": '["127.0.0.1"]',  # each test client gets its own address
    "PORTAL_ACCESS": json.dumps(ACCESS),
    "PORTAL_GROUPS": json.dumps({"legal-team": {"addresses": ["lawyer@acme.example"]}}),
    "PORTAL_ORGANISATIONS": json.dumps({"globex": {"domains": ["globex.example"]}}),
    "PORTAL_WIDGET_FRAME_ANCESTORS": "http://intranet.acme.example",
}


def new_email(prefix: str = "cust", domain: str = "acme.example") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:8]}@{domain}"


def client_ip() -> str:
    n = next(_clients)
    return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


def portal_client(stack: Stack, ip: str | None = None, lang: str = "en") -> httpx.Client:
    return httpx.Client(base_url=stack.url("portal"), timeout=15, follow_redirects=False,
                        headers={"X-Forwarded-For": ip or client_ip(), "Accept-Language": lang})


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def code_from(mail: MailSink, email: str, count: int = 1) -> str:
    msg = mail.wait_for(email, count=count)[count - 1]
    match = CODE.search(msg["Subject"])
    assert match, msg["Subject"]
    return match.group(1)


def ask_code(client: httpx.Client, email: str) -> httpx.Response:
    page = client.get("/login")
    return client.post("/login", data={"email": email, "csrf": csrf_of(page.text), "next": "/"})


def enter_code(client: httpx.Client, code: str) -> httpx.Response:
    page = client.get("/login/code")
    return client.post("/login/code", data={"code": code, "csrf": csrf_of(page.text)})


def sign_in(stack: Stack, mail: MailSink, email: str) -> httpx.Client:
    client = portal_client(stack)
    before = len(mail.to(email))
    r = ask_code(client, email)
    assert r.status_code == 303, r.text
    code = code_from(mail, email, before + 1)
    r = enter_code(client, code)
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    return client


def submit(client: httpx.Client, service: str, subject: str, fields: dict | None = None,
           text: str = "Please help.") -> httpx.Response:
    page = client.get(f"/services/{service}/new")
    assert page.status_code == 200, page.text
    data = {"csrf": csrf_of(page.text), "subject": subject, "text": text}
    data |= {f"f_{k}": v for k, v in (fields or {}).items()}
    return client.post(f"/services/{service}/new", data=data)


def card_by_title(stack: Stack, title: str) -> dict:
    def find():
        r = httpx.get(f"{stack['boards'].url}/v1/cards", params={"q": title},
                      headers=auth(stack), timeout=10)
        items = [c for c in r.json().get("items", []) if c["title"] == title]
        return items[0] if items else None
    return wait_until(find, timeout=30)


def wait_in_portal(client: httpx.Client, card_id: str, text: str | None = None) -> str:
    """The request page once the portal's read model has the card (and `text`, if given)."""
    def ready():
        r = client.get(f"/requests/{card_id}")
        return r.text if r.status_code == 200 and (text is None or text in r.text) else None
    return wait_until(ready, timeout=30)


def close_card(stack: Stack, card: dict) -> dict:
    fresh = httpx.get(f"{stack['boards'].url}/v1/cards/{card['id']}", headers=auth(stack)).json()
    r = httpx.post(f"{stack['boards'].url}/v1/cards/{card['id']}/move", headers=auth(stack),
                   json={"column_id": "done", "version": fresh["version"]})
    assert r.status_code == 200, r.text
    return r.json()


def agent_comment(stack: Stack, card: dict, text: str, visibility: str = "public") -> None:
    r = httpx.post(f"{stack['boards'].url}/v1/cards/{card['id']}/comments", headers=auth(stack),
                   json={"text": text, "visibility": visibility})
    assert r.status_code == 201, r.text
