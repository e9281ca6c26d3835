"""Passwordless sign-in: ask for a code by e-mail, enter it, get a session; sign out.

Every answer to "send me a code" is the same whether or not the address may sign in
(no code is mailed when it may not), and mail goes out after the answer, so neither
the page nor its timing tells who is a customer.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from desk_runtime.logging import get_logger
from desk_runtime.mail import send_mail
from desk_runtime.sessions import token_hash
from desk_runtime.web import bound_token, new_token, tokens_equal
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from prometheus_client import Counter

from portal.api.web import (
    CurrentCustomer,
    cookie_name,
    csrf_failed,
    language,
    local_path,
    portal_of,
    render,
    session_expiry,
)
from portal.domain.access import may_sign_in, normalise_email
from portal.domain.i18n import LANGUAGES, translate
from portal.domain.login import clean_code, code_hash, new_code

log = get_logger(__name__)
router = APIRouter()

CODES = Counter("desk_portal_login_codes_total", "Sign-in code requests by outcome", ["outcome"])
SIGN_INS = Counter("desk_portal_sign_in_attempts_total", "Codes entered, by outcome", ["outcome"])
MAIL_FAILED = Counter("desk_portal_login_mail_failures_total", "Sign-in mails SMTP refused")

# attempt, session, CSRF and device tokens are bearer secrets: 256 bits each
TOKEN_BYTES = 32

_background: set[asyncio.Task] = set()


def _pre_token(request: Request) -> str | None:
    return request.cookies.get(cookie_name(portal_of(request).settings, "pre"))


def _login_page(request: Request, status: int = 200, *, error: str | None = None,
                email: str = "", next_path: str = "/") -> Response:
    portal = portal_of(request)
    pre = _pre_token(request) or new_token(TOKEN_BYTES)
    response = render(request, "login.html", status, csrf=bound_token("login", pre,
                                                                      portal.secret),
                      error=error, email=email, next_path=next_path)
    portal.set_cookie(response, "pre", pre, max_age=24 * 3600, path="/login")
    return response


@router.get("/login")
async def login_form(request: Request, customer: CurrentCustomer, next: str = "/"
                     ) -> Response:
    if customer is not None:
        return RedirectResponse(local_path(next), status_code=303)
    return _login_page(request, next_path=local_path(next))


def _device_proof(device_id: str, email: str, secret: bytes) -> str:
    return bound_token("device", f"{device_id}\n{email}", secret)


def _known_device(request: Request, email: str) -> str | None:
    """The device id when this browser signed in with `email` before (its device cookie)."""
    portal = portal_of(request)
    raw = request.cookies.get(cookie_name(portal.settings, "device")) or ""
    device_id, _, proof = raw.partition(".")
    if not device_id or len(raw) > 200:
        return None
    return device_id if tokens_equal(_device_proof(device_id, email, portal.secret),
                                     proof) else None


async def _allowed(request: Request, email: str) -> bool:
    """Take this code request's place in every limit that applies; False = refuse (429).

    * a browser that signed in with this address before (device cookie): only its own
      allowance, `codes_per_device_per_hour`, so nobody elsewhere can use it up;
    * anybody else: `codes_per_address_per_client_per_hour` for this address from this
      client address, `codes_per_client_per_hour` from this client address in all, and
      `codes_per_address_per_hour` for this address from everywhere (a flood from many
      addresses stops there, while known browsers still get their codes).

    A refused request gives back whatever it took, so refusals never count and a flood
    that is refused cannot extend itself. Requests for addresses that may not sign in
    count like the others: the answer must not tell them apart.
    """
    portal = portal_of(request)
    settings = portal.settings
    now = datetime.now(UTC)
    since = now - timedelta(hours=1)
    device = _known_device(request, email)
    if device is not None:
        limits = [(f"device:{device}:{email}", settings.codes_per_device_per_hour)]
    else:
        client = portal.client_address(request)
        limits = [(f"pair:{client}:{email}", settings.codes_per_address_per_client_per_hour),
                  (f"client:{client}", settings.codes_per_client_per_hour),
                  (f"address:{email}", settings.codes_per_address_per_hour)]
    mark = new_token(TOKEN_BYTES)
    taken: list[str] = []
    for key, limit in limits:
        if not await portal.repo.take_slot(key, limit, mark, now, since):
            for done in taken:
                await portal.repo.release_slot(done, mark)
            return False
        taken.append(key)
    return True


@router.post("/login")
async def request_code(request: Request) -> Response:
    portal = portal_of(request)
    form = await request.form()
    next_path = local_path(str(form.get("next") or "/"))
    pre = _pre_token(request)
    if not pre or not tokens_equal(bound_token("login", pre, portal.secret), form.get("csrf")):
        return csrf_failed(request, "login")
    raw = str(form.get("email") or "")
    email = normalise_email(raw)
    if email is None:
        return _login_page(request, 400, error="login.bad_email", email=raw[:254],
                           next_path=next_path)
    if not await _allowed(request, email):
        CODES.labels("rate_limited").inc()
        return _login_page(request, 429, error="login.limited", email=email,
                           next_path=next_path)

    attempt_token = new_token(TOKEN_BYTES)
    attempt_id = token_hash(attempt_token)
    settings = portal.settings
    now = datetime.now(UTC)
    code = new_code() if may_sign_in(email, await portal.access()) else None
    await portal.repo.record_login_code(
        attempt_id, email=email,
        code_hash=code_hash(attempt_id, code, portal.secret) if code else None,
        next_path=next_path, now=now,
        expires_at=now + timedelta(minutes=settings.login_code_minutes))
    if code is not None:
        CODES.labels("sent").inc()
        link = f"{portal.public_base()}/login/code?c={code}"
        task = asyncio.create_task(_mail_code(request, email, code, link))
        _background.add(task)
        task.add_done_callback(_background.discard)
    else:
        CODES.labels("refused").inc()
    response = RedirectResponse("/login/code", status_code=303)
    portal.set_cookie(response, "attempt", attempt_token,
                      max_age=int(settings.login_code_minutes * 60), path="/login")
    return response


async def _mail_code(request: Request, email: str, code: str, link: str) -> None:
    portal = portal_of(request)
    lang = language(request)
    msg = EmailMessage()
    msg["From"] = portal.settings.mail_from
    msg["To"] = email
    msg["Subject"] = translate("mail.subject", lang, code=code)
    msg["X-Desk-Origin"] = "portal"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(translate("mail.body", lang, code=code, link=link,
                              desk=portal.settings.desk_name,
                              minutes=f"{portal.settings.login_code_minutes:g}"))
    try:
        await send_mail(msg, portal.settings.smtp)
    except Exception as exc:  # noqa: BLE001 (the customer can ask again; counted, logged)
        MAIL_FAILED.inc()
        log.warning("portal.login_mail_failed", error=str(exc))


def _attempt_token(request: Request) -> str | None:
    return request.cookies.get(cookie_name(portal_of(request).settings, "attempt"))


async def _attempt(request: Request) -> tuple[str, dict] | None:
    token = _attempt_token(request)
    if not token or len(token) > 200:
        return None
    doc = await portal_of(request).repo.login_attempt(token_hash(token))
    return (token, doc) if doc is not None else None


def _code_page(request: Request, token: str, attempt: dict, status: int = 200,
               error: str | None = None, code: str = "") -> Response:
    portal = portal_of(request)
    return render(request, "login_code.html", status,
                  csrf=bound_token("code", token, portal.secret), email=attempt["email"],
                  error=error, code=code, minutes=f"{portal.settings.login_code_minutes:g}")


@router.get("/login/code")
async def code_form(request: Request, c: str = "") -> Response:
    found = await _attempt(request)
    if found is None:
        return RedirectResponse("/login", status_code=303)
    token, attempt = found
    # the mailed link only fills the code in: a GET never signs in (mail scanners follow links)
    return _code_page(request, token, attempt, code=clean_code(c) or "")


@router.post("/login/code")
async def verify_code(request: Request) -> Response:
    portal = portal_of(request)
    settings = portal.settings
    form = await request.form()
    found = await _attempt(request)
    token = _attempt_token(request)
    if found is None or not token:
        return RedirectResponse("/login", status_code=303)
    token, attempt = found
    if not tokens_equal(bound_token("code", token, portal.secret), form.get("csrf")):
        return csrf_failed(request, "login_code")
    now = datetime.now(UTC)
    counted = await portal.repo.count_guess(attempt["_id"], now,
                                            settings.login_code_max_guesses)
    if counted is None:
        SIGN_INS.labels("dead").inc()
        return _code_page(request, token, attempt, 400, error="login.dead")
    code = clean_code(str(form.get("code") or ""))
    right = (code is not None and counted.get("code_hash") is not None
             and tokens_equal(code_hash(counted["_id"], code, portal.secret),
                              counted["code_hash"]))
    if not right:
        SIGN_INS.labels("wrong").inc()
        spent = counted["guesses"] >= settings.login_code_max_guesses
        return _code_page(request, token, attempt, 400,
                          error="login.dead" if spent else "login.wrong")
    if not await portal.repo.consume_login_code(counted["_id"], now):  # a parallel post won
        SIGN_INS.labels("dead").inc()
        return _code_page(request, token, attempt, 400, error="login.dead")
    SIGN_INS.labels("success").inc()
    session_token = new_token(TOKEN_BYTES)
    await portal.repo.open_session(
        token_hash(session_token), email=counted["email"], csrf=new_token(TOKEN_BYTES),
        now=now, expires_at=session_expiry(settings), client=portal.client_address(request))
    response = RedirectResponse(local_path(counted.get("next")), status_code=303)
    portal.set_cookie(response, "session", session_token,
                      max_age=int(settings.session_hours * 3600))
    # this browser has proved it reads the address's mail: it keeps its own code allowance
    device_id = (request.cookies.get(cookie_name(settings, "device")) or "").partition(".")[0]
    device_id = device_id if 20 <= len(device_id) <= 64 else new_token(TOKEN_BYTES)
    portal.set_cookie(response, "device",
                      f"{device_id}.{_device_proof(device_id, counted['email'], portal.secret)}",
                      max_age=settings.device_days * 24 * 3600, path="/login")
    portal.clear_cookie(response, "attempt", path="/login")
    return response


@router.post("/logout")
async def sign_out(request: Request, customer: CurrentCustomer) -> Response:
    portal = portal_of(request)
    form = await request.form()
    if customer is None:
        return RedirectResponse("/login", status_code=303)
    if not tokens_equal(customer.csrf, form.get("csrf")):
        return csrf_failed(request, "logout", customer)
    await portal.repo.close_session(customer.session_id)
    response = RedirectResponse("/login", status_code=303)
    portal.clear_cookie(response, "session")
    return response


@router.get("/lang/{code}")
async def switch_language(request: Request, code: str, next: str = "/") -> Response:
    portal = portal_of(request)
    target = local_path(next)
    response = RedirectResponse(target, status_code=303)
    if code in LANGUAGES:
        portal.set_cookie(response, "lang", code, max_age=365 * 24 * 3600)
    return response
