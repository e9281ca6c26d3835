"""Knowledge-base operations: write and revise articles, search them, count deflections.

Each change is one unit of work: the article, its version in the history and the event
for integrators (`article.published` when it becomes published, `article.updated` for
every new version of an article that is or was published) commit together. Drafts that
were never published stay inside boards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from desk_contracts.events import ArticlePublished, ArticleUpdated, RequestDeflected
from desk_runtime.http import Conflict, Invalid, NotFound
from desk_runtime.unit_of_work import UnitOfWork

from boards.kb import metrics, search
from boards.kb.domain import Article, ArticleInvalid, Draft
from boards.kb.repository import KnowledgeBaseRepository, StaleArticle
from boards.repository import CatalogRepository

MAX_RESULTS = 50


def article_path(article_id: str) -> str:
    """Where customers read an article on the portal."""
    return f"/help/articles/{article_id}"


async def _draft(uow: UnitOfWork, data: dict[str, Any]) -> Draft:
    known = {s.id for s, _rev in await CatalogRepository(uow.db).list_services()}
    try:
        return Draft.parse(data, known)
    except ArticleInvalid as exc:
        for name in exc.errors:
            metrics.INVALID.labels(name).inc()
        raise Invalid("the article has errors", details={"fields": exc.errors}) from None


async def _announce(uow: UnitOfWork, before: Article | None, after: Article) -> None:
    was_published = before is not None and (before.published or before.published_at)
    if not after.published and not was_published:
        return
    d = after.draft
    payload = dict(article_id=after.id, version=after.version, title=d.title, body=d.body,
                   language=d.language, categories=d.categories, visibility=d.visibility,
                   groups=d.groups, status=d.status, path=article_path(after.id),
                   changed_by=after.updated_by, changed_at=after.updated_at)
    if after.published and (before is None or not before.published):
        await uow.emit(ArticlePublished(**payload))
    if before is not None:
        await uow.emit(ArticleUpdated(**payload))


async def create_article(uow: UnitOfWork, data: dict[str, Any], *, by: str,
                         source_card: str | None = None) -> Article:
    draft = await _draft(uow, data)
    article = Article.new(draft, by=by, at=datetime.now(UTC), source_card=source_card)
    await KnowledgeBaseRepository(uow.db, uow.session).insert(article.document(),
                                                              article.version_document())
    await _announce(uow, None, article)
    uow.after_commit(metrics.SAVED.labels("created").inc)
    return article


async def revise_article(uow: UnitOfWork, article_id: str, data: dict[str, Any], *,
                         by: str, expected_version: int | None) -> Article:
    """Save a new version; 409 when `expected_version` is not the newest one."""
    repo = KnowledgeBaseRepository(uow.db, uow.session)
    doc = await repo.article(article_id)
    if doc is None:
        raise NotFound(f"no article {article_id!r}")
    before = Article.from_document(doc)
    if expected_version is not None and expected_version != before.version:
        raise Conflict(f"the article is at version {before.version}, not {expected_version}: "
                       "someone saved it meanwhile", details={"version": before.version})
    draft = await _draft(uow, data)
    after = before.revise(draft, by=by, at=datetime.now(UTC))
    try:
        await repo.replace(after.document(), after.version_document(),
                           expected_version=before.version)
    except StaleArticle:
        raise Conflict("someone saved the article meanwhile") from None
    await _announce(uow, before, after)
    uow.after_commit(metrics.SAVED.labels("revised").inc)
    return after


@dataclass(frozen=True)
class SearchResult:
    article: dict[str, Any]
    title: list[dict]
    snippet: list[dict]
    score: float


async def search_articles(repo: KnowledgeBaseRepository, text: str, *,
                          audiences: list[str] | None, language: str | None = None,
                          status: str | None = None, limit: int = 10) -> list[SearchResult]:
    """Ranked, highlighted hits among the articles these audiences read (None: agents)."""
    query = search.Query.parse(text)
    if query.empty:
        return []
    with metrics.SEARCH_SECONDS.time():
        candidates = await repo.candidates(query.keys(), audiences, status)
        hits = search.rank(query, candidates, language=language,
                           limit=max(1, min(limit, MAX_RESULTS)))
        docs = await repo.by_ids([h.article_id for h in hits])
    metrics.SEARCHES.labels("hit" if hits else "miss").inc()
    return [SearchResult(article=docs[h.article_id],
                         title=search.highlight(query, docs[h.article_id]["title"]),
                         snippet=search.snippet(query, docs[h.article_id].get("plain", "")),
                         score=round(h.score, 4))
            for h in hits if h.article_id in docs]


async def record_deflection(uow: UnitOfWork, event: RequestDeflected) -> None:
    """Keep a deflection for the statistics (once per event, however often delivered)."""
    source = uow.causation.event_id if uow.causation else None
    key = str(source) if source else f"{event.article_id}:{event.deflected_at.isoformat()}"
    new = await KnowledgeBaseRepository(uow.db, uow.session).record_deflection({
        "_id": key, "article_id": event.article_id, "service_id": event.service_id,
        "language": event.language, "at": event.deflected_at})
    if new:
        uow.after_commit(metrics.DEFLECTIONS.labels(event.service_id or "none").inc)


async def deflection_counts(repo: KnowledgeBaseRepository, start: datetime, end: datetime
                            ) -> dict[str, Any]:
    """Deflections in [start, end): in all, per article and per service."""
    rows = await repo.deflections(start, end)
    per_article: dict[str, int] = {}
    per_service: dict[str, int] = {}
    for r in rows:
        per_article[r["article_id"]] = per_article.get(r["article_id"], 0) + 1
        key = r.get("service_id") or "none"
        per_service[key] = per_service.get(key, 0) + 1
    return {"from": start.isoformat(), "to": end.isoformat(), "total": len(rows),
            "by_article": per_article, "by_service": per_service}
