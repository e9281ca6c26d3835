"""What a kept history costs the idle embedded store: its TTL sweep, with and without the
desk's index-driven sweep (desk_runtime.embedded_store).

    python bench/ttl_sweep.py                  # 150,000 kept records, 130 s idle window
    python bench/ttl_sweep.py --docs 50000 --idle 70

Starts two stores side by side on fresh directories — SecantusDB as released
(`python -m secantus`) and as the desk runs it (`python -m desk_runtime.embedded_store`) —
fills each with `--docs` records shaped like the desk's per-event `processed` records
(a TTL index on `at`, 30 days; none expired) plus 100 expired ones, then leaves both idle
for `--idle` seconds (SecantusDB sweeps every 60 s) and prints each store's CPU over the
window, the records left, and a raw insert rate into each afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymongo import AsyncMongoClient  # noqa: E402

from bench.common import cpu_seconds  # noqa: E402
from bench.pipeline import Store, insert_rate  # noqa: E402

KEPT = timedelta(days=30)


async def fill(url: str, docs: int) -> None:
    client = AsyncMongoClient(url)
    coll = client["bench_ttl"]["processed"]
    await coll.create_index("at", expireAfterSeconds=int(KEPT.total_seconds()))
    now = datetime.now(UTC)
    batch = 5000
    for start in range(0, docs, batch):
        await coll.insert_many([{"_id": uuid.uuid4().hex, "consumer": "boards.requests",
                                 "at": now - timedelta(seconds=i)}
                                for i in range(start, min(docs, start + batch))])
    await coll.insert_many([{"_id": f"expired-{i}", "consumer": "boards.requests",
                             "at": now - KEPT - timedelta(hours=1)} for i in range(100)])
    await client.close()


async def left(url: str) -> int:
    client = AsyncMongoClient(url)
    n = await client["bench_ttl"]["processed"].count_documents({})
    await client.close()
    return n


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=150_000)
    ap.add_argument("--idle", type=float, default=130.0)
    args = ap.parse_args()

    stores = {"SecantusDB as released": Store(False, module="secantus"),
              "as the desk runs it": Store(False)}
    try:
        for store in stores.values():
            await fill(store.url, args.docs)
        await asyncio.sleep(2)
        before = {name: cpu_seconds(s.proc.pid) for name, s in stores.items()}
        started = time.monotonic()
        await asyncio.sleep(args.idle)
        elapsed = time.monotonic() - started
        print(f"ttl sweep — {args.docs:,} kept records + 100 expired, idle {elapsed:.0f} s")
        for name, store in stores.items():
            cpu = (cpu_seconds(store.proc.pid) - before[name]) / elapsed * 100
            rate = await insert_rate(store.url, 3.0)
            print(f"  {name:<24} idle CPU {cpu:5.1f} % of a core   records left "
                  f"{await left(store.url):,}   insert_one afterwards {rate:7.1f} /s")
    finally:
        for store in stores.values():
            store.stop()


if __name__ == "__main__":
    asyncio.run(main())
