"""The knowledge base's HTTP API: agents write and search articles; the portal reads them.

Agents (`/v1/kb/articles...`, their API token or workspace session) see every article,
drafts and agents-only ones included. The portal (`/v1/kb/help/...`) presents its own
credential (BOARDS_PORTAL_TOKEN) and says who is reading: `signed_in` and the customer's
groups (the portal owns customers and their groups). It only ever gets published articles
of the audiences that reader belongs to; any other article answers 404, exactly like one
that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from desk_runtime.http import Forbidden, Invalid, NotFound, Unauthorized
from desk_runtime.web import tokens_equal
from fastapi import APIRouter, Body, Depends, Query, Request

from boards.auth import Agent, current_agent
from boards.kb import application, markdown
from boards.kb.domain import reader_audiences
from boards.kb.repository import KnowledgeBaseRepository

router = APIRouter(prefix="/v1/kb", tags=["knowledge base"])

ARTICLE_FIELDS = ("title", "language", "categories", "visibility", "groups", "status",
                  "version", "created_at", "created_by", "updated_at", "updated_by",
                  "published_at", "source_card")


def repo_of(request: Request) -> KnowledgeBaseRepository:
    return KnowledgeBaseRepository(request.app.state.runtime.db)


def article_view(doc: dict[str, Any], *, body: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": doc["_id"], "path": application.article_path(doc["_id"])}
    out |= {k: doc.get(k) for k in ARTICLE_FIELDS}
    if body:
        out["body"] = doc["body"]
        out["html"] = markdown.render(doc["body"])
    return out


def _hits(results: list[application.SearchResult]) -> list[dict[str, Any]]:
    return [article_view(r.article, body=False) | {"title_marked": r.title,
                                                   "snippet": r.snippet, "score": r.score}
            for r in results]


async def _transact(request: Request, work):
    return await request.app.state.runtime.transact(
        work, correlation_id=request.state.correlation_id)


# --- agents ---------------------------------------------------------------------------------

@router.get("/articles")
async def list_articles(request: Request, agent: Agent = Depends(current_agent),
                        q: str = Query("", max_length=200),
                        status: str | None = Query(None, pattern="^(draft|published)$"),
                        category: str | None = Query(None, max_length=100),
                        limit: int = Query(20, ge=1, le=50)) -> dict:
    """Newest first, or the best matches of `q` (ranked, highlighted)."""
    repo = repo_of(request)
    if q.strip():
        items = _hits(await application.search_articles(repo, q, audiences=None,
                                                         status=status, limit=limit))
    else:
        items = [article_view(d, body=False)
                 for d in await repo.latest(category=category, status=status, limit=limit)]
    # where a customer reads it: the link an agent puts into a reply
    portal = request.app.state.settings.portal_url.rstrip("/")
    return {"items": [i | {"url": portal + i["path"]} for i in items]}


@router.post("/articles", status_code=201)
async def create_article(request: Request, agent: Agent = Depends(current_agent),
                         data: dict[str, Any] = Body(...)) -> dict:
    source = data.get("source_card")
    article = await _transact(request, lambda uow: application.create_article(
        uow, data, by=agent.id, source_card=source if isinstance(source, str) else None))
    return article_view(article.document())


@router.get("/articles/{article_id}")
async def get_article(request: Request, article_id: str,
                      agent: Agent = Depends(current_agent)) -> dict:
    doc = await repo_of(request).article(article_id)
    if doc is None:
        raise NotFound("no such article")
    return article_view(doc)


@router.put("/articles/{article_id}")
async def revise_article(request: Request, article_id: str,
                         agent: Agent = Depends(current_agent),
                         data: dict[str, Any] = Body(...)) -> dict:
    """A new version; `version` (the one the writer saw) guards against lost updates."""
    expected = data.get("version")
    if expected is not None and not isinstance(expected, int):
        raise Invalid("the article has errors",
                      details={"fields": {"version": "must be a whole number"}})
    article = await _transact(request, lambda uow: application.revise_article(
        uow, article_id, data, by=agent.id, expected_version=expected))
    return article_view(article.document())


@router.get("/articles/{article_id}/versions")
async def article_versions(request: Request, article_id: str,
                           agent: Agent = Depends(current_agent)) -> dict:
    repo = repo_of(request)
    if await repo.article(article_id) is None:
        raise NotFound("no such article")
    return {"items": [{k: v for k, v in d.items() if k != "_id"}
                      for d in await repo.versions(article_id)]}


@router.get("/deflections")
async def deflections(request: Request, agent: Agent = Depends(current_agent),
                      days: int = Query(30, ge=1, le=400)) -> dict:
    """Requests that articles deflected in the last `days` days."""
    end = datetime.now(UTC)
    return await application.deflection_counts(repo_of(request), end - timedelta(days=days),
                                               end)


# --- the portal's help centre ---------------------------------------------------------------

def portal_reader(request: Request, signed_in: bool = Query(False),
                  groups: str = Query("", max_length=2000)) -> list[str]:
    """The audiences of the reader the portal names, once its credential is checked."""
    expected = request.app.state.settings.portal_token
    if not expected:
        raise Forbidden("the help-centre API is off (no BOARDS_PORTAL_TOKEN configured)")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not tokens_equal(token, expected):
        raise Unauthorized("the portal's credential is required (Authorization: Bearer ...)")
    names = [g.strip() for g in groups.split(",") if g.strip()]
    return reader_audiences(signed_in=signed_in, groups=names)


@router.get("/help/search")
async def help_search(request: Request, audiences: list[str] = Depends(portal_reader),
                      q: str = Query("", max_length=200),
                      lang: str | None = Query(None, pattern="^(ru|en)$"),
                      limit: int = Query(10, ge=1, le=50)) -> dict:
    results = await application.search_articles(repo_of(request), q, audiences=audiences,
                                                language=lang, limit=limit)
    return {"items": _hits(results)}


@router.get("/help/articles/{article_id}")
async def help_article(request: Request, article_id: str,
                       audiences: list[str] = Depends(portal_reader)) -> dict:
    doc = await repo_of(request).readable(article_id[:100], audiences)
    if doc is None:
        raise NotFound("no such article")
    return article_view(doc)


@router.get("/help/categories")
async def help_categories(request: Request, audiences: list[str] = Depends(portal_reader)
                          ) -> dict:
    """How many articles each category (a service of the catalog) holds for this reader."""
    return {"items": await repo_of(request).category_counts(audiences)}


@router.get("/help/categories/{service_id}")
async def help_category(request: Request, service_id: str,
                        audiences: list[str] = Depends(portal_reader)) -> dict:
    docs = await repo_of(request).latest(audiences=audiences, category=service_id[:100],
                                         limit=200)
    return {"items": [article_view(d, body=False) for d in docs]}


@router.get("/help/latest")
async def help_latest(request: Request, audiences: list[str] = Depends(portal_reader),
                      limit: int = Query(10, ge=1, le=50)) -> dict:
    docs = await repo_of(request).latest(audiences=audiences, limit=limit)
    return {"items": [article_view(d, body=False) for d in docs]}
