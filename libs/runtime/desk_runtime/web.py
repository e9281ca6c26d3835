"""What every server-rendered page of the desk shares: templates, language, CSRF, cookies.

The agents' workspace (boards) and the customers' portal use these, each with its own
texts, cookie names and session store; the rules that must not differ between them live
here once: autoescaped templates, one reading of Accept-Language, constant-time token
comparison, and cookies that are HttpOnly and SameSite=Strict unless said otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Request, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

T = TypeVar("T")

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"


def template_environment(directory: Path | str, **globals: Any) -> Environment:
    """A Jinja environment over one template directory; HTML and XML are autoescaped."""
    env = Environment(loader=FileSystemLoader(str(directory)),
                      autoescape=select_autoescape(("html", "htm", "xml", "svg")),
                      auto_reload=False)
    env.globals.update(globals)
    return env


def _accept_language_choice(header: str | None, supported: Sequence[str]) -> str | None:
    """The supported primary language the header prefers most (first one wins a tie)."""
    best, best_q = None, 0.0
    for part in (header or "").split(","):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in supported and q > best_q:
            best, best_q = primary, q
    return best


def negotiate_language(supported: Sequence[str], *, query: str | None = None,
                       cookie: str | None = None, accept_language: str | None = None,
                       default: str = "en") -> str:
    """The page's language: an explicit `?lang=` (the switcher), then the remembered cookie,
    then the browser's Accept-Language, then `default`."""
    for asked in (query, cookie):
        if asked in supported:
            return asked
    return _accept_language_choice(accept_language, supported) or default


def new_token(nbytes: int = 24) -> str:
    """A fresh random token (session ids, CSRF tokens): URL-safe, `nbytes` of entropy."""
    return secrets.token_urlsafe(nbytes)


def tokens_equal(a: str | None, b: str | None) -> bool:
    """Constant-time comparison; a missing or empty token never matches."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def bound_token(purpose: str, binding: str, secret: bytes) -> str:
    """A CSRF token derived from something an attacker cannot read (a cookie, a link)."""
    return hmac.new(secret, f"csrf\n{purpose}\n{binding}".encode(),
                    hashlib.sha256).hexdigest()[:43]


def csrf_sent(request: Request, form_value: str | None = None,
              header: str = CSRF_HEADER) -> str | None:
    """The CSRF token a request carries: its header, else the form field's value."""
    return request.headers.get(header) or form_value


def set_cookie(response: Response, name: str, value: str, *, max_age: int | None,
               secure: bool, path: str = "/", samesite: str = "strict",
               httponly: bool = True) -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, secure=secure,
                        httponly=httponly, samesite=samesite)


def clear_cookie(response: Response, name: str, *, secure: bool, path: str = "/",
                 samesite: str = "strict", httponly: bool = True) -> None:
    response.delete_cookie(name, path=path, secure=secure, httponly=httponly,
                           samesite=samesite)


def session_dependency(lookup: Callable[[Request, str], Awaitable[T | None]], *,
                       cookie: str | Callable[[Request], str]
                       ) -> Callable[[Request], Awaitable[T | None]]:
    """A FastAPI dependency giving the signed-in person of a session cookie, or None.

    `lookup(request, raw_cookie_value)` finds the live session (and checks what the service
    requires, e.g. CSRF on a state-changing request); it is not called without a cookie.
    """

    async def current(request: Request) -> T | None:
        name = cookie(request) if callable(cookie) else cookie
        raw = request.cookies.get(name)
        if not raw:
            return None
        return await lookup(request, raw)

    return current
