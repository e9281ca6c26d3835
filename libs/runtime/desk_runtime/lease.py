"""Leases with fencing tokens in the store: one holder at a time for a replica's singleton work.

Some work must be done by one replica of a service at a time however many run (poll an
IMAP mailbox, long-poll the Telegram bot, send the bot's owed messages). Each such job
has a lease record in the service's `leases` collection:

    {_id: name, holder, token, expires_at, acquired_at}

* `acquire(name)` renews the lease when this process holds it (same token), takes it over
  when it expired or was released (token + 1: every takeover gets a greater token), or
  creates it (token 1); otherwise answers None — someone else holds it;
* `keeping(lease)` renews it in the background every third of the TTL while the work
  runs; a failed renewal marks the lease lost, and `lease.held` turns false — the work
  checks it before each step;
* a replica that dies stops renewing: the lease expires after `ttl` seconds and the next
  replica that asks takes it over (a graceful stop `release`s it at once);
* fencing: a write made under a lease carries its token (`fenced_filter`/`fence_update`
  on the record written: the write matches only if no greater token wrote it since), so
  a holder that was paused past its expiry (a long GC, a frozen VM) cannot overwrite what
  the new holder wrote. Side effects outside the store (a Telegram message sent) cannot be
  fenced: the work checks `held` right before them, which narrows the window to one
  step, and the records say which were done.

Expiry is compared with the wall clocks of the replicas: their skew must stay well
under the TTL (NTP keeps it to milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from desk_runtime.logging import get_logger
from desk_runtime.metrics import LEASE_CHANGES

log = get_logger(__name__)

COLLECTION = "leases"
RELEASED = datetime(1970, 1, 1, tzinfo=UTC)
FENCE_FIELD = "fence"


class LeaseLost(Exception):
    """The lease was taken over (or could not be renewed): the work must stop."""


def holder_id(service: str) -> str:
    """This process, as lease records name it (host, pid and a random part)."""
    return f"{service}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Lease:
    name: str
    holder: str
    token: int
    ttl: float
    # local monotonic time until which the lease is surely ours (a margin under the TTL
    # for the clock read and the round trip)
    valid_until: float
    lost: bool = field(default=False)

    @property
    def held(self) -> bool:
        return not self.lost and time.monotonic() < self.valid_until

    def check(self) -> None:
        if not self.held:
            raise LeaseLost(f"lease {self.name!r} (token {self.token}) is no longer held")


def fenced_filter(query: dict[str, Any], lease: Lease) -> dict[str, Any]:
    """`query`, matching only a record no holder with a greater token has written."""
    return {"$and": [query, {"$or": [{FENCE_FIELD: {"$exists": False}},
                                     {FENCE_FIELD: {"$lte": lease.token}}]}]}


def fence_update(update: dict[str, Any], lease: Lease) -> dict[str, Any]:
    """`update`, also recording the token that wrote it (read by `fenced_filter`)."""
    sets = {**update.get("$set", {}), FENCE_FIELD: lease.token}
    return {**update, "$set": sets}


class Leases:
    """The lease records of one service's store, as seen by one process (`holder`)."""

    def __init__(self, db: AsyncDatabase, service: str, ttl: float = 10.0,
                 holder: str | None = None):
        if ttl <= 0:
            raise ValueError("a lease needs a positive TTL")
        self._records = db[COLLECTION]
        self.service = service
        self.holder = holder or holder_id(service)
        self.ttl = ttl
        self.held: dict[str, Lease] = {}

    def _lease(self, doc: dict[str, Any], started: float) -> Lease:
        lease = Lease(doc["_id"], self.holder, int(doc["token"]), self.ttl,
                      valid_until=started + self.ttl * 0.8)
        previous = self.held.get(lease.name)
        if previous is None or previous.token != lease.token:
            LEASE_CHANGES.labels(self.service, lease.name.split(":", 1)[0], "acquired").inc()
            log.info("lease.acquired", lease=lease.name, token=lease.token)
        self.held[lease.name] = lease
        return lease

    async def acquire(self, name: str) -> Lease | None:
        """The lease for this process (renewed, taken over or created), or None if held."""
        started = time.monotonic()
        now = datetime.now(UTC)
        until = now + timedelta(seconds=self.ttl)
        doc = await self._records.find_one_and_update(
            {"_id": name, "holder": self.holder},
            {"$set": {"expires_at": until}}, return_document=ReturnDocument.AFTER)
        if doc is None:
            doc = await self._records.find_one_and_update(
                {"_id": name, "expires_at": {"$lt": now}},
                {"$set": {"holder": self.holder, "expires_at": until, "acquired_at": now},
                 "$inc": {"token": 1}}, return_document=ReturnDocument.AFTER)
        if doc is None:
            try:
                doc = {"_id": name, "holder": self.holder, "token": 1, "expires_at": until,
                       "acquired_at": now}
                await self._records.insert_one(doc)
            except DuplicateKeyError:
                self._forget(name)
                return None
        return self._lease(doc, started)

    async def renew(self, lease: Lease) -> bool:
        """Extend `lease`; False (and the lease marked lost) when it was taken over."""
        started = time.monotonic()
        until = datetime.now(UTC) + timedelta(seconds=self.ttl)
        doc = await self._records.find_one_and_update(
            {"_id": lease.name, "holder": self.holder, "token": lease.token},
            {"$set": {"expires_at": until}}, return_document=ReturnDocument.AFTER)
        if doc is None:
            lease.lost = True
            self._forget(lease.name)
            LEASE_CHANGES.labels(self.service, lease.name.split(":", 1)[0], "lost").inc()
            log.warning("lease.lost", lease=lease.name, token=lease.token)
            return False
        lease.valid_until = started + self.ttl * 0.8
        return True

    async def release(self, lease: Lease) -> None:
        """Give the lease up now (a graceful stop): the next replica need not wait."""
        lease.lost = True
        self._forget(lease.name)
        await self._records.update_one(
            {"_id": lease.name, "holder": self.holder, "token": lease.token},
            {"$set": {"expires_at": RELEASED, "holder": None}})

    async def release_all(self) -> None:
        for lease in list(self.held.values()):
            with contextlib.suppress(PyMongoError):
                await self.release(lease)

    def _forget(self, name: str) -> None:
        self.held.pop(name, None)

    @contextlib.asynccontextmanager
    async def keeping(self, lease: Lease) -> AsyncIterator[Lease]:
        """Renew `lease` every third of its TTL while the block runs."""
        async def renew_loop() -> None:
            while not lease.lost:
                await asyncio.sleep(self.ttl / 3)
                try:
                    if not await self.renew(lease):
                        return
                except PyMongoError as exc:  # store away: `held` runs out on its own
                    log.warning("lease.renew_failed", lease=lease.name, error=repr(exc)[:200])

        task = asyncio.create_task(renew_loop(), name=f"lease:{lease.name}")
        try:
            yield lease
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def holder_of(self, name: str) -> dict[str, Any] | None:
        """The lease record as stored (for status pages and tests)."""
        return await self._records.find_one({"_id": name})
