"""Knowledge-base articles, pure: what an article is, who may read it, and its versions.

An article has a title, a Markdown body, a language (ru/en), categories (ids of services
in the catalog), a visibility and a status. Every save is a new version (1, 2, …) whose
copy is kept as history; the article itself is always its newest version. Published
articles are what customers can find; a published article that is edited stays published
(its newest version is what they read).

Who reads what is one function, `audiences`: a published article carries the audiences it
is shown to (`public`, `group:<name>` for each customer group, or only `agents`), and a
reader is given the audiences they belong to; the store filters on them, so an article
outside a reader's audiences is neither found nor shown, by search or by id.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from boards.kb import markdown, search

LANGUAGES = ("ru", "en")
VISIBILITIES = ("public", "groups", "agents")
STATUSES = ("draft", "published")
PUBLIC = "public"
AGENTS = "agents"
MAX_TITLE = 300
MAX_BODY = 100_000
MAX_CATEGORIES = 20
GROUP = re.compile(r"^[\w.-]{1,100}$")

Visibility = Literal["public", "groups", "agents"]
Status = Literal["draft", "published"]


class ArticleInvalid(ValueError):
    """Bad input, field by field (`errors`: field → message)."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Draft:
    """What an agent writes: the editable part of an article."""

    title: str
    body: str
    language: str
    categories: tuple[str, ...] = ()
    visibility: str = PUBLIC
    groups: tuple[str, ...] = ()
    status: str = "draft"

    @classmethod
    def parse(cls, data: dict[str, Any], known_categories: set[str]) -> Draft:
        """Check every field and say what is wrong with each (ArticleInvalid)."""
        errors: dict[str, str] = {}
        title = " ".join(str(data.get("title") or "").split())
        body = str(data.get("body") or "").replace("\r\n", "\n").strip()
        if not title:
            errors["title"] = "required"
        elif len(title) > MAX_TITLE:
            errors["title"] = f"must be at most {MAX_TITLE} characters"
        if not body:
            errors["body"] = "required"
        elif len(body) > MAX_BODY:
            errors["body"] = f"must be at most {MAX_BODY} characters"
        language = str(data.get("language") or "")
        if language not in LANGUAGES:
            errors["language"] = "must be one of: " + ", ".join(LANGUAGES)
        categories = _strings(data.get("categories"))
        unknown = [c for c in categories if c not in known_categories]
        if categories is None:
            errors["categories"] = "must be a list of service ids"
        elif unknown:
            errors["categories"] = "not in the service catalog: " + ", ".join(unknown)
        elif len(categories) > MAX_CATEGORIES:
            errors["categories"] = f"at most {MAX_CATEGORIES}"
        visibility = str(data.get("visibility") or PUBLIC)
        if visibility not in VISIBILITIES:
            errors["visibility"] = "must be one of: " + ", ".join(VISIBILITIES)
        groups = _strings(data.get("groups"))
        if groups is None or any(not GROUP.match(g) for g in groups):
            errors["groups"] = "must be a list of customer group names"
        elif visibility == "groups" and not groups:
            errors["groups"] = "name at least one customer group for this visibility"
        status = str(data.get("status") or "draft")
        if status not in STATUSES:
            errors["status"] = "must be one of: " + ", ".join(STATUSES)
        if errors:
            raise ArticleInvalid(errors)
        return cls(title=title, body=body, language=language,
                   categories=tuple(dict.fromkeys(categories or ())),
                   visibility=visibility,
                   groups=tuple(sorted(set(groups or ()))) if visibility == "groups" else (),
                   status=status)


def _strings(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    return None


def audiences(visibility: str, groups: tuple[str, ...] | list[str]) -> list[str]:
    """Who an article is shown to, as the store filters on it."""
    if visibility == PUBLIC:
        return [PUBLIC]
    if visibility == "groups":
        return [f"group:{g}" for g in groups]
    return [AGENTS]


def reader_audiences(*, signed_in: bool, groups: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The audiences a customer belongs to: everyone reads public articles; a signed-in
    customer also those of their groups. Agents-only articles are never among them."""
    return [PUBLIC] + ([f"group:{g}" for g in groups] if signed_in else [])


@dataclass(frozen=True)
class Article:
    """An article as stored: its newest version and what search needs of it."""

    id: str
    draft: Draft
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    published_at: datetime | None = None
    source_card: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, draft: Draft, *, by: str, at: datetime, source_card: str | None = None
            ) -> Article:
        return cls(id=uuid.uuid4().hex[:12], draft=draft, version=1, created_at=at,
                   created_by=by, updated_at=at, updated_by=by,
                   published_at=at if draft.status == "published" else None,
                   source_card=source_card)

    @property
    def published(self) -> bool:
        return self.draft.status == "published"

    def revise(self, draft: Draft, *, by: str, at: datetime) -> Article:
        """The next version; `published_at` is when it was first published."""
        first_published = self.published_at or (at if draft.status == "published" else None)
        return replace(self, draft=draft, version=self.version + 1, updated_at=at,
                       updated_by=by, published_at=first_published)

    def document(self) -> dict[str, Any]:
        """The stored shape, with the search fields computed from the text."""
        d = self.draft
        plain = markdown.plain_text(d.body)
        stems = search.weights(d.title, plain)
        return {
            "_id": self.id, "title": d.title, "body": d.body, "plain": plain,
            "language": d.language, "categories": list(d.categories),
            "visibility": d.visibility, "groups": list(d.groups), "status": d.status,
            "audience": audiences(d.visibility, d.groups) if self.published else [],
            "weights": stems, "keys": search.keys_of(stems), "version": self.version,
            "created_at": self.created_at, "created_by": self.created_by,
            "updated_at": self.updated_at, "updated_by": self.updated_by,
            "published_at": self.published_at, "source_card": self.source_card,
        }

    def version_document(self) -> dict[str, Any]:
        """The history entry of this version (what it said, who saved it, when)."""
        d = self.draft
        return {"_id": f"{self.id}:{self.version}", "article_id": self.id,
                "version": self.version, "title": d.title, "body": d.body,
                "language": d.language, "categories": list(d.categories),
                "visibility": d.visibility, "groups": list(d.groups), "status": d.status,
                "saved_by": self.updated_by, "saved_at": self.updated_at}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Article:
        draft = Draft(title=doc["title"], body=doc["body"], language=doc["language"],
                      categories=tuple(doc.get("categories") or ()),
                      visibility=doc.get("visibility", PUBLIC),
                      groups=tuple(doc.get("groups") or ()), status=doc.get("status", "draft"))
        return cls(id=doc["_id"], draft=draft, version=doc["version"],
                   created_at=doc["created_at"], created_by=doc["created_by"],
                   updated_at=doc["updated_at"], updated_by=doc["updated_by"],
                   published_at=doc.get("published_at"), source_card=doc.get("source_card"))
