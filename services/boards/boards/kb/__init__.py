"""The knowledge base: articles agents write, customers find on the portal's help centre.

A module of boards (docs/architecture.md says why): its own collections behind
`repository.py`, pure article and search rules (`domain.py`, `search.py`, `markdown.py`),
operations in `application.py`, the JSON API for agents and the portal (`api.py`), the
workspace pages (`pages.py`), and the consumer of deflections (`consumers.HANDLERS`, in
boards' handler table). `install(app)` adds the routers; `start(runtime)` its indexes.
"""

from __future__ import annotations

from desk_runtime.service import ServiceRuntime
from fastapi import FastAPI

from boards.kb import api, pages
from boards.kb.repository import KnowledgeBaseRepository


def install(app: FastAPI) -> None:
    app.include_router(api.router)
    app.include_router(pages.router)


async def start(runtime: ServiceRuntime) -> None:
    await KnowledgeBaseRepository(runtime.db).ensure_indexes()
