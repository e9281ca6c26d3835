"""Leases with fencing on the real store: one holder, takeover after the holder is killed,
and a paused old holder's writes refused."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time

import pytest

from desk_runtime.lease import RELEASED, LeaseLost, Leases, fence_update, fenced_filter

TTL = 1.5


async def test_one_holder_at_a_time_and_a_release_hands_it_over_with_a_new_token(db):
    a, b = Leases(db, "intake", TTL), Leases(db, "intake", TTL)
    first = await a.acquire("imap:question")
    assert first is not None and first.token == 1 and first.held
    assert await b.acquire("imap:question") is None
    again = await a.acquire("imap:question")  # a renewal keeps the token
    assert again is not None and again.token == 1
    assert await b.acquire("imap:other") is not None  # another name is another lease

    await a.release(again)
    assert not again.held
    taken = await b.acquire("imap:question")
    assert taken is not None and taken.token == 2
    assert await a.acquire("imap:question") is None
    assert not await a.renew(first)  # the old holder learns it lost it
    assert first.lost


async def test_a_killed_holder_is_taken_over_within_its_ttl_and_cannot_write_after(
        db, mongo_url):
    """A real process holds the lease (renewing it) and is SIGKILLed: another takes over
    once the record expires, with a greater token; the dead holder's token is fenced out."""
    holder = textwrap.dedent(f"""
        import asyncio, sys
        from pymongo import AsyncMongoClient
        from desk_runtime.lease import Leases

        async def main():
            client = AsyncMongoClient({mongo_url!r}, tz_aware=True)
            leases = Leases(client[{db.name!r}], "intake", {TTL})
            lease = await leases.acquire("telegram:poller")
            async with leases.keeping(lease):
                print("TOKEN", lease.token, flush=True)
                await asyncio.sleep(3600)

        asyncio.run(main())
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        line = ""
        while not line.startswith("TOKEN"):  # its log lines come first
            line = proc.stdout.readline()
            assert line, "the holder exited"
        assert line.split() == ["TOKEN", "1"]
        other = Leases(db, "intake", TTL)
        # renewed every TTL/3: while it lives, the lease stays with it (well past one TTL)
        deadline = time.monotonic() + 2 * TTL
        while time.monotonic() < deadline:
            assert await other.acquire("telegram:poller") is None
            await asyncio.sleep(0.2)
        proc.kill()
        proc.wait(10)
        killed_at = time.monotonic()
        lease = None
        while lease is None and time.monotonic() - killed_at < 10 * TTL:
            lease = await other.acquire("telegram:poller")
            await asyncio.sleep(0.1)
        assert lease is not None, "nobody took the lease over"
        assert time.monotonic() - killed_at < TTL + 1.0
        assert lease.token == 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    # fencing: the new holder writes with token 2; a write under token 1 no longer matches
    records = db["state"]
    await records.update_one(fenced_filter({"_id": "polling"}, lease),
                             fence_update({"$set": {"offset": 10}}, lease), upsert=True)
    stale = type(lease)(lease.name, "dead", 1, TTL, valid_until=time.monotonic() + TTL)
    result = await records.update_one(fenced_filter({"_id": "polling"}, stale),
                                      fence_update({"$set": {"offset": 3}}, stale))
    assert result.matched_count == 0
    assert (await records.find_one({"_id": "polling"}))["offset"] == 10


async def test_keeping_renews_and_a_taken_over_lease_stops_being_held(db):
    a, b = Leases(db, "intake", TTL), Leases(db, "intake", TTL)
    lease = await a.acquire("telegram:outbox")
    async with a.keeping(lease):
        await asyncio.sleep(TTL * 1.5)  # past its first expiry: renewed meanwhile
        assert lease.held
        assert await b.acquire("telegram:outbox") is None
        # an operator (or a clock gone wrong) lets it expire and someone else takes it
        await db["leases"].update_one({"_id": "telegram:outbox"},
                                      {"$set": {"expires_at": RELEASED}})
        assert (await b.acquire("telegram:outbox")).token == 2
        deadline = time.monotonic() + TTL
        while lease.held and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not lease.held
        with pytest.raises(LeaseLost):
            lease.check()

