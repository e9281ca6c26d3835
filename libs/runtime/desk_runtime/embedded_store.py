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

Real MongoDB is not involved: only the embedded store runs through this.
"""

from __future__ import annotations

import sys

_PATCHED = False


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


def main(argv: list[str] | None = None) -> int:
    patch_reaper()
    from secantus import cli

    return cli.main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
