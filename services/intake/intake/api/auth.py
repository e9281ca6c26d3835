"""The admin Bearer token guarding intake's operator endpoints (quarantine, mailboxes)."""

from __future__ import annotations

import hmac

from desk_runtime.http import Unauthorized
from fastapi import Request


def require_admin(request: Request) -> None:
    expected = request.app.state.settings.admin_token
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    # No admin token configured means the admin API is closed, not open.
    if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), expected.encode()):
        raise Unauthorized("admin token required")
