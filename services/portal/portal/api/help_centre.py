"""The help centre: boards' knowledge-base articles, searched and read on the portal.

Boards owns the articles; the portal reads them through boards' documented API
(`/v1/kb/help/...`) with its own credential, telling boards who is reading: signed in or
not, and the customer's groups (the portal owns both). Boards returns only what that
reader may see, so an article meant for another group, or for agents, is a 404 here
exactly like one that does not exist. A public article or topic needs no sign-in: its
link can be shared. A restricted one asks an anonymous reader to sign in first (the same
answer for a missing one, so the link tells nothing).

While a customer types a request's subject, `/help/suggest` offers matching articles;
"This solved my problem" (`POST /help/solved`) closes the draft without a request and
publishes `request.deflected` for the statistics.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from prometheus_client import Counter

from portal import commands
from portal.api.web import (
    CurrentCustomer,
    Customer,
    csrf_failed,
    csrf_ok,
    language,
    not_found,
    portal_of,
    render,
    to_login,
)
from portal.domain.access import groups_of

router = APIRouter()

HELP_CALLS = Counter("desk_portal_help_calls_total", "The help centre's calls to boards' "
                     "knowledge-base API, by outcome (ok, not_found, failed).", ["outcome"])


class HelpUnavailable(Exception):
    """Boards did not answer (or the help centre is not configured)."""


async def _reader(request: Request, customer: Customer | None) -> dict[str, str]:
    if customer is None:
        return {"signed_in": "false", "groups": ""}
    access = await portal_of(request).access()
    return {"signed_in": "true", "groups": ",".join(sorted(groups_of(customer.email, access)))}


async def _kb(request: Request, customer: Customer | None, path: str,
              **params: Any) -> dict | None:
    """One call to boards' help API as this reader; None for a 404."""
    settings = portal_of(request).settings
    if not settings.boards_token:
        raise HelpUnavailable("PORTAL_BOARDS_TOKEN is not set")
    query = await _reader(request, customer) | {k: str(v) for k, v in params.items()}
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            r = await client.get(
                settings.boards_url.rstrip("/") + "/v1/kb/help" + path, params=query,
                headers={"Authorization": f"Bearer {settings.boards_token}",
                         "X-Correlation-ID": request.state.correlation_id})
    except httpx.HTTPError as exc:
        HELP_CALLS.labels("failed").inc()
        raise HelpUnavailable(str(exc)) from exc
    if r.status_code == 404:
        HELP_CALLS.labels("not_found").inc()
        return None
    if r.status_code != 200:
        HELP_CALLS.labels("failed").inc()
        raise HelpUnavailable(f"boards answered {r.status_code}")
    HELP_CALLS.labels("ok").inc()
    return r.json()


def _unavailable(request: Request, customer: Customer | None) -> Response:
    return render(request, "error.html", 503, customer=customer, code=503,
                  title_key="help.title", text_key="help.unavailable")


def _service_names(services: dict, lang: str) -> dict[str, str]:
    return {sid: s.name.get(lang) for sid, s in services.items()}


@router.get("/help")
async def help_home(request: Request, customer: CurrentCustomer, q: str = "") -> Response:
    lang = language(request)
    q = q.strip()[:200]
    names = _service_names(await portal_of(request).catalog(), lang)
    try:
        if q:
            found = await _kb(request, customer, "/search", q=q, lang=lang, limit=20)
            return render(request, "help.html", customer=customer, q=q,
                          results=(found or {}).get("items", []), names=names)
        counts = await _kb(request, customer, "/categories") or {"items": {}}
        latest = await _kb(request, customer, "/latest", limit=10) or {"items": []}
    except HelpUnavailable:
        return _unavailable(request, customer)
    topics = sorted(((sid, names[sid], n) for sid, n in counts["items"].items() if sid in names),
                    key=lambda t: t[1].lower())
    return render(request, "help.html", customer=customer, q="", results=None,
                  topics=topics, latest=latest["items"], names=names)


@router.get("/help/articles/{article_id}")
async def help_article(request: Request, article_id: str, customer: CurrentCustomer,
                       solved: int = 0, draft: str = "") -> Response:
    try:
        doc = await _kb(request, customer, "/articles/" + quote(article_id[:100], safe=""))
    except HelpUnavailable:
        return _unavailable(request, customer)
    if doc is None:
        if customer is None:  # perhaps the customer's group may read it: sign in first
            return to_login(request)
        return not_found(request, customer)
    names = _service_names(await portal_of(request).catalog(), language(request))
    return render(request, "help_article.html", customer=customer, article=doc,
                  names=names, solved=bool(solved), draft=draft[:100])


@router.get("/help/categories/{service_id}")
async def help_category(request: Request, service_id: str, customer: CurrentCustomer
                        ) -> Response:
    names = _service_names(await portal_of(request).catalog(), language(request))
    if service_id not in names:
        return not_found(request, customer)
    try:
        found = await _kb(request, customer, "/categories/" + quote(service_id, safe=""))
    except HelpUnavailable:
        return _unavailable(request, customer)
    items = (found or {}).get("items", [])
    if not items and customer is None:
        return to_login(request)
    if not items:
        return not_found(request, customer)
    return render(request, "help_category.html", customer=customer, items=items,
                  service_id=service_id, name=names[service_id], names=names)


@router.get("/help/suggest")
async def suggest(request: Request, customer: CurrentCustomer, q: str = "",
                  service: str = "") -> Response:
    """Articles matching what is typed so far (JSON for the request form's script)."""
    q = q.strip()[:200]
    if len(q) < 3:
        return JSONResponse({"items": []})
    try:
        found = await _kb(request, customer, "/search", q=q, lang=language(request), limit=5)
    except HelpUnavailable:
        return JSONResponse({"items": []}, status_code=503)
    items = [{"id": a["id"], "url": a["path"], "title": a["title_marked"],
              "snippet": a["snippet"]} for a in (found or {}).get("items", [])]
    return JSONResponse({"items": items}, headers={"Cache-Control": "no-store"})


@router.post("/help/solved")
async def solved(request: Request, customer: CurrentCustomer) -> Response:
    """The customer's draft request is closed: an article answered it."""
    if customer is None:
        return to_login(request)
    form = await request.form()
    if not csrf_ok(customer, form.get("csrf")):
        return csrf_failed(request, "help_solved", customer)
    article_id = str(form.get("article_id") or "")[:100]
    try:
        doc = await _kb(request, customer, "/articles/" + quote(article_id, safe="")) \
            if article_id else None
    except HelpUnavailable:
        return _unavailable(request, customer)
    if doc is None:
        return not_found(request, customer)
    service_id = str(form.get("service_id") or "")[:100]
    if service_id not in await portal_of(request).catalog():
        service_id = ""
    await commands.record_deflection(portal_of(request).runtime, article_id=doc["id"],
                                     service_id=service_id or None, language=language(request),
                                     correlation_id=request.state.correlation_id)
    return RedirectResponse(f"/help/articles/{quote(doc['id'], safe='')}?solved=1",
                            status_code=303)
