"""Passwordless sign-in: one-time codes and opaque tokens, kept only as keyed hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from desk_runtime.sessions import token_hash  # noqa: F401 (re-exported)


def new_code() -> str:
    """Six random digits (leading zeros kept)."""
    return f"{secrets.randbelow(1_000_000):06d}"


def new_token() -> str:
    """An unguessable URL-safe token (256 bits) for cookies and links."""
    return secrets.token_urlsafe(32)


def code_hash(attempt_id: str, code: str, secret: bytes) -> str:
    """A code is bound to its attempt: the same digits mean nothing for another attempt.

    Keyed with the server secret because a 6-digit space is trivially brute-forced offline.
    """
    return hmac.new(secret, f"login-code\n{attempt_id}\n{code}".encode(),
                    hashlib.sha256).hexdigest()


def clean_code(raw: str) -> str | None:
    digits = "".join(ch for ch in raw if not ch.isspace() and ch != "-")
    return digits if len(digits) == 6 and digits.isdigit() else None


def bound_token(purpose: str, subject: str, secret: bytes) -> str:
    """A CSRF token derived from something the attacker cannot read (a cookie, a link)."""
    return hmac.new(secret, f"csrf\n{purpose}\n{subject}".encode(),
                    hashlib.sha256).hexdigest()[:43]


def tokens_equal(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))
