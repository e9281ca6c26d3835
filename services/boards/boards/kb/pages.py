"""The knowledge base in the agent workspace: list and search, write, edit, history.

Plain HTML forms (they work without scripts) posted with the session's CSRF token, drawn
with the workspace's layout (`web/templates/kb/`). "Make an article from this answer" on
a card opens `/kb/new?card=…&comment=…`, pre-filled from that public reply.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from desk_runtime.http import DomainError
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from boards.auth import csrf_ok
from boards.kb import application, markdown
from boards.kb.domain import LANGUAGES, VISIBILITIES
from boards.kb.repository import KnowledgeBaseRepository
from boards.repository import Repositories
from boards.web.pages import render, signed_in_page

router = APIRouter(include_in_schema=False)

TEXT = {
    "en": {"kb": "Knowledge base", "new": "New article", "search": "Search articles",
           "find": "Find", "title": "Title", "body": "Text (Markdown)", "language": "Language",
           "categories": "Categories (services)", "visibility": "Who can read it",
           "public": "Everybody (public, also without signing in)",
           "groups": "Customers of these groups", "agents": "Agents only",
           "group_names": "Customer groups (comma-separated)", "status": "Status",
           "draft": "Draft", "published": "Published", "save": "Save",
           "saved": "Saved as version {version}.", "errors": "Please correct the marked fields.",
           "version": "Version", "history": "History", "by": "By", "at": "Saved",
           "none": "No articles yet.", "no_hits": "Nothing found.", "updated": "Updated",
           "deflected": "Requests deflected in the last 30 days: {n}",
           "solved": "solved a problem {n}×", "edit": "Edit", "preview": "As customers see it",
           "from_card": "From the answer on card {card}.", "portal_link": "Link for customers",
           "conflict": "Someone saved this article meanwhile (now version {version}). "
                       "Your text is below; reload to see theirs.",
           "back": "← Knowledge base", "old_version": "Version {version} of “{title}”",
           "ru": "Russian", "en": "English"},
    "ru": {"kb": "База знаний", "new": "Новая статья", "search": "Поиск статей",
           "find": "Найти", "title": "Заголовок", "body": "Текст (Markdown)", "language": "Язык",
           "categories": "Категории (услуги)", "visibility": "Кто может читать",
           "public": "Все (публично, в том числе без входа)",
           "groups": "Клиенты из этих групп", "agents": "Только агенты",
           "group_names": "Группы клиентов (через запятую)", "status": "Статус",
           "draft": "Черновик", "published": "Опубликована", "save": "Сохранить",
           "saved": "Сохранено как версия {version}.",
           "errors": "Исправьте отмеченные поля.", "version": "Версия", "history": "История",
           "by": "Автор", "at": "Сохранено", "none": "Статей пока нет.",
           "no_hits": "Ничего не найдено.", "updated": "Обновлена",
           "deflected": "Заявок не понадобилось за 30 дней: {n}",
           "solved": "решила проблему {n} раз", "edit": "Изменить",
           "preview": "Как видят клиенты", "from_card": "Из ответа в заявке {card}.",
           "portal_link": "Ссылка для клиентов",
           "conflict": "Кто-то сохранил статью раньше вас (теперь версия {version}). "
                       "Ваш текст ниже; обновите страницу, чтобы увидеть их правку.",
           "back": "← База знаний", "old_version": "Версия {version} статьи «{title}»",
           "ru": "Русский", "en": "Английский"},
}

FIELD_ERRORS_RU = {"required": "обязательное поле"}


def _repo(request: Request) -> KnowledgeBaseRepository:
    return KnowledgeBaseRepository(request.app.state.runtime.db)


async def _services(request: Request, lang: str) -> list[dict[str, str]]:
    return [{"id": s.id, "name": s.name.get(lang)}
            for s, _rev in await Repositories.of(request.app.state.runtime.db)
            .catalog.list_services()]


def _portal_url(request: Request, article_id: str) -> str:
    base = request.app.state.settings.portal_url.rstrip("/")
    return base + application.article_path(article_id)


def _field_errors(exc: DomainError, lang: str) -> dict[str, str]:
    fields = exc.details.get("fields") or {}
    if lang == "ru":
        return {k: FIELD_ERRORS_RU.get(v, v) for k, v in fields.items()}
    return dict(fields)


async def _editor(request: Request, lang: str, base: dict, *, form: dict[str, Any],
                  article: dict | None = None, errors: dict | None = None,
                  notice: str | None = None, status: int = 200, **extra: Any) -> Response:
    history = await _repo(request).versions(article["_id"]) if article else []
    return render(request, "kb/edit.html", lang, status=status, k=TEXT[lang], form=form,
                  article=article, errors=errors or {}, notice=notice, history=history,
                  html=markdown.render(article["body"]) if article else "",
                  services=await _services(request, lang), languages=LANGUAGES,
                  visibilities=VISIBILITIES,
                  portal_link=_portal_url(request, article["_id"]) if article else "",
                  **extra, **base)


def _form_data(form: Any) -> dict[str, Any]:
    return {"title": str(form.get("title") or ""), "body": str(form.get("body") or ""),
            "language": str(form.get("language") or ""),
            "categories": [str(c) for c in form.getlist("categories")],
            "visibility": str(form.get("visibility") or "public"),
            "groups": str(form.get("groups") or ""),
            "status": str(form.get("status") or "draft")}


@router.get("/kb")
async def kb_home(request: Request, q: str = "") -> Response:
    ctx = await signed_in_page(request)
    if isinstance(ctx, Response):
        return ctx
    _agent, _session, lang, base = ctx
    repo = _repo(request)
    q = q[:200]
    if q.strip():
        hits = await application.search_articles(repo, q, audiences=None, limit=50)
        items = [r.article | {"title_marked": r.title, "snippet": r.snippet} for r in hits]
    else:
        items = await repo.latest(limit=100)
    end = datetime.now(UTC)
    counts = await application.deflection_counts(repo, end - timedelta(days=30), end)
    return render(request, "kb/list.html", lang, k=TEXT[lang], q=q, items=items,
                  searched=bool(q.strip()), deflections=counts,
                  services={s["id"]: s["name"] for s in await _services(request, lang)},
                  **base)


@router.get("/kb/new")
async def kb_new(request: Request, card: str = "", comment: str = "") -> Response:
    ctx = await signed_in_page(request)
    if isinstance(ctx, Response):
        return ctx
    agent, _session, lang, base = ctx
    form: dict[str, Any] = {"title": "", "body": "", "language": lang, "categories": [],
                            "visibility": "public", "groups": "", "status": "draft"}
    source = None
    if card:
        cards = Repositories.of(request.app.state.runtime.db).cards
        found = await cards.card(card[:100])
        if found is not None and agent.can_see_board(found.board_id):
            source = found
            form["title"] = found.title
            if found.service_id:
                form["categories"] = [found.service_id]
            if found.language in LANGUAGES:
                form["language"] = found.language
            for c in await cards.comments_of(found.id):
                # only what the customer was told: an internal note never becomes an article
                if str(c.get("_id")) == comment and c.get("visibility") == "public":
                    form["body"] = c.get("text") or ""
    return await _editor(request, lang, base, form=form, source=source)


@router.post("/kb/new")
async def kb_create(request: Request) -> Response:
    ctx = await signed_in_page(request)
    if isinstance(ctx, Response):
        return ctx
    agent, session, lang, base = ctx
    form = await request.form()
    if not csrf_ok(request, session, str(form.get("csrf") or "")):
        return Response("missing or wrong CSRF token", status_code=403)
    data = _form_data(form)
    source = str(form.get("source_card") or "")[:100] or None
    try:
        article = await request.app.state.runtime.transact(
            lambda uow: application.create_article(uow, data, by=agent.id, source_card=source),
            correlation_id=request.state.correlation_id)
    except DomainError as exc:
        return await _editor(request, lang, base, form=data, errors=_field_errors(exc, lang),
                             status=exc.status_code)
    return RedirectResponse(f"/kb/{quote(article.id)}?saved={article.version}", status_code=303)


@router.get("/kb/{article_id}")
async def kb_article(request: Request, article_id: str, saved: int = 0) -> Response:
    ctx = await signed_in_page(request)
    if isinstance(ctx, Response):
        return ctx
    _agent, _session, lang, base = ctx
    doc = await _repo(request).article(article_id[:100])
    if doc is None:
        return render(request, "empty.html", lang, status=404, **base)
    form = {k: doc.get(k) for k in ("title", "body", "language", "categories", "visibility",
                                    "status")} | {"groups": ", ".join(doc.get("groups") or ())}
    notice = TEXT[lang]["saved"].format(version=saved) if saved else None
    return await _editor(request, lang, base, form=form, article=doc, notice=notice)


@router.post("/kb/{article_id}")
async def kb_save(request: Request, article_id: str) -> Response:
    ctx = await signed_in_page(request)
    if isinstance(ctx, Response):
        return ctx
    agent, session, lang, base = ctx
    form = await request.form()
    if not csrf_ok(request, session, str(form.get("csrf") or "")):
        return Response("missing or wrong CSRF token", status_code=403)
    doc = await _repo(request).article(article_id[:100])
    if doc is None:
        return render(request, "empty.html", lang, status=404, **base)
    data = _form_data(form)
    try:
        expected = int(str(form.get("version") or ""))
    except ValueError:
        expected = None
    try:
        article = await request.app.state.runtime.transact(
            lambda uow: application.revise_article(uow, doc["_id"], data, by=agent.id,
                                                   expected_version=expected),
            correlation_id=request.state.correlation_id)
    except DomainError as exc:
        notice = None
        if exc.status_code == 409:
            latest = await _repo(request).article(doc["_id"]) or doc
            notice = TEXT[lang]["conflict"].format(version=latest["version"])
            doc = latest
        return await _editor(request, lang, base, form=data, article=doc, notice=notice,
                             errors=_field_errors(exc, lang), status=exc.status_code)
    return RedirectResponse(f"/kb/{quote(article.id)}?saved={article.version}", status_code=303)


@router.get("/kb/{article_id}/versions/{number}")
async def kb_version(request: Request, article_id: str, number: int) -> Response:
    ctx = await signed_in_page(request)
    if isinstance(ctx, Response):
        return ctx
    _agent, _session, lang, base = ctx
    doc = await _repo(request).version(article_id[:100], number)
    if doc is None:
        return render(request, "empty.html", lang, status=404, **base)
    return render(request, "kb/version.html", lang, k=TEXT[lang], v=doc,
                  html=markdown.render(doc["body"]), **base)
