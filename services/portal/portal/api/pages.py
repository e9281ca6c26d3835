"""The customer's pages: home, new request, request page (reply, rate, follow-up), settings.

Every page that names a request answers 404 unless the signed-in customer may see it,
so another customer's request id looks exactly like one that does not exist.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from desk_contracts.catalog import (
    FieldErrors,
    FieldType,
    ServiceDefinition,
    StatusCategory,
    validate_fields,
)
from desk_contracts.channels import EMAIL, customer_channels
from desk_contracts.channels import label as channel_label
from desk_contracts.signed_link import verify_link
from desk_runtime.web import bound_token, tokens_equal
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from portal import commands
from portal.api.web import (
    PACKAGE,
    CurrentCustomer,
    Customer,
    Portal,
    csrf_failed,
    csrf_ok,
    language,
    not_found,
    portal_of,
    render,
    to_login,
)
from portal.attachments import (
    UploadError,
    chosen_files,
    form_too_large,
    hopeless_body,
    upload_all,
)
from portal.domain.access import (
    may_see_request,
    may_use_service,
    organisation_of,
    requests_filters,
)
from portal.domain.i18n import TEXT, field_error, translate

router = APIRouter()

CLOSED = StatusCategory.DONE.value


def status_label(doc: dict, services: dict[str, ServiceDefinition], lang: str) -> str:
    service = services.get(doc.get("service_id") or "")
    if service is not None:
        return service.status_name(doc["status_category"], lang)
    return doc.get("customer_status") or doc["status_category"]


async def visible_services(customer: Customer, services: dict[str, ServiceDefinition],
                           portal: Portal, lang: str) -> list[tuple[str, list[ServiceDefinition]]]:
    """The catalog the customer may use, grouped, in a stable order."""
    groups: dict[str, list[ServiceDefinition]] = {}
    access = await portal.access()
    for s in services.values():
        if may_use_service(customer.email, s, access):
            name = s.group.get(lang) if s.group else ""
            groups.setdefault(name, []).append(s)
    # within a section: the admin's order first, then by name
    def place(s: ServiceDefinition) -> tuple[int, str]:
        return (s.order, s.name.get(lang).lower())
    return [(g, sorted(items, key=place))
            for g, items in sorted(groups.items(), key=lambda kv: (kv[0] == "", kv[0].lower()))]


async def list_requests(portal: Portal, customer: Customer, *, closed: bool, page: int,
                        limit: int) -> tuple[list[dict], bool]:
    return await portal.repo.requests_of_customer(
        requests_filters(customer.email, await portal.access()), closed=closed, page=page, limit=limit)


async def pending_submissions(portal: Portal, customer: Customer) -> list[dict]:
    """Requests sent in the last day whose card has not arrived in the read model yet."""
    return await portal.repo.submissions_awaiting_card(
        customer.email, since=datetime.now(UTC) - timedelta(days=1))


def _page(request: Request, name: str) -> int:
    try:
        return max(0, min(int(request.query_params.get(name, "0")), 10_000))
    except ValueError:
        return 0


@router.get("/")
async def home(request: Request, customer: CurrentCustomer) -> Response:
    portal = portal_of(request)
    if customer is None:
        return to_login(request)
    lang = language(request)
    services = await portal.catalog()
    limit = portal.settings.page_size
    open_page, closed_page = _page(request, "open"), _page(request, "closed")
    current, more_current = await list_requests(portal, customer, closed=False,
                                                page=open_page, limit=limit)
    closed, more_closed = await list_requests(portal, customer, closed=True,
                                              page=closed_page, limit=limit)
    for doc in current + closed:
        doc["status_label"] = status_label(doc, services, lang)
    org = organisation_of(customer.email, await portal.access())
    return render(request, "home.html", customer=customer,
                  groups=await visible_services(customer, services, portal, lang),
                  current=current, closed=closed, pending=await pending_submissions(
                      portal, customer),
                  open_page=open_page, closed_page=closed_page, more_current=more_current,
                  more_closed=more_closed, organisation=org[1].name if org else None,
                  sent=request.query_params.get("sent") == "1")


# ---- new request -------------------------------------------------------------------------

def _form_values(service: ServiceDefinition, form: Any) -> dict[str, Any]:
    """The catalog fields as submitted (prefixed `f_` so they never collide with ours)."""
    values: dict[str, Any] = {}
    for f in service.fields:
        name = f"f_{f.key}"
        if f.type == FieldType.MULTISELECT:
            chosen = [str(v) for v in form.getlist(name) if str(v)]
            if chosen:
                values[f.key] = chosen
        elif f.type == FieldType.CHECKBOX:
            # a hidden "false" precedes the box, so an unticked box is an explicit answer
            ticked = [str(v) for v in form.getlist(name)]
            if ticked:
                values[f.key] = "true" if "true" in ticked else "false"
        else:
            raw = form.get(name)
            if isinstance(raw, str) and raw.strip():
                values[f.key] = raw
    return values


def _form_page(request: Request, customer: Customer, service: ServiceDefinition, *,
               values: dict[str, Any], errors: dict[str, str], subject: str = "",
               text: str = "", due_date: str = "", status: int = 200) -> Response:
    lang = language(request)
    fields = []
    labels = {f.key: f.label.get(lang) for f in service.fields}
    for f in service.fields:
        only_if = None
        if f.condition is not None:
            other = next(o for o in service.fields if o.key == f.condition.field)
            option_labels = {o.value: o.label.get(lang) for o in other.options}
            only_if = translate("new.only_if", lang, field=labels[other.key], values=", ".join(
                option_labels.get(v, v) for v in f.condition.in_))
        fields.append({"def": f, "label": f.label.get(lang),
                       "help": f.help.get(lang) if f.help else None, "only_if": only_if,
                       "value": values.get(f.key),
                       "options": [(o.value, o.label.get(lang)) for o in f.options],
                       "error": errors.get(f.key)})
    return render(request, "new_request.html", status, customer=customer, service=service,
                  service_name=service.name.get(lang),
                  description=service.description.get(lang) if service.description else "",
                  fields=fields, errors=errors, subject=subject, text=text, due_date=due_date,
                  min_date=date.today().isoformat())


async def _service_for(portal: Portal, customer: Customer, service_id: str
                       ) -> ServiceDefinition | None:
    service = (await portal.catalog()).get(service_id)
    if service is None or not may_use_service(customer.email, service, await portal.access()):
        return None
    return service


async def _new_request_service(request: Request, customer: Customer | None, service_id: str
                               ) -> tuple[Customer, ServiceDefinition] | Response:
    """The checks of the new request form and its post: signed in, and a service this
    customer may use (any other id looks like one that does not exist)."""
    if customer is None:
        return to_login(request)
    service = await _service_for(portal_of(request), customer, service_id)
    if service is None:
        return not_found(request, customer)
    return customer, service


@router.get("/services/{service_id}/new")
async def new_request_form(request: Request, service_id: str, customer: CurrentCustomer
                           ) -> Response:
    checked = await _new_request_service(request, customer, service_id)
    if isinstance(checked, Response):
        return checked
    customer, service = checked
    return _form_page(request, customer, service, values={}, errors={})


@router.post("/services/{service_id}/new")
async def submit_request(request: Request, service_id: str, customer: CurrentCustomer
                         ) -> Response:
    checked = await _new_request_service(request, customer, service_id)
    if isinstance(checked, Response):
        return checked
    customer, service = checked
    portal = portal_of(request)
    lang = language(request)
    if hopeless_body(request.headers.get("content-length"), portal.settings):
        error = form_too_large(portal.settings)
        return _form_page(request, customer, service, values={}, status=413,
                          errors={"attachments": translate(error.key, lang, **error.values)})
    form = await request.form(max_part_size=portal.settings.max_attachment_bytes + 1024)
    if not csrf_ok(customer, form.get("csrf")):
        return csrf_failed(request, "new_request", customer)
    subject = str(form.get("subject") or "").strip()
    text = str(form.get("text") or "").strip()
    due_date = str(form.get("due_date") or "").strip()
    values = _form_values(service, form)
    errors: dict[str, str] = {}
    try:
        cleaned = validate_fields(service, values)
    except FieldErrors as exc:
        cleaned = {}
        errors = {k: field_error(v, lang) for k, v in exc.errors.items()}
    if not subject:
        errors["subject"] = translate("error.required", lang)
    elif len(subject) > 500 or "\n" in subject:
        errors["subject"] = field_error("must be at most 500 characters", lang)
    if len(text) > 100_000:
        errors["text"] = field_error("must be at most 100000 characters", lang)
    if due_date and service.allow_due_date:
        try:
            if date.fromisoformat(due_date) < date.today():
                errors["due_date"] = translate("error.past_date", lang)
        except ValueError:
            errors["due_date"] = field_error("must be a date (YYYY-MM-DD)", lang)
    if not errors:
        try:
            attachments = await upload_all(portal.settings,
                                           chosen_files(form.getlist("attachments")))
        except UploadError as exc:
            errors["attachments"] = translate(exc.key, lang, **exc.values)
    if errors:
        return _form_page(request, customer, service, values=values, errors=errors,
                          subject=subject, text=text, due_date=due_date, status=422)
    await commands.submit_request(
        portal.runtime, email=customer.email, service_id=service.id, subject=subject,
        text=text, fields=cleaned, attachments=attachments,
        due_date=due_date if service.allow_due_date and due_date else None, language=lang,
        correlation_id=request.state.correlation_id)
    return RedirectResponse("/?sent=1", status_code=303)


# ---- request page ------------------------------------------------------------------------

async def _visible_request(portal: Portal, customer: Customer, card_id: str) -> dict | None:
    if len(card_id) > 100:
        return None
    doc = await portal.repo.request_by_card(card_id)
    if doc is None or not may_see_request(customer.email, doc, await portal.access()):
        return None
    return doc


async def _request_seen(request: Request, customer: Customer | None, card_id: str
                        ) -> tuple[Customer, dict] | Response:
    """The checks of every page about one request: signed in, and allowed to see it (any
    other request looks like one that does not exist)."""
    if customer is None:
        return to_login(request)
    doc = await _visible_request(portal_of(request), customer, card_id)
    if doc is None:
        return not_found(request, customer)
    return customer, doc


async def _request_page(request: Request, customer: Customer, doc: dict, *, status: int = 200,
                        error: str | None = None, notice: str | None = None) -> Response:
    portal = portal_of(request)
    lang = language(request)
    services = await portal.catalog()
    service = services.get(doc.get("service_id") or "")
    messages = await portal.repo.conversation(doc["_id"])
    echoed = {m.get("reply_id") for m in messages if m.get("reply_id")}
    pending = [s for s in await portal.repo.replies_sent_to(doc["_id"])
               if s["_id"] not in echoed]
    for m in messages:
        for a in m.get("attachments") or []:
            if (a.get("url") or "").startswith("/"):  # intake without a public URL of its own
                a["url"] = portal.settings.intake_url.rstrip("/") + a["url"]
        author = m.get("author") or {}
        m["mine"] = author.get("kind") == "customer" and author.get("id") == customer.email
    fields = []
    shown = doc.get("fields") or {}
    if service is not None:
        for f in service.fields:
            if f.key in shown and f.show_to_customer:
                value = shown[f.key]
                labels = {o.value: o.label.get(lang) for o in f.options}
                if isinstance(value, list):
                    value = ", ".join(labels.get(str(v), str(v)) for v in value)
                elif isinstance(value, bool):
                    value = translate("yes" if value else "no", lang)
                else:
                    value = labels.get(str(value), str(value))
                fields.append((f.label.get(lang), value))
    else:
        fields = [(k, str(v)) for k, v in shown.items()]
    parent = None
    if doc.get("parent_id"):
        parent = await _visible_request(portal, customer, doc["parent_id"])
    children = await portal.repo.follow_ups_of(
        doc["_id"], requests_filters(customer.email, await portal.access()))
    rating = await portal.repo.rating_of(doc["_id"])
    return render(request, "request.html", status, customer=customer, req=doc,
                  status_text=status_label(doc, services, lang),
                  service_name=service.name.get(lang) if service else "",
                  fields=fields, messages=messages, pending=pending, rating=rating,
                  closed=doc["status_category"] == CLOSED, parent=parent, children=children,
                  error=error, notice=notice)


@router.get("/requests/{card_id}")
async def request_page(request: Request, card_id: str, customer: CurrentCustomer) -> Response:
    seen = await _request_seen(request, customer, card_id)
    if isinstance(seen, Response):
        return seen
    customer, doc = seen
    notice = {"replied": "req.reply_sent", "rated": "rate.thanks"}.get(
        request.query_params.get("done", ""))
    return await _request_page(request, customer, doc, notice=notice)


async def _posted(request: Request, customer: Customer | None, card_id: str, form_name: str,
                  *, files: bool = False) -> tuple[Customer, dict, Any] | Response:
    """The common checks of a post about one request: signed in, allowed to see it, CSRF."""
    seen = await _request_seen(request, customer, card_id)
    if isinstance(seen, Response):
        return seen
    customer, doc = seen
    portal = portal_of(request)
    if files and hopeless_body(request.headers.get("content-length"), portal.settings):
        error = form_too_large(portal.settings)
        return await _request_page(request, customer, doc, status=413, error=translate(
            error.key, language(request), **error.values))
    form = await request.form(max_part_size=portal.settings.max_attachment_bytes + 1024) \
        if files else await request.form()
    if not csrf_ok(customer, form.get("csrf")):
        return csrf_failed(request, form_name, customer)
    return customer, doc, form


@router.post("/requests/{card_id}/reply")
async def reply(request: Request, card_id: str, customer: CurrentCustomer) -> Response:
    checked = await _posted(request, customer, card_id, "reply", files=True)
    if isinstance(checked, Response):
        return checked
    customer, doc, form = checked
    portal = portal_of(request)
    lang = language(request)
    text = str(form.get("text") or "").strip()
    files = chosen_files(form.getlist("attachments"))
    if not text and not files:
        return await _request_page(request, customer, doc, status=422,
                                   error=translate("req.empty_text", lang))
    if len(text) > 100_000:
        return await _request_page(request, customer, doc, status=422,
                                   error=field_error("must be at most 100000 characters", lang))
    try:
        attachments = await upload_all(portal.settings, files)
    except UploadError as exc:
        return await _request_page(request, customer, doc, status=422,
                                   error=translate(exc.key, lang, **exc.values))
    await commands.submit_reply(portal.runtime, email=customer.email, card_id=doc["_id"],
                                text=text, attachments=attachments,
                                correlation_id=request.state.correlation_id)
    return RedirectResponse(f"/requests/{doc['_id']}?done=replied#conversation",
                            status_code=303)


def _score(raw: Any) -> int | None:
    try:
        score = int(str(raw))
    except ValueError:
        return None
    return score if 1 <= score <= 5 else None


@router.post("/requests/{card_id}/rating")
async def rate_signed_in(request: Request, card_id: str, customer: CurrentCustomer
                         ) -> Response:
    checked = await _posted(request, customer, card_id, "rating")
    if isinstance(checked, Response):
        return checked
    customer, doc, form = checked
    lang = language(request)
    score = _score(form.get("score"))
    if doc["status_category"] != CLOSED or score is None:
        return await _request_page(request, customer, doc, status=422,
                                   error=translate("rate.bad", lang))
    comment = str(form.get("comment") or "").strip()[:5000] or None
    await commands.rate(portal_of(request).runtime, card_id=doc["_id"], score=score,
                        comment=comment, rated_by=customer.email,
                        correlation_id=request.state.correlation_id)
    return RedirectResponse(f"/requests/{doc['_id']}?done=rated", status_code=303)


@router.post("/requests/{card_id}/follow-up")
async def follow_up(request: Request, card_id: str, customer: CurrentCustomer) -> Response:
    checked = await _posted(request, customer, card_id, "follow_up", files=True)
    if isinstance(checked, Response):
        return checked
    customer, doc, form = checked
    portal = portal_of(request)
    lang = language(request)
    text = str(form.get("text") or "").strip()
    if doc["status_category"] != CLOSED or not text:
        return await _request_page(request, customer, doc, status=422,
                                   error=translate("req.empty_text", lang))
    service = await _service_for(portal, customer, doc.get("service_id") or "")
    if service is None:
        service_id = "question" if "question" in await portal.catalog() else doc["service_id"]
    else:
        service_id = service.id
    try:
        attachments = await upload_all(portal.settings,
                                       chosen_files(form.getlist("attachments")))
    except UploadError as exc:
        return await _request_page(request, customer, doc, status=422,
                                   error=translate(exc.key, lang, **exc.values))
    subject = translate("req.followup_subject", lang, number=doc["number"],
                        title=doc["title"])[:500]
    await commands.submit_request(
        portal.runtime, email=customer.email, service_id=service_id, subject=subject,
        text=text, fields={}, attachments=attachments, due_date=None, language=lang,
        follow_up_of=doc["_id"], correlation_id=request.state.correlation_id)
    return RedirectResponse("/?sent=1", status_code=303)


# ---- rating link from the mail (no session: the signed token is the permission) ----------

async def _rate_link_target(request: Request, card_id: str, token: str) -> dict | None:
    portal = portal_of(request)
    if len(card_id) > 100 or not token or len(token) > 200:
        return None
    if not verify_link("rate", card_id, token, portal.secret):
        return None
    return await portal.repo.request_by_card(card_id)


@router.get("/requests/{card_id}/rate")
async def rate_link_form(request: Request, card_id: str, customer: CurrentCustomer,
                         t: str = "", score: str = "") -> Response:
    """Shows what the click would do; a GET never votes (mail scanners open every link)."""
    portal = portal_of(request)
    doc = await _rate_link_target(request, card_id, t)
    if doc is None:
        return not_found(request, customer)
    # a page of its own (no session needed, none shown): the signed link is the permission
    return render(request, "rate.html", req=doc, score=_score(score), token=t, done=False,
                  csrf=bound_token("rate", f"{card_id}\n{t}", portal.secret))


@router.post("/requests/{card_id}/rate")
async def rate_link_submit(request: Request, card_id: str, customer: CurrentCustomer
                           ) -> Response:
    portal = portal_of(request)
    form = await request.form()
    token = str(form.get("t") or "")
    doc = await _rate_link_target(request, card_id, token)
    if doc is None:
        return not_found(request, customer)
    csrf = bound_token("rate", f"{card_id}\n{token}", portal.secret)
    if not tokens_equal(csrf, form.get("csrf")):
        return csrf_failed(request, "rate_link", customer)
    score = _score(form.get("score"))
    if score is None:
        return render(request, "rate.html", 422, csrf=csrf, req=doc,
                      score=None, token=token, done=False,
                      error=translate("rate.bad", language(request)))
    comment = str(form.get("comment") or "").strip()[:5000] or None
    await commands.rate(portal.runtime, card_id=card_id, score=score, comment=comment,
                        rated_by=doc.get("requester_email"),
                        correlation_id=request.state.correlation_id)
    return render(request, "rate.html", csrf=csrf, req=doc, score=score, token=token,
                  done=True)


# ---- notification settings ---------------------------------------------------------------

def _channel_choices(lang: str) -> list[tuple[str, str]]:
    """The channels a customer may choose (those notify delivers by) with their names: the
    portal's own wording where it has one, else the registry's label."""
    return [(name, translate(f"settings.{name}", lang) if f"settings.{name}" in TEXT
             else channel_label(name, lang)) for name in customer_channels()]


@router.get("/settings/notifications")
async def settings_page(request: Request, customer: CurrentCustomer) -> Response:
    portal = portal_of(request)
    if customer is None:
        return to_login(request)
    saved = await portal.repo.preferences_of(customer.email)
    channels = saved if saved is not None else {
        k: [EMAIL] for k in commands.NOTIFICATION_KINDS}
    return render(request, "settings.html", customer=customer, kinds=commands.NOTIFICATION_KINDS,
                  choices=_channel_choices(language(request)), channels=channels,
                  saved=request.query_params.get("saved") == "1")


@router.post("/settings/notifications")
async def save_settings(request: Request, customer: CurrentCustomer) -> Response:
    portal = portal_of(request)
    if customer is None:
        return to_login(request)
    form = await request.form()
    if not csrf_ok(customer, form.get("csrf")):
        return csrf_failed(request, "settings", customer)
    channels: dict[str, tuple[str, ...]] = {}
    for kind in commands.NOTIFICATION_KINDS:
        channels[kind] = tuple(c for c in customer_channels() if form.get(f"{kind}:{c}"))
    await commands.save_preferences(portal.runtime, email=customer.email, channels=channels,
                                    correlation_id=request.state.correlation_id)
    return RedirectResponse("/settings/notifications?saved=1", status_code=303)


# ---- the embeddable widget ---------------------------------------------------------------

@router.get("/widget")
async def widget(request: Request, customer: CurrentCustomer) -> Response:
    portal = portal_of(request)
    lang = language(request)
    items: list[dict] = []
    if customer is not None:
        services = await portal.catalog()
        current, _ = await list_requests(portal, customer, closed=False, page=0, limit=10)
        closed, _ = await list_requests(portal, customer, closed=True, page=0, limit=5)
        items = current + closed
        for doc in items:
            doc["status_label"] = status_label(doc, services, lang)
    return render(request, "widget.html", customer=customer, items=items,
                  base=portal.public_base())


@router.get("/widget.js")
async def widget_script(request: Request) -> Response:
    body = (PACKAGE / "static" / "widget.js").read_text()
    return Response(body, media_type="application/javascript",
                    headers={"Cache-Control": "public, max-age=300"})
