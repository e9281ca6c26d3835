"""Passwordless sign-in: one-time codes, kept only as keyed hashes bound to their attempt."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_code() -> str:
    """Six random digits (leading zeros kept)."""
    return f"{secrets.randbelow(1_000_000):06d}"


def code_hash(attempt_id: str, code: str, secret: bytes) -> str:
    """A code is bound to its attempt: the same digits mean nothing for another attempt.

    Keyed with the server secret because a 6-digit space is trivially brute-forced offline.
    """
    return hmac.new(secret, f"login-code\n{attempt_id}\n{code}".encode(),
                    hashlib.sha256).hexdigest()


def clean_code(raw: str) -> str | None:
    digits = "".join(ch for ch in raw if not ch.isspace() and ch != "-")
    return digits if len(digits) == 6 and digits.isdigit() else None
