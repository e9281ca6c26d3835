"""The embedded store (SecantusDB) as this desk runs it: `python -m desk_runtime.embedded_store
<secantus arguments>` — `make run` (scripts/run.py), `bench/` and the tests start it so.

One change to SecantusDB's own behaviour, applied before its CLI runs:

**Its transaction reaper never waits for a busy transaction.** Every statement and commit
of every transaction first takes the store's one transaction-registry lock and, holding it,
looks at each open transaction for one idle past its lifetime — taking each transaction's
own lock to do so. A transaction that is running a statement holds its own lock for that
statement's whole length, so every registry access waited for every statement running at
the time, and the whole store's transactions went one at a time behind the slowest: in
about half of `bench/pipeline.py`'s bursts the store stalled for seconds (cores 40–64 %
busy instead of ~88 %; POSTs waited up to 14 s; the acknowledgment mail's p99 went from
5–10 s to 14–27 s). A transaction running a statement is not idle, so the reaper now
passes it by (a non-blocking try of its lock) and ends only those idle past their
lifetime, as before. In four runs with it, none stalled (mail p99 5.6–8.3 s); the
same code without it stalled in two of four. `tests/runtime/test_embedded_store.py`
holds a transaction's long statement and requires another transaction to finish meanwhile.

Two more, which leave what the store answers unchanged and take work off every command
(a profile of the store under `bench/pipeline.py`'s burst put them at 9 % and 4 % of its
samples):

**Profiling settings are read from memory.** SecantusDB read each database's profiling
level from its settings table, under its global storage lock, for every command it
answered. They change only through its `set_profile` (the `profile` command), which now
also drops the remembered value, so a change still takes effect with the next command.

**A write looks for geo indexes before reading index options for them.** Every insert
and update pre-checked each geo index of the collection, reading the options of all its
indexes first — also when it has no geo index (none of the desk's collections has one).
It now returns at once when none of the statement's indexes is geo, which is what its
loop over them would have found.

**One write statement reads a collection's index options once.** Each insert or update
read the options of every index of its collection from the index catalog up to four
times per document (the unique-key check, writing the old and new index entries) — 10 %
of the store's samples for the desk's cards, with 15 indexes. Inside one statement
(holding the collection's lock, which index changes also take, on one snapshot) the
catalog cannot change, so the statement keeps what it read; the next statement reads
afresh.

**Its TTL sweep reads only what an index says may have expired.** Every 60 s SecantusDB
walks each collection with a TTL index and decodes every document in it, under its global
lock, to find the expired ones. The desk keeps a record per consumed event for 30 days
(`processed`), its sent outbox entries for 7 and its deliveries' log: after a soak of
9,000 tickets (`bench/pipeline.py --soak-minutes 30 --rate 5 --idle-after-minutes 60`) the
idle store used 10.2 % of a core over the next hour (1.5 % before any traffic), growing
with every ticket kept. The sweep's candidates now come from the TTL index itself (the
range below each index's cutoff, as the store's own `deleteMany` finds them), and the
sweep still tests each candidate exactly as before, so what it deletes is unchanged.
Real MongoDB's TTL monitor scans its index the same way.

**The sweep lets go of what it read.** The sweeper waits a minute between sweeps holding its
thread's WiredTiger session, and the sweep left cursors on rows (above: on a TTL index's first
live entry, the page every new entry of that index goes to). WiredTiger cannot split a page
that anyone holds; once such a page grew past its split size, every write reaching it tried
the split ten times, sleeping between tries, until the next sweep — `bench/pipeline.py`'s
bursts stalled so for up to a minute with the cores idle (3.5–4.5 cards/s instead of
12.8–13.6). The sweep now releases its session's snapshot and positions when it ends, as
every command does.

Real MongoDB is not involved: only the embedded store runs through this.
"""

from __future__ import annotations

import functools
import sys
import threading
from datetime import UTC, datetime, timedelta

_PATCHED = False
_FAST_PATHS = False
_TTL_BY_INDEX = False


def patch_reaper() -> None:
    """Make SecantusDB's transaction reaper skip transactions that are running a statement."""
    global _PATCHED
    if _PATCHED:
        return
    from secantus import transactions

    registry = transactions.TransactionRegistry
    in_progress = transactions.TxnState.IN_PROGRESS

    def _prune_locked(self) -> int:  # called with the registry lock held
        cutoff = self._time() - self._lifetime
        reaped = 0
        for txn in list(self._txns.values()):
            # busy with a statement (its lock held for the statement's length): not idle
            if not txn.mutex.acquire(blocking=False):
                continue
            try:
                if txn.state is in_progress and txn.last_use < cutoff:
                    self._rollback_quietly(txn)
                    txn.state = transactions.TxnState.ABORTED
                    reaped += 1
            finally:
                txn.mutex.release()
        return reaped

    registry._prune_locked = _prune_locked
    _PATCHED = True


def patch_fast_paths() -> None:
    """Profiling settings from memory; no index-options read for a write without geo
    indexes; a write statement's index options read once. What the store answers is
    unchanged."""
    global _FAST_PATHS
    if _FAST_PATHS:
        return
    from secantus import storage

    store = storage.Storage
    read_profile, write_profile = store.get_profile, store.set_profile
    geo_check, is_geo = store._validate_geo_indexes, storage._geo_type_of
    guard = threading.Lock()
    generation = [0]  # bumped by every set_profile: a read begun before it is not kept
    remembered: dict[tuple[int, str], dict] = {}

    def get_profile(self, db: str) -> dict:
        key = (id(self), db)
        settings = remembered.get(key)
        if settings is None:
            seen = generation[0]
            settings = read_profile(self, db)
            with guard:
                if generation[0] == seen:
                    remembered[key] = settings
        return dict(settings)

    def set_profile(self, db: str, **settings) -> None:
        try:
            write_profile(self, db, **settings)
        finally:
            with guard:
                generation[0] += 1
                remembered.pop((id(self), db), None)

    def _validate_geo_indexes(self, db, coll, doc, indexes, partials=None) -> None:
        if not any(is_geo(key_spec) is not None for _, key_spec, _, _ in indexes or ()):
            return
        geo_check(self, db, coll, doc, indexes, partials)

    store.get_profile = get_profile
    store.set_profile = set_profile
    store._validate_geo_indexes = _validate_geo_indexes

    # one write statement: the index options it read, per collection
    statement = threading.local()
    read_options = store._index_options_map

    def _index_options_map(self, db: str, coll: str) -> dict:
        kept = getattr(statement, "options", None)
        if kept is None:
            return read_options(self, db, coll)
        found = kept.get((db, coll))
        if found is None:
            found = kept[(db, coll)] = read_options(self, db, coll)
        return found

    def one_statement(run):
        @functools.wraps(run)
        def wrapper(self, *args, **kwargs):
            outer = getattr(statement, "options", None)
            statement.options = {}
            try:
                return run(self, *args, **kwargs)
            finally:
                statement.options = outer
        return wrapper

    store._index_options_map = _index_options_map
    # inside the write-conflict retry, so that a retried attempt reads afresh
    for name in ("_insert_chunk", "_update_chunk", "_update_matching_single_txn"):
        attempt = getattr(store, name).__wrapped__
        setattr(store, name, storage._retry_write_conflicts(one_statement(attempt)))
    _FAST_PATHS = True


def patch_ttl_sweep() -> None:
    """The TTL sweep's candidates come from each TTL index's range below its cutoff instead
    of a decode of the whole collection; each is still tested by the sweep itself."""
    global _TTL_BY_INDEX
    if _TTL_BY_INDEX:
        return
    from secantus import storage

    store = storage.Storage
    prune, scan_docs = store.prune_ttl, store._scan_docs
    sweep = threading.local()  # the collection being swept and its TTL ranges

    def _scan_docs(self, db: str, coll: str):
        wanted = getattr(sweep, "ranges", None)
        if wanted is None or wanted[0] != (db, coll):
            return scan_docs(self, db, coll)
        sweep.ranges = None  # the sweep's one scan; an uncovered range below scans in full
        rows: dict = {}
        for expired in wanted[1]:
            for row in self._candidates_iter(db, coll, expired):
                rows.setdefault(row[0], row)
        return list(rows.values())

    def prune_ttl(self, db: str, coll: str, *, now: datetime | None = None) -> int:
        try:
            return by_index(self, db, coll, now)
        finally:
            # The sweeper then waits a minute holding its thread's session: a cursor
            # left positioned would pin its page (and WiredTiger's oldest snapshot)
            self.release_thread_snapshot()

    def by_index(self, db: str, coll: str, now: datetime | None) -> int:
        when = now if now is not None else datetime.now(UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        ranges = []
        for _name, key_spec, options in self._iter_indexes(db, coll):
            ttl = options.get("expireAfterSeconds")
            if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl >= 0:
                continue
            if len(key_spec) != 1:
                continue
            (field, direction), = key_spec.items()
            if field == "_id" or isinstance(direction, bool) or not isinstance(
                    direction, (int, float)):
                continue
            try:
                ranges.append({field: {"$lt": when - timedelta(seconds=float(ttl))}})
            except OverflowError:
                continue
        if not ranges:  # no TTL index: what the sweep itself finds, without its catalog read
            return 0
        sweep.ranges = ((db, coll), ranges)
        try:
            return prune(self, db, coll, now=when)
        finally:
            sweep.ranges = None

    store._scan_docs = _scan_docs
    store.prune_ttl = prune_ttl
    _TTL_BY_INDEX = True


def main(argv: list[str] | None = None) -> int:
    patch_reaper()
    patch_fast_paths()
    patch_ttl_sweep()
    from secantus import cli

    return cli.main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
