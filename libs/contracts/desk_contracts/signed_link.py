"""Signed, expiring links that act without a session (e.g. the rating buttons in a mail).

Notify signs them, the portal verifies them; both hold the same `link_secret`.
A token binds a purpose and a subject (e.g. `rate` and a card id) to an expiry time,
so a token for one card cannot rate another and an old mail stops working.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime


def _mac(purpose: str, subject: str, expires: int, secret: bytes) -> str:
    msg = f"{purpose}\n{subject}\n{expires}".encode()
    return base64.urlsafe_b64encode(hmac.new(secret, msg, hashlib.sha256).digest()[:18]).decode()


def sign_link(purpose: str, subject: str, secret: bytes, expires_at: datetime) -> str:
    """An opaque URL-safe token: `<expiry unix seconds>.<HMAC>`."""
    expires = int(expires_at.timestamp())
    return f"{expires}.{_mac(purpose, subject, expires, secret)}"


def verify_link(purpose: str, subject: str, token: str, secret: bytes,
                now: datetime | None = None) -> bool:
    """True only for an untampered token of this purpose and subject that has not expired."""
    try:
        expires_s, mac = token.split(".", 1)
        expires = int(expires_s)
    except ValueError:
        return False
    if expires < int((now or datetime.now(UTC)).timestamp()):
        return False
    return hmac.compare_digest(_mac(purpose, subject, expires, secret), mac)


UPLOAD_HEADER = "X-Desk-Upload-Token"


def upload_token(secret: bytes, ttl_seconds: int = 300) -> str:
    """A short-lived token a trusted service (the portal) presents to upload an attachment."""
    from datetime import timedelta

    return sign_link("upload", "attachments", secret,
                     datetime.now(UTC) + timedelta(seconds=ttl_seconds))


def verify_upload_token(token: str, secret: bytes) -> bool:
    return verify_link("upload", "attachments", token, secret)
