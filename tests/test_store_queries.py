"""No query on a path that runs per event or per request holds an `$or`.

SecantusDB, the embedded store, answers every filter holding an `$or` (even beside an
`_id` equality) by scanning the whole collection: 81 ms of store CPU per lookup at 3,000
documents, against 0.3 ms by `_id`, and growing with the collection. Real MongoDB plans
each branch on its own index, but the desk runs on both, so a per-event or per-request
query spells its alternatives as separate indexed queries (or `$in`, `$not`) instead.
This test reads the services' and the runtime's code and fails on an `$or` outside the
places listed here, each with why a scan is acceptable there.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# file → why an `$or` is acceptable there
ALLOWED = {
    "services/boards/boards/stats/repository.py":
        "statistics read a period's cards in bulk; they scan by design (see _by_cards)",
    "services/boards/boards/repository/views.py":
        "an agent's saved views: a few dozen documents per desk",
    "libs/runtime/desk_runtime/lease.py":
        "leases: one document per singleton (a mailbox, a poller), a handful per desk",
}


def _or_sites() -> list[str]:
    sites = []
    files = sorted((ROOT / "services").glob("*/*/**/*.py")) + sorted(
        (ROOT / "libs").glob("*/desk_*/**/*.py"))
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in ("$or", "$nor"):
                sites.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return sites


def test_no_or_query_outside_the_places_that_may_scan():
    stray = [s for s in _or_sites() if s.rsplit(":", 1)[0] not in ALLOWED]
    assert stray == [], ("an `$or` makes the embedded store scan the whole collection; "
                         "split it into indexed queries: " + ", ".join(stray))


def test_the_check_finds_an_or(tmp_path, monkeypatch):
    """The probe: the same walk over a module holding an `$or` reports it."""
    module = tmp_path / "services" / "demo" / "demo" / "repository.py"
    module.parent.mkdir(parents=True)
    module.write_text('Q = {"$or": [{"a": 1}, {"b": 2}]}\n')
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _or_sites() == ["services/demo/demo/repository.py:1"]
