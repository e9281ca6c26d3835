"""A replica of a consuming service as a process of its own, for the partition-assignment tests.

    python -m tests.support.partition_replica   (DESK_AMQP_URL, DESK_MONGO_URL, DESK_MONGO_DB,
                                                 DESK_BUS_NAMESPACE, DESK_LEASE_SECONDS,
                                                 REPLICA_HANDLE_SECONDS)

The shared runtime (membership, partition leases, FastStream subscribers) of a service named
boards, consuming its `boards.requests` queue: each `request.received` it handles is appended
to its request's record in the `handled` collection (`seq`: the subjects in the order they
were handled; `by`: the replicas that handled them), in the handler's transaction.
It runs until killed (SIGKILL: a crash) or sent SIGTERM (a graceful stop).
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime

from desk_contracts.events import RequestReceived
from desk_runtime.service import ServiceRuntime
from desk_runtime.settings import ServiceSettings
from desk_runtime.unit_of_work import UnitOfWork


async def main() -> None:
    runtime = ServiceRuntime("boards", ServiceSettings(log_json=False))
    pause = float(os.environ.get("REPLICA_HANDLE_SECONDS", "0"))

    @runtime.on("requests", "request.received")
    async def handled(uow: UnitOfWork, event: RequestReceived) -> None:
        await asyncio.sleep(pause)  # work that takes a while: messages are in hand when asked
        await uow.db["handled"].update_one(
            {"_id": event.request_id},
            {"$push": {"seq": event.subject, "by": runtime.leases.holder},
             "$set": {"at": datetime.now(UTC)}}, upsert=True, session=uow.session)

    await runtime.start()
    done = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
    print(runtime.leases.holder, flush=True)
    await done.wait()
    await runtime.stop()


if __name__ == "__main__":
    asyncio.run(main())
