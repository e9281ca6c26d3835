"""What every portal page shares: templates, language, the signed-in customer, CSRF, headers."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from desk_contracts.access import AddressSet
from desk_contracts.catalog import ServiceDefinition
from desk_runtime.service import ServiceRuntime
from desk_runtime.web import (
    clear_cookie,
    negotiate_language,
    session_dependency,
    set_cookie,
    template_environment,
    tokens_equal,
)
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from prometheus_client import Counter
from starlette.datastructures import MutableHeaders

from portal.domain.access import AccessConfig, Organisation
from portal.domain.i18n import LANGUAGES, translate
from portal.domain.proxies import client_address, networks
from portal.repository import PortalRepository
from portal.settings import PortalSettings

PACKAGE = Path(__file__).resolve().parents[1]

CSRF_REJECTED = Counter("desk_portal_csrf_rejected_total",
                        "Portal form posts refused for a missing or wrong CSRF token", ["form"])

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors {ancestors}")


def cookie_name(settings: PortalSettings, name: str) -> str:
    return f"{settings.cookie_prefix}_{name}"


@dataclass(frozen=True)
class Customer:
    email: str
    session_id: str
    csrf: str


class Portal:
    """The portal's dependencies, built once in the app factory and kept in app.state."""

    def __init__(self, runtime: ServiceRuntime, settings: PortalSettings):
        self.runtime = runtime
        self.settings = settings
        self.repo = PortalRepository(runtime.db)
        self.secret = settings.link_secret.encode()
        self._catalog: tuple[float, dict[str, ServiceDefinition]] = (0.0, {})
        self._access: tuple[float, AccessConfig] = (0.0, AccessConfig())
        self.trusted_proxies = networks(settings.trusted_proxies)

    async def catalog(self) -> dict[str, ServiceDefinition]:
        """The catalog copy, cached for a second (every page needs it; it rarely changes)."""
        at, services = self._catalog
        if time.monotonic() - at < 1.0:
            return services
        services = await self.repo.services()
        self._catalog = (time.monotonic(), services)
        return services

    async def access(self) -> AccessConfig:
        """The stored access configuration, cached for a second (an admin's change shows
        within that second on every replica, without a restart)."""
        at, config = self._access
        if at and time.monotonic() - at < 1.0:
            return config
        doc = await self.repo.access_doc()
        config = access_config_of(doc) if doc else AccessConfig.seed(self.settings)
        self._access = (time.monotonic(), config)
        return config

    def forget_access(self) -> None:
        self._access = (0.0, AccessConfig())

    def client_address(self, request: Request) -> str:
        return client_address(request.client.host if request.client else None,
                              request.headers.get("x-forwarded-for"), self.trusted_proxies)

    async def customer(self, session_token: str) -> Customer | None:
        """Who a session cookie's token signs in, unless it is unknown or expired."""
        doc = await self.repo.live_session(session_token)
        if doc is None:
            return None
        return Customer(email=doc["email"], session_id=doc["_id"], csrf=doc["csrf"])

    def public_base(self) -> str:
        """Links in mail and the widget point here: configuration only, never Host or
        X-Forwarded-* (a forged header would otherwise mail a victim an attacker's link)."""
        return self.settings.public_base()

    # Lax, not the desk's Strict default: the sign-in link in the code mail and the links
    # in notifications are top-level navigations from another site, which must arrive
    # signed in (forms are guarded by CSRF tokens instead).
    def set_cookie(self, response: Response, name: str, value: str, *, max_age: int,
                   path: str = "/") -> None:
        set_cookie(response, cookie_name(self.settings, name), value, max_age=max_age,
                   path=path, secure=self.settings.cookie_secure, samesite="lax")

    def clear_cookie(self, response: Response, name: str, path: str = "/") -> None:
        clear_cookie(response, cookie_name(self.settings, name), path=path,
                     secure=self.settings.cookie_secure, samesite="lax")


def access_config_of(doc: dict) -> AccessConfig:
    return AccessConfig(
        allow=AddressSet.model_validate(doc.get("allow") or {}),
        groups={k: AddressSet.model_validate(v) for k, v in (doc.get("groups") or {}).items()},
        revision=doc.get("revision", 1),
        organisations={k: Organisation.from_doc(k, v)
                       for k, v in (doc.get("organisations") or {}).items()})


def portal_of(request: Request) -> Portal:
    return request.app.state.portal


async def _customer_of_session(request: Request, token: str) -> Customer | None:
    return await portal_of(request).customer(token)


# the signed-in customer of a request (None when signed out), as a route's dependency
current_customer = session_dependency(
    _customer_of_session,
    cookie=lambda request: cookie_name(request.app.state.settings, "session"))
CurrentCustomer = Annotated[Customer | None, Depends(current_customer)]


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    """The cookie (set by the switcher) wins; then the best of Accept-Language; then English."""
    return negotiate_language(LANGUAGES, cookie=cookie, accept_language=accept_language)


def language(request: Request) -> str:
    settings: PortalSettings = request.app.state.settings
    return choose_language(request.cookies.get(cookie_name(settings, "lang")),
                           request.headers.get("accept-language"))


def local_path(target: str | None, default: str = "/") -> str:
    """Only same-site paths are followed after sign-in or a language switch (no open redirect)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return default
    return target


def render(request: Request, template: str, status_code: int = 200,
           customer: Customer | None = None, csrf: str | None = None,
           **context: Any) -> HTMLResponse:
    lang = language(request)
    settings: PortalSettings = request.app.state.settings

    def t(key: str, **values: object) -> str:
        return translate(key, lang, **values)

    html = TEMPLATES.get_template(template).render(
        t=t, lang=lang, customer=customer, csrf=csrf or (customer.csrf if customer else ""),
        path=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        desk_name=settings.desk_name, **context)
    return HTMLResponse(html, status_code=status_code)


def fmt_time(value: datetime | None) -> str:
    """UTC inside; shown as UTC with its zone so nobody guesses (the page has no JS clock)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


TEMPLATES = template_environment(PACKAGE / "templates", fmt_time=fmt_time)


def not_found(request: Request, customer: Customer | None = None) -> HTMLResponse:
    return render(request, "error.html", 404, customer=customer, code=404,
                  title_key="error.404", text_key="error.404_text")


def csrf_failed(request: Request, form: str, customer: Customer | None = None) -> HTMLResponse:
    CSRF_REJECTED.labels(form).inc()
    return render(request, "error.html", 403, customer=customer, code=403,
                  title_key="error.403", text_key="error.403_text")


def csrf_ok(customer: Customer, submitted: Any) -> bool:
    return tokens_equal(customer.csrf, submitted if isinstance(submitted, str) else None)


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":  # a form posted after the session ended: start over at home
        target = "/"
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def session_expiry(settings: PortalSettings) -> datetime:
    return datetime.now(UTC) + timedelta(hours=settings.session_hours)


def security_headers(headers: MutableHeaders, path: str, settings: PortalSettings) -> None:
    """Every portal answer's security headers (`headers`: a response's, to set them on)."""
    embeddable = path == "/widget"
    ancestors = settings.widget_frame_ancestors if embeddable else "'none'"
    headers["Content-Security-Policy"] = CSP.format(ancestors=ancestors)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if not embeddable:
        headers["X-Frame-Options"] = "DENY"
    if headers.get("content-type", "").startswith("text/html"):
        headers["Cache-Control"] = "no-store"


class SecurityHeaders:
    """A plain ASGI middleware putting `security_headers` on every answer (Starlette's
    `@app.middleware("http")` would run each request's app in a task of its own)."""

    def __init__(self, app, settings: PortalSettings):
        self.app, self.settings = app, settings

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", ()))}
                security_headers(MutableHeaders(scope=message), scope["path"], self.settings)
            await send(message)

        await self.app(scope, receive, with_headers)
