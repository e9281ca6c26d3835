"""The Mongo client factory and the transaction helper every repository uses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from typing import TypeVar

import pymongo
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    PyMongoError,
    ServerSelectionTimeoutError,
)

T = TypeVar("T")


def create_client(url: str, *, app_name: str) -> AsyncMongoClient:
    # tz_aware: every datetime read back is UTC-aware, as every datetime we write is.
    # Retryable writes follow the URL: real MongoDB keeps the driver's default (on); the
    # embedded single node is reached with `retryWrites=false` (scripts/run.py, tests),
    # because its retryable-write registry slows every write as it grows.
    # A short server-selection timeout: with the store away, an HTTP request answers 503
    # within seconds and a consumer backs off, instead of each hanging for half a minute.
    return AsyncMongoClient(url, tz_aware=True, appname=app_name, serverSelectionTimeoutMS=3000)


class StoreUnavailable(Exception):
    """The store could not be reached during a transaction (not a write conflict)."""


@contextmanager
def store_unavailable_stops_retries() -> Iterator[None]:
    """Inside a transaction callback: an unreachable store ends the transaction at once.

    The driver retries a transaction whose statement hit a network error, for up to two
    minutes; a caller waiting on it (an HTTP request) would hang that long. Re-raised as
    `StoreUnavailable` (no retry label), the transaction aborts and the caller answers
    503 or backs off; write conflicts are still retried by the driver.
    """
    try:
        yield
    except ConnectionFailure as exc:
        raise StoreUnavailable(str(exc)) from exc


def bounded(seconds: float):
    """A time limit on every store call made inside the block (`pymongo.timeout`); a call
    still waiting when it runs out fails with a timeout instead of waiting on."""
    return pymongo.timeout(seconds)


async def in_transaction(
    client: AsyncMongoClient, work: Callable[[AsyncClientSession], Awaitable[T]],
    *, seconds: float | None = None,
) -> T:
    """Run `work` in one transaction, retried on transient errors (write conflicts), all
    of it within `seconds` when given.

    A transaction that fails without a commit — above all one that ran out of time while
    the store was slow — may still be open in the store: the driver's own abort is sent
    within the same time limit, so it never leaves. Until the store reaps it (60 s idle
    on MongoDB and on SecantusDB), its uncommitted writes make every other write to the
    same documents conflict — the retry of this very work first of all. So its session is
    ended in the store (`killSessions`, which aborts the session's open transaction) under
    a fresh time limit, and the driver drops that session instead of pooling it.
    """
    async with client.start_session() as session:
        try:
            with bounded(seconds) if seconds is not None else nullcontext():
                return await session.with_transaction(work)
        except BaseException as exc:
            if _may_be_left_open(exc):
                await _end_abandoned(client, session)
            raise


ABANDONED_END_SECONDS = 3.0


def _may_be_left_open(exc: BaseException) -> bool:
    """Whether a failed transaction may still be open in the store: it ran out of time
    (or was cancelled) with the store reachable. Any other failure was aborted by the
    driver; with no server to select, nothing can be ended now (and a 503 must not wait)."""
    if isinstance(exc, asyncio.CancelledError):
        return True
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ServerSelectionTimeoutError):
            return False
        if isinstance(current, PyMongoError) and current.timeout:
            return True
        current = current.__cause__ or current.__context__
    return False


async def _end_abandoned(client: AsyncMongoClient, session: AsyncClientSession) -> None:
    """Best effort: abort whatever transaction `session` may have left open in the store."""
    server_session = getattr(session, "_server_session", None)
    if server_session is None:
        return
    try:
        # the store away or slow: nothing more to do, its own reaper ends the transaction
        with suppress(Exception), bounded(ABANDONED_END_SECONDS):
            await asyncio.shield(client.admin.command("killSessions", [session.session_id]))
    finally:
        # never pooled again: its next user would start from a killed session
        server_session.mark_dirty()


async def ping(client: AsyncMongoClient, timeout: float = 0.8) -> bool:
    """Whether the store answers within `timeout` seconds."""
    try:
        await asyncio.wait_for(client.admin.command("ping"), timeout)
        return True
    except Exception:  # noqa: BLE001 (unreachable, timed out, refused: all mean "no")
        return False


async def insert_all(db: AsyncDatabase, collection: str, docs: list[dict],
                     session: AsyncClientSession | None) -> None:
    """Insert `docs`, in order, in one round trip (a single one as `insert_one`); a
    duplicate key raises `DuplicateKeyError`, as a single insert says it."""
    if len(docs) == 1:
        await db[collection].insert_one(docs[0], session=session)
        return
    try:
        await db[collection].insert_many(docs, ordered=True, session=session)
    except BulkWriteError as exc:
        dup = next((e for e in exc.details.get("writeErrors", []) if e.get("code") == 11000),
                   None)
        if dup is None:
            raise
        raise DuplicateKeyError(dup.get("errmsg", "duplicate key"), 11000, dup) from exc
