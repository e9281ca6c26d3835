"""The admin pages' cost of calling the owning service: boards' /v1/admin/... next to the
owner's own API and the raw store read beneath it.

    python bench/admin_pages.py [--requests 200]

Starts boards and sla as processes (as the tests do: a fresh SecantusDB, the broker of
DESK_TEST_AMQP_URL or 127.0.0.1:5672), signs an admin in, then prints p50/p99 of:
reading the SLA configuration straight from sla's store (PyMongo, both collections), from
sla's API (GET /v1/policies + /v1/calendars), through boards' admin API (the same two calls
made by boards with sla's admin token), the whole /admin/sla page; and saving a policy
with sla's API next to boards' admin API (which also reads the policy before, and writes
the audit entry).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from pymongo import MongoClient  # noqa: E402

from bench.common import pct  # noqa: E402
from tests.support.infra import mongo_server, rabbitmq_server  # noqa: E402
from tests.support.stack import Stack, cleanup  # noqa: E402


def measure(fn, n: int) -> list[float]:
    fn()  # warm (connections, caches)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def line(name: str, ms: list[float]) -> None:
    print(f"{name:<60} p50 {pct(ms, 50):7.2f} ms   p99 {pct(ms, 99):7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    n = parser.parse_args().requests
    with mongo_server() as mongo, rabbitmq_server() as amqp:
        stack = Stack(mongo, amqp, Path(tempfile.mkdtemp(prefix="bench-admin-")))
        stack.extra["boards"] = {"BOARDS_SLA_ADMIN_TOKEN": stack.ADMIN_TOKEN}
        stack.extra["sla"] = {"SLA_ADMIN_TOKEN": stack.ADMIN_TOKEN}
        stack.start(("boards", "sla"))
        try:
            admin = {"Authorization": f"Bearer {stack.ADMIN_TOKEN}"}
            sla = httpx.Client(base_url=stack["sla"].url, headers=admin, timeout=30)
            boards = httpx.Client(base_url=stack["boards"].url, timeout=30)
            csrf = boards.post("/v1/session", json={"token": stack.ADMIN_TOKEN}).json()[
                "csrf_token"]
            store = MongoClient(mongo)[f"{stack.namespace}_sla"]
            policy = {"calendar": "24x7", "targets": {"first_response": 30, "resolution": 480}}

            print(f"admin pages, {n} sequential requests each (boards -> sla on loopback)")
            line("raw store: policies + calendars (find)",
                 measure(lambda: (list(store.policies.find()), list(store.calendars.find())), n))
            line("sla API: GET /v1/policies + /v1/calendars",
                 measure(lambda: (sla.get("/v1/policies"), sla.get("/v1/calendars")), n))
            line("boards admin API: GET /v1/admin/sla",
                 measure(lambda: boards.get("/v1/admin/sla").raise_for_status(), n))
            line("boards page: GET /admin/sla (rendered)",
                 measure(lambda: boards.get("/admin/sla").raise_for_status(), n))
            line("sla API: PUT /v1/policies/bench",
                 measure(lambda: sla.put("/v1/policies/bench", json=policy).raise_for_status(),
                         n))
            line("boards admin API: PUT /v1/admin/sla/policies/bench (+audit)",
                 measure(lambda: boards.put("/v1/admin/sla/policies/bench", json=policy,
                                            headers={"X-CSRF-Token": csrf}).raise_for_status(),
                         n))
        finally:
            stack.stop()
            cleanup(mongo, amqp, stack.namespace)


if __name__ == "__main__":
    main()
