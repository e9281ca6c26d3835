"""The attachments API the portal uploads to: stored once, sniffed, limited, signed links."""

from __future__ import annotations

import hashlib

import httpx
from desk_contracts.signed_link import UPLOAD_HEADER, upload_token

from tests.intake.conftest import MAX_ATTACHMENT_BYTES
from tests.support.stack import Stack

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00"
       b"\x00\x90wS\xde")


def upload(desk, name: str, data: bytes, ctype: str, token: str | None = None
           ) -> httpx.Response:
    token = token if token is not None else upload_token(Stack.LINK_SECRET.encode())
    return httpx.post(f"{desk['intake'].url}/v1/attachments", timeout=30,
                      files={"file": (name, data, ctype)}, headers={UPLOAD_HEADER: token})


def test_only_a_holder_of_the_link_secret_may_upload(desk):
    assert upload(desk, "x.txt", b"x", "text/plain", token="").status_code == 401
    forged = upload_token(b"not-our-secret")
    assert upload(desk, "x.txt", b"x", "text/plain", token=forged).status_code == 401
    r = httpx.post(f"{desk['intake'].url}/v1/attachments", timeout=10,
                   files={"file": ("x.txt", b"x", "text/plain")})
    assert r.status_code == 401 and "X-Desk-Upload-Token" in r.text


def test_upload_sniffs_type_and_serves_by_signed_link(desk):
    r = upload(desk, "screenshot.txt", PNG, "text/plain")  # the declared type lies
    assert r.status_code == 201, r.text
    ref = r.json()
    assert ref["content_type"] == "image/png"
    assert ref["sha256"] == hashlib.sha256(PNG).hexdigest() and ref["size"] == len(PNG)
    assert ref["filename"] == "screenshot.txt"
    got = httpx.get(ref["url"], timeout=10)
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["x-content-type-options"] == "nosniff"
    # the same bytes uploaded again: a new reference to the same stored content
    again = upload(desk, "other.png", PNG, "image/png").json()
    assert again["id"] != ref["id"] and again["sha256"] == ref["sha256"]


def test_links_cannot_be_forged_or_moved_to_another_attachment(desk):
    a = upload(desk, "a.txt", b"secret a", "text/plain").json()
    b = upload(desk, "b.txt", b"secret b", "text/plain").json()
    base = f"{desk['intake'].url}/v1/attachments"
    token_a = a["url"].split("?t=")[1]
    assert httpx.get(f"{base}/{b['id']}?t={token_a}", timeout=10).status_code == 403
    assert httpx.get(f"{base}/{a['id']}", timeout=10).status_code == 403
    assert httpx.get(f"{base}/{a['id']}?t=0.{token_a.split('.')[1]}", timeout=10
                     ).status_code == 403  # expired / tampered expiry


def test_html_upload_is_never_served_as_html(desk):
    ref = upload(desk, "x.html", b"<html><script>alert(1)</script></html>", "text/html").json()
    got = httpx.get(ref["url"], timeout=10)
    assert got.headers["content-type"].startswith("application/octet-stream")
    assert got.headers["content-disposition"].startswith("attachment")


def test_oversized_and_missing_files_are_refused(desk):
    r = upload(desk, "big.bin", b"\0" * (MAX_ATTACHMENT_BYTES + 1), "application/octet-stream")
    assert r.status_code == 413 and "larger than" in r.json()["message"]
    r = httpx.post(f"{desk['intake'].url}/v1/attachments", data={"x": "y"}, timeout=10,
                   headers={UPLOAD_HEADER: upload_token(Stack.LINK_SECRET.encode())})
    assert r.status_code == 422
