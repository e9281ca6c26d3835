"""The Mongo client factory and the transaction helper every repository uses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession

T = TypeVar("T")


def create_client(url: str, *, app_name: str) -> AsyncMongoClient:
    # tz_aware: every datetime read back is UTC-aware, as every datetime we write is.
    return AsyncMongoClient(url, tz_aware=True, appname=app_name, serverSelectionTimeoutMS=5000)


async def in_transaction(
    client: AsyncMongoClient, work: Callable[[AsyncClientSession], Awaitable[T]]
) -> T:
    """Run `work` in one transaction, retried on transient errors (write conflicts)."""
    async with client.start_session() as session:
        return await session.with_transaction(work)


async def ping(client: AsyncMongoClient) -> bool:
    try:
        await client.admin.command("ping")
        return True
    except Exception:
        return False
