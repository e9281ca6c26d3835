"""Customer attachments go through the portal to intake, which stores them once."""

from __future__ import annotations

import hashlib
import uuid

import httpx
import pytest

from tests.portal.helpers import card_by_title, csrf_of, new_email, sign_in, wait_in_portal
from tests.support.metrics import sample_sum
from tests.support.stack import auth, wait_until

pytestmark = pytest.mark.slow

STACK = ("boards", "intake", "portal")
# intake's own per-file limit is low here; the portal's per-form total is its default
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


def test_files_of_one_form_are_limited_together(stack, mail):
    """Three files of 10 MiB in one reply: each under the per-file limit, together over
    the form's 25 MiB. Refused before anything is uploaded, with the reason on the page."""
    client = sign_in(stack, mail, new_email("bulk"))
    page = client.get("/services/question/new")
    title = f"Scans {uuid.uuid4().hex[:6]}"
    r = client.post("/services/question/new",
                    data={"csrf": csrf_of(page.text), "subject": title, "text": "Small."},
                    files=[("attachments", ("a.txt", b"a", "text/plain"))])
    assert r.status_code == 303, r.text
    card = card_by_title(stack, title)
    csrf = csrf_of(wait_in_portal(client, card["id"]))
    before = sample_sum(stack["portal"].url, "desk_rejected_input_total", service="portal",
                        channel="web", reason="form_too_large")
    big = [("attachments", (f"scan-{i}.bin", bytes([i]) * (10 * 1024 * 1024),
                            "application/octet-stream")) for i in range(3)]
    r = client.post(f"/requests/{card['id']}/reply", data={"csrf": csrf, "text": "All scans."},
                    files=big)
    assert r.status_code == 422
    assert "The files together are larger than 25 MB" in r.text
    assert sample_sum(stack["portal"].url, "desk_rejected_input_total", service="portal",
                      channel="web", reason="form_too_large") == before + 1
    # the same on the new-request form, with what was typed kept
    page = client.get("/services/question/new")
    r = client.post("/services/question/new",
                    data={"csrf": csrf_of(page.text), "subject": "Keep this subject",
                          "text": "Keep this text."}, files=big)
    assert r.status_code == 422
    assert "The files together are larger than 25 MB" in r.text
    assert "Keep this subject" in r.text and "Keep this text." in r.text
    comments = httpx.get(f"{stack['boards'].url}/v1/cards/{card['id']}/comments",
                         headers=auth(stack)).json()["items"]
    assert not any(c.get("text") == "All scans." for c in comments)
