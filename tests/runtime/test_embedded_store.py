"""The embedded store as the desk runs it (`desk_runtime.embedded_store`; the tests' store
is started through it too): one transaction's long statement does not hold up the others.

Unpatched, SecantusDB's transaction reaper — run on every transactional statement and
commit, holding the store's one transaction-registry lock — waited for each transaction
running a statement, so every other transaction's statements and commits waited for the
longest statement running anywhere (the stalls of `bench/pipeline.py`).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from desk_runtime.mongo import in_transaction

DOCS = 60_000  # one insert_many of these in a transaction: a statement of seconds here


async def test_a_long_statement_in_one_transaction_does_not_hold_up_the_others(db):
    client = db.client
    await db.small.insert_one({"_id": "seed"})
    await db.big.insert_one({"_id": "seed"})
    started = asyncio.Event()
    times: dict[str, float] = {}

    async def long_transaction() -> None:
        # aborted, not committed: under a loaded machine the statement may outlast the
        # tests' store's 10 s transaction lifetime, and the reaper then ends it (rightly)
        async with client.start_session() as session:
            await session.start_transaction()
            await db.big.insert_one({"_id": "first"}, session=session)
            started.set()
            times["long_from"] = time.monotonic()
            await db.big.insert_many([{"_id": i, "pad": "x" * 64} for i in range(DOCS)],
                                     session=session)
            times["long_to"] = time.monotonic()
            await session.abort_transaction()

    task = asyncio.create_task(long_transaction())
    await started.wait()
    await asyncio.sleep(0.3)  # its one long statement is running now

    for k in range(3):
        async def small(session, k=k) -> None:
            await db.small.insert_one({"_id": k}, session=session)

        await in_transaction(client, small, seconds=60)
    times["small_done"] = time.monotonic()
    await task

    long_statement = times["long_to"] - times["long_from"]
    assert long_statement > 1.0, f"the long statement took only {long_statement:.2f} s"
    # the three small transactions finished while the long statement still ran
    assert times["small_done"] < times["long_to"], (
        f"small transactions done {times['small_done'] - times['long_from']:.2f} s in, "
        f"the long statement took {long_statement:.2f} s")
    assert await db.small.count_documents({}) == 4
    assert await db.big.count_documents({}) == 1  # the long transaction left nothing


async def test_a_profiling_level_set_takes_effect_with_the_next_command(db):
    """The store remembers each database's profiling settings instead of reading them for
    every command; setting them must still change what the very next command does."""
    await db.seen.insert_one({"_id": 1})
    await db.seen.find_one({"_id": 1}, comment="before")  # level 0 is remembered now
    assert (await db.command("profile", -1))["was"] == 0

    await db.command("profile", 2)
    await db.seen.find_one({"_id": 1}, comment="profiled")
    await db.command("profile", 0)
    await db.seen.find_one({"_id": 1}, comment="after")

    comments = {d.get("command", {}).get("comment")
                async for d in db["system.profile"].find({"ns": f"{db.name}.seen"})}
    assert "profiled" in comments
    assert "before" not in comments and "after" not in comments
    assert (await db.command("profile", -1))["was"] == 0


async def test_geo_indexes_still_refuse_bad_geometry(db):
    """Writes skip the geo pre-check only when the collection has no geo index."""
    from pymongo.errors import WriteError

    await db.places.create_index([("at", "2dsphere")])
    await db.places.insert_one({"_id": "ok", "at": {"type": "Point", "coordinates": [13, 52]}})
    with pytest.raises(WriteError):
        await db.places.insert_one({"_id": "bad", "at": {"type": "Point",
                                                         "coordinates": [500, 100]}})
    with pytest.raises(WriteError):
        await db.places.update_one({"_id": "ok"}, {"$set": {"at.coordinates": [500, 100]}})
    assert (await db.places.find_one({"_id": "ok"}))["at"]["coordinates"] == [13, 52]
    assert await db.places.count_documents({}) == 1


def test_a_write_without_geo_indexes_reads_no_index_options():
    from desk_runtime.embedded_store import patch_fast_paths
    from secantus.storage import Storage

    patch_fast_paths()

    class NoOptions:  # reading index options would fail
        def _index_options_map(self, db, coll):
            raise AssertionError("index options read for a write without geo indexes")

        _partial_filters = _index_options_map

    plain = [("a_1", {"a": 1}, False, False), ("b_1_c_1", {"b": 1, "c": 1}, True, True)]
    Storage._validate_geo_indexes(NoOptions(), "d", "c", {"a": 1}, plain)
    with pytest.raises(AssertionError):  # a geo index is still checked
        Storage._validate_geo_indexes(NoOptions(), "d", "c", {"a": 1},
                                      [*plain, ("at_2dsphere", {"at": "2dsphere"}, False, False)])


def test_a_write_statement_reads_its_index_catalog_once_not_per_document(tmp_path):
    """In the store's own process: an insert or update reads the collection's index catalog
    as often for 50 documents as for one; an index made between two statements is honoured
    by the second (with its collation, which only the index's options carry)."""
    from desk_runtime.embedded_store import patch_fast_paths
    from secantus.storage import Storage

    patch_fast_paths()
    store = Storage(str(tmp_path / "store"))
    reads: list[str] = []
    scan = Storage._iter_indexes
    store._iter_indexes = lambda db, coll: (reads.append(coll), scan(store, db, coll))[1]

    def catalog_reads(write) -> int:
        reads.clear()
        write()
        return len(reads)

    try:
        store.create_index("d", "people", "age_1", {"age": 1})
        store.create_index("d", "people", "tags_1", {"tags": 1})
        one = catalog_reads(lambda: store.insert(
            "d", "people", [{"_id": -1, "age": -1, "tags": ["a"]}]))
        many = catalog_reads(lambda: store.insert(
            "d", "people", [{"_id": i, "age": i, "tags": ["a", str(i)]} for i in range(50)]))
        assert many == one, (one, many)
        one = catalog_reads(lambda: store.update_matching(
            "d", "people", {"age": -1}, {"$inc": {"age": 1000}}))
        many = catalog_reads(lambda: store.update_matching(
            "d", "people", {"age": {"$gte": 0, "$lt": 50}}, {"$inc": {"age": 100}},
            multi=True))
        assert many <= one + 1, (one, many)  # one more for the multi-update's range pick
        assert len(store.find_matching("d", "people", {"age": {"$gte": 100, "$lt": 200}})) == 50

        store.insert("d", "names", [{"_id": 1, "name": "anna"}])
        store.create_index("d", "names", "name_ci", {"name": 1},
                           {"unique": True, "collation": {"locale": "en", "strength": 2}})
        inserted, errors = store.insert("d", "names", [{"_id": 2, "name": "ANNA"}])
        assert inserted == 0 and errors[0]["code"] == 11000, errors
    finally:
        store.close()


def test_the_ttl_sweep_decodes_what_may_have_expired_not_the_whole_collection(
        tmp_path, monkeypatch):
    """In the store's own process: a sweep over 3,000 live documents and 7 expired ones
    decodes about the 7, and deletes exactly what the unpatched sweep deletes — an expired
    date, by either TTL index; not a string, a missing field, a live date, nor what a
    partial TTL index leaves out."""
    from datetime import UTC, datetime, timedelta

    from desk_runtime.embedded_store import patch_ttl_sweep
    from secantus import storage

    patch_ttl_sweep()
    store = storage.Storage(str(tmp_path / "store"), ttl_sweep_seconds=0)
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    old, fresh = now - timedelta(hours=2), now - timedelta(minutes=5)
    try:
        store.create_index("d", "seen", "at_1", {"at": 1}, {"expireAfterSeconds": 3600})
        store.create_index("d", "seen", "gone_1", {"gone": 1},
                           {"expireAfterSeconds": 0, "sparse": True})
        store.insert("d", "seen", [{"_id": i, "at": fresh} for i in range(3000)])
        store.insert("d", "seen", [{"_id": f"old{i}", "at": old} for i in range(5)]
                     + [{"_id": "due", "at": fresh, "gone": now - timedelta(seconds=1)},
                        {"_id": "both", "at": old, "gone": old},
                        {"_id": "text", "at": "2020-01-01"}, {"_id": "none"},
                        {"_id": "later", "at": fresh, "gone": now + timedelta(hours=1)}])
        store.create_index("d", "codes", "at_1", {"at": 1},
                           {"expireAfterSeconds": 60, "partialFilterExpression": {"used": True}})
        store.insert("d", "codes", [{"_id": "used", "at": old, "used": True},
                                    {"_id": "open", "at": old, "used": False}])

        decoded = []
        decode = storage.bson.decode
        monkeypatch.setattr(storage.bson, "decode", lambda b, *a, **k: (
            decoded.append(1), decode(b, *a, **k))[1])
        assert store.prune_ttl("d", "seen", now=now) == 7
        assert len(decoded) < 200, len(decoded)  # 46 here (catalog reads too); unpatched 3,033
        assert store.prune_ttl("d", "codes", now=now) == 1
        monkeypatch.undo()

        left = {d["_id"] for d in store.find_matching("d", "seen", {})}
        assert left == set(range(3000)) | {"text", "none", "later"}
        assert [d["_id"] for d in store.find_matching("d", "codes", {})] == ["open"]
        assert store.prune_ttl("d", "seen", now=now) == 0
    finally:
        store.close()


def test_a_ttl_sweep_leaves_no_cursor_holding_a_page(tmp_path):
    """In the store's own process: after a sweep — of a collection with a TTL index, with
    and without anything expired, and of one without — none of the sweeping thread's
    cursors is left on a row. The sweeper then waits a minute with that session: a cursor
    left on the page where new index entries go kept WiredTiger from splitting that page,
    every write reaching it retried the split, sleeping between tries, and
    `bench/pipeline.py`'s bursts stalled for a minute (4 cards/s instead of 13)."""
    from datetime import UTC, datetime, timedelta

    import wiredtiger
    from desk_runtime.embedded_store import patch_ttl_sweep
    from secantus import storage

    patch_ttl_sweep()
    store = storage.Storage(str(tmp_path / "store"), ttl_sweep_seconds=0)
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)

    def rows_held() -> list[str]:
        held = []
        for (table, _), cursor in store._tls.cursors.items():
            try:
                cursor.get_key()
            except wiredtiger.WiredTigerError:
                continue  # not on a row
            held.append(table)
        return held

    try:
        store.create_index("d", "seen", "expires_1", {"expires_at": 1},
                           {"expireAfterSeconds": 0})
        store.insert("d", "seen", [{"_id": i, "expires_at": now + timedelta(days=30)}
                                   for i in range(500)])
        store.insert("d", "plain", [{"_id": i, "n": i} for i in range(50)])
        store.find_matching("d", "plain", {"_id": 7})
        assert rows_held(), "the check sees a cursor left on a row"

        assert store.prune_ttl("d", "seen", now=now) == 0
        assert rows_held() == []
        store.insert("d", "seen", [{"_id": "old", "expires_at": now - timedelta(hours=1)}])
        assert store.prune_ttl("d", "seen", now=now) == 1
        assert rows_held() == []
        assert store.prune_ttl("d", "plain", now=now) == 0
        assert rows_held() == []
        assert store.prune_ttl_all_collections(now=now) == 0
        assert rows_held() == []
        assert store.count_matching("d", "seen", {}) == 500
    finally:
        store.close()
