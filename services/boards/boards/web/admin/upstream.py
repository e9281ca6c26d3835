"""Calls to the service that owns an admin area, with that service's admin token.

An answer the owner refuses comes back as the owner's status with its reasons mapped to
per-field errors (`{"fields": {"targets.resolution": "..."}}`), whatever shape the owner
used (FastAPI's validation list, a `details.errors` list, a `details.fields` map).
"""

from __future__ import annotations

from typing import Any

import httpx
from desk_runtime.http import DomainError, Invalid
from desk_runtime.metrics import REJECTED_INPUT
from fastapi import Request

# area → (URL setting, token setting) of boards' settings
OWNERS = {"sla": ("sla_url", "sla_admin_token"),
          "notify": ("notify_url", "notify_admin_token"),
          "portal": ("portal_admin_url", "portal_admin_token"),
          "intake": ("intake_url", "intake_admin_token")}
TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class OwnerUnavailable(DomainError):
    status_code = 503
    code = "owner_unavailable"


class OwnerRefused(DomainError):
    """The owner answered with an error other than invalid input (404, 409, ...)."""

    def __init__(self, status: int, message: str, details: dict | None = None):
        super().__init__(message, details=details)
        self.status_code = status
        self.code = {404: "not_found", 409: "conflict"}.get(status, "owner_refused")


def _client(request: Request) -> httpx.AsyncClient:
    """One client per process, kept: a new one per call costs its TLS context and a fresh
    connection (measured: ~50 ms a call, bench/admin_pages.py)."""
    client = getattr(request.app.state, "admin_upstream", None)
    if client is None:
        client = request.app.state.admin_upstream = httpx.AsyncClient(timeout=TIMEOUT)
    return client


def configured(request: Request, owner: str) -> bool:
    settings = request.app.state.settings
    return bool(getattr(settings, OWNERS[owner][1]))


def _loc(loc: Any) -> str:
    parts = loc.split(".") if isinstance(loc, str) else [str(p) for p in loc or ()]
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[1:]
    return ".".join(parts) or "_"


def field_errors(body: Any) -> dict[str, str]:
    """Per-field reasons from an owner's 422 body ("_" for the whole form)."""
    if not isinstance(body, dict):
        return {"_": str(body)[:300]}
    details = body.get("details") or {}
    if isinstance(details.get("fields"), dict):
        return {str(k): str(v) for k, v in details["fields"].items()}
    errors = details.get("errors") if isinstance(details, dict) else None
    if errors is None and isinstance(body.get("detail"), list):
        errors = body["detail"]
    out: dict[str, str] = {}
    for e in errors or []:
        out.setdefault(_loc(e.get("loc")), str(e.get("msg", "invalid")).removeprefix(
            "Value error, "))
    if not out:
        part = details.get("part") if isinstance(details, dict) else None
        out[part or "_"] = body.get("message") or str(body.get("detail") or "invalid")
    return out


async def call(request: Request, owner: str, method: str, path: str,
               json: Any = None) -> Any:
    """The owner's JSON answer; its refusals raised as boards' own errors."""
    settings = request.app.state.settings
    url_setting, token_setting = OWNERS[owner]
    token = getattr(settings, token_setting)
    if not token:
        raise OwnerUnavailable(
            f"{owner}'s admin API is not configured here (BOARDS_{token_setting.upper()})",
            details={"owner": owner})
    headers = {"Authorization": f"Bearer {token}",
               "X-Correlation-Id": getattr(request.state, "correlation_id", "") or ""}
    try:
        r = await _client(request).request(method, getattr(settings, url_setting).rstrip("/")
                                           + path, json=json, headers=headers)
    except httpx.HTTPError as exc:
        raise OwnerUnavailable(f"{owner} did not answer ({type(exc).__name__})",
                               details={"owner": owner}) from None
    try:
        body = r.json() if r.content else None
    except ValueError:
        body = r.text[:300]
    if r.status_code in (400, 422):
        REJECTED_INPUT.labels("boards", "admin", f"{owner}_invalid").inc()
        message = body.get("message", "invalid input") if isinstance(body, dict) else "invalid"
        raise Invalid(message, details={"fields": field_errors(body), "owner": owner})
    if r.status_code >= 500:
        raise OwnerUnavailable(f"{owner} failed ({r.status_code})", details={"owner": owner})
    if r.status_code >= 400:
        message = body.get("message", str(body)) if isinstance(body, dict) else str(body)
        raise OwnerRefused(r.status_code, message)
    return body
