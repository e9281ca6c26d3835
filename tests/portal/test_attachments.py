"""Customer attachments go through the portal to intake, which stores them once."""

from __future__ import annotations

import hashlib
import uuid

import httpx
import pytest

from tests.portal.helpers import card_by_title, csrf_of, new_email, sign_in, wait_in_portal
from tests.support.stack import auth, wait_until

pytestmark = pytest.mark.slow

STACK = ("boards", "intake", "portal")
STACK_ENV = {"intake": {"INTAKE_MAX_ATTACHMENT_BYTES": "100000"}}


def test_request_and_reply_with_attachments(stack, mail):
    client = sign_in(stack, mail, new_email("files"))
    page = client.get("/services/question/new")
    title = f"Invoice question {uuid.uuid4().hex[:6]}"
    pdf = b"%PDF-1.4\n" + b"x" * 2000
    r = client.post("/services/question/new",
                    data={"csrf": csrf_of(page.text), "subject": title, "text": "See attached."},
                    files=[("attachments", ("invoice.pdf", pdf, "application/pdf"))])
    assert r.status_code == 303, r.text
    card = card_by_title(stack, title)
    full = httpx.get(f"{stack['boards'].url}/v1/cards/{card['id']}", headers=auth(stack)).json()
    [ref] = full["attachments"]
    assert ref["filename"] == "invoice.pdf"
    assert ref["sha256"] == hashlib.sha256(pdf).hexdigest()

    html = wait_in_portal(client, card["id"], "invoice.pdf")
    csrf = csrf_of(html)
    log = b"line\n" * 100
    r = client.post(f"/requests/{card['id']}/reply", data={"csrf": csrf, "text": "The log."},
                    files=[("attachments", ("app.log", log, "text/plain"))])
    assert r.status_code == 303, r.text

    def reply_on_card():
        items = httpx.get(f"{stack['boards'].url}/v1/cards/{card['id']}/comments",
                          headers=auth(stack)).json()["items"]
        return next((c for c in items if c.get("text") == "The log."), None)
    comment = wait_until(reply_on_card)
    assert [a["filename"] for a in comment["attachments"]] == ["app.log"]
    # shown at once as "sending", then as a link once boards has it on the card
    html = wait_in_portal(client, card["id"], ">app.log</a>")
    # the link the customer sees downloads the very bytes
    start = html.rindex('href="', 0, html.index(">app.log</a>")) + len('href="')
    url = html[start:html.index('"', start)].replace("&amp;", "&")
    assert httpx.get(url).content == log


def test_too_large_attachment_is_refused_with_the_form_kept(stack, mail):
    client = sign_in(stack, mail, new_email("big"))
    page = client.get("/services/question/new")
    title = f"Huge scan {uuid.uuid4().hex[:6]}"
    r = client.post("/services/question/new",
                    data={"csrf": csrf_of(page.text), "subject": title, "text": "Keep me."},
                    files=[("attachments", ("scan.tiff", b"\0" * 200_000, "image/tiff"))])
    assert r.status_code == 422
    assert "“scan.tiff” is too large." in r.text
    assert title in r.text and "Keep me." in r.text  # nothing typed is lost
