"""Signed per-request tokens in reply-to addresses, shared by notify (signs) and intake (verifies).

A token names the request (`sd-42`) plus an HMAC, so nobody can attach mail to a
request by guessing its number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_TOKEN = re.compile(r"^([a-z]{1,10})-(\d{1,12})-([a-z2-7]{10})$")


def _mac(number: str, secret: bytes) -> str:
    digest = hmac.new(secret, number.upper().encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:10].lower()


def sign_reply_token(number: str, secret: bytes) -> str:
    """`SD-42` → `sd-42-<10 chars of base32 HMAC-SHA256>`."""
    return f"{number.lower()}-{_mac(number, secret)}"


def verify_reply_token(token: str, secret: bytes) -> str | None:
    """The request number (`SD-42`) if the token is ours and untampered, else None."""
    match = _TOKEN.match(token.strip().lower())
    if not match:
        return None
    number = f"{match.group(1).upper()}-{match.group(2)}"
    if not hmac.compare_digest(_mac(number, secret), match.group(3)):
        return None
    return number


def reply_address(service_slug: str, number: str, secret: bytes, inbound_domain: str) -> str:
    return f"{service_slug}+{sign_reply_token(number, secret)}@{inbound_domain}"
