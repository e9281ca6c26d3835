"""The shared runtime on a real broker and store: outbox relay, idempotent consumers,
retries, dead letters and their replay."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import aio_pika
import pytest

from desk_contracts import make_envelope
from desk_contracts.events import Person, RequestReceived
from desk_contracts.topology import DELIVERY_LIMIT, Topology
from desk_runtime.bus import delete_topology
from desk_runtime.deadletters import list_dead, replay
from desk_runtime.metrics import BUS_IN
from desk_runtime.outbox import COLLECTION, COMMITTER_LEASE
from desk_runtime.service import ServiceRuntime
from desk_runtime.settings import ServiceSettings


def taken(service: str, event_type: str) -> float:
    """Deliveries this process settled (processed or duplicate), from its own metrics."""
    return sum(sample.value for metric in BUS_IN.collect() for sample in metric.samples
               if sample.name.endswith("_total") and sample.labels.get("service") == service
               and sample.labels.get("event_type") == event_type
               and sample.labels.get("outcome") in ("processed", "duplicate"))


def request(i: int = 0) -> RequestReceived:
    return RequestReceived(request_id=f"r-{uuid.uuid4()}", channel="api", service_id="question",
                           requester=Person(email=f"u{i}@acme.example"), subject=f"S{i}",
                           text="T", received_at=datetime.now(UTC))


@pytest.fixture
async def env(amqp_url, mongo_url):
    ns = f"t{uuid.uuid4().hex[:10]}"
    made: list[ServiceRuntime] = []

    def runtime(name: str = "boards", **kw) -> ServiceRuntime:
        settings = ServiceSettings(amqp_url=amqp_url, mongo_url=mongo_url, bus_namespace=ns,
                                   mongo_db=f"{ns}_{name}_{len(made)}", log_json=False,
                                   outbox_poll_seconds=0.1, **kw)
        rt = ServiceRuntime(name, settings)
        made.append(rt)
        return rt

    yield ns, runtime
    for rt in made:
        if rt.bus.ready:
            await rt.stop()
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        await delete_topology(await conn.channel(), Topology(ns))
    from pymongo import AsyncMongoClient
    client = AsyncMongoClient(mongo_url)
    for name in await client.list_database_names():
        if name.startswith(ns):
            await client.drop_database(name)
    await client.close()


async def tap(amqp_url: str, ns: str, key: str = "#") -> tuple[aio_pika.abc.AbstractConnection,
                                                               aio_pika.abc.AbstractQueue]:
    conn = await aio_pika.connect(amqp_url)
    ch = await conn.channel()
    ex = await ch.declare_exchange(Topology(ns).exchange, "topic", durable=True)
    q = await ch.declare_queue(f"{ns}.test.tap", auto_delete=True)
    await q.bind(ex, key)
    return conn, q


async def until(condition) -> None:
    """Wait (up to 10 s) until `condition()` holds."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def dead_letters(amqp_url: str, ns: str, queue: str = "boards.requests") -> list[dict]:
    """The queue's dead letters, once there are any (at most 10 s)."""
    dead: list[dict] = []
    for _ in range(100):
        dead = await list_dead(amqp_url, Topology(ns), queue, 10)
        if dead:
            break
        await asyncio.sleep(0.1)
    return dead


async def drain(q, wait: float = 1.0, expect: int | None = None
                ) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """What arrives within `wait` seconds (or until `expect` messages came)."""
    out = []
    deadline = asyncio.get_running_loop().time() + wait
    while asyncio.get_running_loop().time() < deadline and (expect is None or len(out) < expect):
        m = await q.get(no_ack=True, fail=False)
        if m is None:
            await asyncio.sleep(0.05)
            continue
        out.append(m)
    return out


async def test_outbox_entries_left_by_a_crashed_process_are_published_once(env, amqp_url):
    ns, runtime = env
    crashed = runtime(outbox_relay=False)
    await crashed.start()
    conn, q = await tap(amqp_url, ns, "request.received.v1")
    async with conn:
        emitted = []

        async def work(uow):
            emitted.append(await uow.emit(request(1)))
            emitted.append(await uow.emit(request(2)))

        await crashed.transact(work)
        assert await drain(q, 0.5) == []  # committed, not published: the "crash" window
        await crashed.stop()

        # a new process on the same store takes over, once the committer's lease ran
        # out, and publishes in commit order
        survivor = ServiceRuntime("boards", crashed.settings.model_copy(
            update={"outbox_relay": True}))
        await survivor.start()
        try:
            got = await drain(q, COMMITTER_LEASE.total_seconds() + 15, expect=2)
            got += await drain(q, 0.5)  # and nothing more
            assert [m.message_id for m in got] == [str(e.event_id) for e in emitted]
            pending = await survivor.db[COLLECTION].count_documents({"sent_at": None})
            assert pending == 0
        finally:
            await survivor.stop()


async def test_an_expired_claim_is_taken_over_by_another_relay(env, amqp_url):
    ns, runtime = env
    rt = runtime(outbox_relay=False)
    await rt.start()
    conn, q = await tap(amqp_url, ns, "request.received.v1")
    async with conn:
        async def work(uow):
            await uow.emit(request())
        await rt.transact(work)
        # another replica claimed it and died before publishing
        await rt.db[COLLECTION].update_many({}, {"$set": {
            "claimed_until": datetime.now(UTC) - timedelta(seconds=1), "claim": "dead"}})
        assert await rt.relay.relay_once() == 1
        assert len(await drain(q, 0.5)) == 1
        assert await rt.relay.relay_once() == 0  # marked sent: not published again


async def test_failed_handler_rolls_back_retries_then_dead_letters_and_queue_flows(
        env, amqp_url):
    ns, runtime = env
    rt = runtime("boards")
    attempts: dict[str, int] = {}

    @rt.on("requests", "request.received")
    async def handle(uow, event: RequestReceived) -> None:
        await uow.db["effects"].insert_one({"request_id": event.request_id}, session=uow.session)
        attempts[event.subject] = attempts.get(event.subject, 0) + 1
        if event.subject == "poison":
            raise RuntimeError("downstream refuses this one")

    await rt.start()
    bad = make_envelope(request().model_copy(update={"subject": "poison"}), account_id="a")
    good = make_envelope(request().model_copy(update={"subject": "fine"}), account_id="a")
    await rt.bus.publish(bad)
    await rt.bus.publish(good)
    # the positive signal that the poison message's attempts are over: it is parked
    for _ in range(300):
        if attempts.get("fine") and await list_dead(amqp_url, Topology(ns), "boards.requests", 10):
            break
        await asyncio.sleep(0.1)
    assert attempts["poison"] == DELIVERY_LIMIT
    assert attempts["fine"] == 1
    # the failing attempts left no effect behind; the good one did
    effects = [d["request_id"] async for d in rt.db["effects"].find()]
    assert effects == [RequestReceived.model_validate(good.payload).request_id]

    dead = await list_dead(amqp_url, Topology(ns), "boards.requests", 10)
    assert [d["reason"] for d in dead] == ["handler kept failing"]
    assert "downstream refuses this one" in dead[0]["detail"]

    # the cause is fixed; replay puts it back and it is processed once
    handle_fixed = rt.consumers[0].handlers
    async def fixed(uow, event):
        attempts["replayed"] = attempts.get("replayed", 0) + 1
    handle_fixed["request.received"] = fixed
    assert await replay(amqp_url, Topology(ns), "boards.requests", 10) == 1
    for _ in range(50):
        if attempts.get("replayed"):
            break
        await asyncio.sleep(0.1)
    assert attempts.get("replayed") == 1
    assert await list_dead(amqp_url, Topology(ns), "boards.requests", 10) == []


async def test_duplicate_delivery_has_one_effect(env):
    ns, runtime = env
    rt = runtime("boards")
    seen: list[str] = []

    @rt.on("requests", "request.received")
    async def handle(uow, event: RequestReceived) -> None:
        await uow.db["effects"].insert_one({"r": event.request_id}, session=uow.session)
        seen.append(event.request_id)

    await rt.start()
    env_ = make_envelope(request(), account_id="a")
    before = taken("boards", "request.received")
    for _ in range(3):
        await rt.bus.publish(env_)
    # the positive signal: all three deliveries were taken and settled (processed or
    # recognised as duplicates), so nothing more can come of them
    for _ in range(100):
        if taken("boards", "request.received") - before >= 3:
            break
        await asyncio.sleep(0.1)
    assert taken("boards", "request.received") - before == 3
    assert len(seen) == 1
    assert await rt.db["effects"].count_documents({}) == 1


async def test_an_event_a_handler_has_nothing_to_do_for_costs_no_transaction(env):
    """`only_when`: an event its predicate rejects is acked without touching the store (no
    processed-event record, no commit), counted as skipped; the rest are handled as ever."""
    from desk_runtime.consumer import PROCESSED, only_when

    ns, runtime = env
    rt = runtime("boards")
    seen: list[str] = []

    @rt.on("requests", "request.received")
    @only_when(lambda event: event.subject != "skip me")
    async def handle(uow, event: RequestReceived) -> None:
        seen.append(event.subject)

    def outcomes(outcome: str) -> float:
        return sum(s.value for m in BUS_IN.collect() for s in m.samples
                   if s.name.endswith("_total") and s.labels.get("service") == "boards"
                   and s.labels.get("event_type") == "request.received"
                   and s.labels.get("outcome") == outcome)

    await rt.start()
    skipped_before = outcomes("skipped")
    skip, keep = request(1), request(2)
    skip = skip.model_copy(update={"subject": "skip me"})
    await rt.bus.publish(make_envelope(skip, account_id="a"))
    await rt.bus.publish(make_envelope(keep, account_id="a"))
    for _ in range(100):
        if seen and outcomes("skipped") - skipped_before >= 1:
            break
        await asyncio.sleep(0.1)
    assert seen == ["S2"]
    assert outcomes("skipped") - skipped_before == 1
    records = [d["_id"] async for d in rt.db[PROCESSED].find()]
    assert len(records) == 1  # only the handled event was recorded


async def test_a_transactions_events_are_one_outbox_write_and_a_repeated_id_aborts_it(env):
    """The events of one transaction go to the outbox in one insert, in emit order; an event
    written before (the same id: a replayed decision) still aborts the whole transaction."""
    from pymongo.errors import DuplicateKeyError

    ns, runtime = env
    rt = runtime(outbox_relay=False)
    await rt.start()
    outbox_ns = f"{rt.settings.mongo_db}.{COLLECTION}"

    async def outbox_inserts() -> int:
        top = (await rt.client.admin.command("top"))["totals"]
        return top.get(outbox_ns, {}).get("insert", {}).get("count", 0)

    before = await outbox_inserts()
    emitted = []

    async def three(uow):
        for i in range(3):
            emitted.append(await uow.emit(request(i)))
        await uow.db["notes"].insert_one({"_id": "kept"}, session=uow.session)

    await rt.transact(three)
    assert await outbox_inserts() - before == 1
    entries = [d async for d in rt.db[COLLECTION].find().sort("seq", 1)]
    assert [d["_id"] for d in entries] == [str(e.event_id) for e in emitted]

    async def replayed(uow):
        await uow.db["notes"].insert_one({"_id": "lost"}, session=uow.session)
        await uow.emit(request(9))
        await uow.emit(request(1), event_id=emitted[1].event_id)

    with pytest.raises(DuplicateKeyError):
        await rt.transact(replayed)
    assert await rt.db["notes"].find_one({"_id": "lost"}) is None
    assert await rt.db[COLLECTION].count_documents({}) == 3


async def test_events_waiting_for_the_store_commit_together_and_a_refused_one_fails_alone(
        env, amqp_url):
    """Group commit: events queued behind a running transaction go to the store together
    (one commit for all), each with its own effect, its own log context and its own events
    published once; a refused event in a group leaves the others' effects standing and is
    dead-lettered alone."""
    import structlog
    from desk_contracts.events import Author, CommentAdded
    from desk_runtime.consumer import PermanentFailure
    from desk_runtime.metrics import STORE_TRANSACTIONS

    ns, runtime = env
    rt = runtime("boards", consumer_transactions=1, consumer_batch=8)
    gate = asyncio.Event()
    contexts: dict[str, str | None] = {}
    counted: list[str] = []

    @rt.on("requests", "request.received")
    async def handle(uow, event: RequestReceived) -> None:
        if event.subject.startswith("first"):
            await gate.wait()  # holds the one transaction slot while the others queue
        if event.subject == "refused":
            raise PermanentFailure("not this one")
        await uow.db["effects"].insert_one({"_id": event.subject}, session=uow.session)
        uow.after_commit(counted.append, event.subject)  # e.g. a metric: once, if committed
        contexts[event.subject] = structlog.contextvars.get_contextvars().get("correlation_id")
        await uow.emit(CommentAdded(
            comment_id=event.subject, card_id=event.request_id, number="T-1",
            visibility="public", author=Author(kind="agent"), text=event.subject,
            created_at=datetime.now(UTC)))

    def commits() -> float:
        return STORE_TRANSACTIONS.labels("boards", "consumer")._value.get()

    conn, tapped = await tap(amqp_url, ns, "comment.added.#")
    await rt.start()

    async def send(subjects: list[str]) -> None:
        for subject in subjects:
            await rt.bus.publish(make_envelope(
                request().model_copy(update={"subject": subject}), account_id="a",
                correlation_id=f"corr-{subject}"))

    # 1: five events wait behind the first; released, they commit in one transaction
    before = commits()
    await send(["first"])
    await until(lambda: rt.group_commit.turns.locked())
    await send([f"n{i}" for i in range(5)])
    await until(lambda: rt.group_commit.waiting() == 5)
    gate.set()
    await until(lambda: len(contexts) == 6)
    await until(lambda: commits() - before == 2)  # the first alone, then the five together
    assert {c: contexts[c] for c in contexts} == {s: f"corr-{s}" for s in contexts}
    published = await drain(tapped, wait=5, expect=6)
    assert sorted(m.message_id for m in published) == sorted(
        {m.message_id for m in published})
    assert sorted(json_subject(m) for m in published) == ["first", "n0", "n1", "n2", "n3",
                                                          "n4"]

    # 2: a refused event among them: nothing of the group commits, then each runs alone
    gate.clear()
    await send(["first again"])
    await until(lambda: rt.group_commit.turns.locked())
    await send(["m0", "refused", "m1"])
    await until(lambda: rt.group_commit.waiting() == 3)
    gate.set()
    await until(lambda: {"m0", "m1", "first again"} <= set(contexts))
    dead = await dead_letters(amqp_url, ns)
    assert [d["reason"] for d in dead] == ["refused"]
    effects = sorted([d["_id"] async for d in rt.db["effects"].find()])
    assert effects == sorted(["first", "n0", "n1", "n2", "n3", "n4", "first again", "m0",
                              "m1"])
    assert await rt.db["processed_events"].count_documents({}) == 9
    # m0 and m1 ran twice (in the failed group, then alone); their after-commit actions once
    assert sorted(counted) == effects
    await conn.close()


async def test_requests_become_cards_before_other_queues_commit_and_those_are_not_starved(
        env, amqp_url):
    """Group commit serves an urgent queue (boards.requests: a request becoming a card)
    before the process's other queues, which queued earlier, yet gives those a turn after
    a few urgent groups in a row."""
    from desk_contracts.events import CardLinked
    from desk_runtime.group_commit import URGENT_RUN

    ns, runtime = env
    rt = runtime("boards", consumer_transactions=1, consumer_batch=2)
    gate = asyncio.Event()
    order: list[str] = []

    @rt.on("requests", "request.received")
    async def on_request(uow, event: RequestReceived) -> None:
        if event.subject == "first":
            await gate.wait()  # holds the one transaction slot while the others queue
        uow.after_commit(order.append, event.subject)

    @rt.on("stats", "card.linked")
    async def on_linked(uow, event: CardLinked) -> None:
        uow.after_commit(order.append, event.child_number)

    await rt.start()

    await rt.bus.publish(make_envelope(request().model_copy(update={"subject": "first"}),
                                       account_id="a"))
    await until(lambda: rt.group_commit.turns.locked())
    for i in range(4):  # the statistics' events arrive first...
        await rt.bus.publish(make_envelope(CardLinked(
            parent_id=f"p{i}", child_id=f"c{i}", parent_number="T-1", child_number=f"n{i}"),
            account_id="a"))
    await until(lambda: rt.group_commit.waiting() == 4)
    urgent = 2 * (URGENT_RUN + 1)
    for i in range(urgent):  # ...then new requests
        await rt.bus.publish(make_envelope(request().model_copy(update={"subject": f"u{i}"}),
                                           account_id="a"))
    await until(lambda: rt.group_commit.waiting() == 4 + urgent)
    gate.set()
    await until(lambda: len(order) == 1 + 4 + urgent)
    assert order[0] == "first"
    # the requests went first although the statistics' events had waited longer...
    assert order[1].startswith("u") and order[2].startswith("u")
    # ...but not all of them: after a few urgent groups the others had their turn
    assert order.index("n0") < order.index(f"u{urgent - 1}")


async def test_a_groups_counters_are_one_increment_per_document_and_a_rerun_counts_once(
        env, amqp_url):
    """`uow.increment`: the counts of a group of consumed events are merged into one `$inc`
    per document, written in their transaction; a group that fails (nothing of it commits)
    and runs again event by event counts each committed event once, and the refused one
    not at all."""
    from desk_runtime.consumer import PermanentFailure
    from desk_runtime.unit_of_work import Shards

    ns, runtime = env
    rt = runtime("boards", consumer_transactions=1, consumer_batch=8, outbox_relay=False)
    gate = asyncio.Event()
    ran: list[str] = []
    committed: list[str] = []

    @rt.on("requests", "request.received")
    async def handle(uow, event: RequestReceived) -> None:
        if event.subject.startswith("first"):
            await gate.wait()  # holds the one transaction slot while the others queue
        ran.append(event.subject)
        uow.increment("totals", "all", {"events": 1, "held": -1})
        uow.increment("totals", "all", {"held": 1})  # nets out: no field written for it
        uow.increment("spread", Shards(4), {"events": 1})
        if event.subject == "refused":
            raise PermanentFailure("not this one")
        uow.after_commit(committed.append, event.subject)

    async def updates(collection: str) -> int:
        top = (await rt.client.admin.command("top"))["totals"]
        ns_ = f"{rt.settings.mongo_db}.{collection}"
        return top.get(ns_, {}).get("update", {}).get("count", 0)

    async def totals() -> tuple[dict, int]:
        doc = await rt.db["totals"].find_one({"_id": "all"}) or {}
        spread = [d async for d in rt.db["spread"].find()]
        assert all(0 <= d["_id"] < 4 for d in spread)
        return ({k: v for k, v in doc.items() if k != "_id"},
                sum(d["events"] for d in spread))

    async def send(subjects: list[str]) -> None:
        for subject in subjects:
            await rt.bus.publish(make_envelope(
                request().model_copy(update={"subject": subject}), account_id="a"))

    await rt.start()
    # 1: five events wait behind the first; released, they commit together: one $inc each
    await send(["first"])
    await until(lambda: rt.group_commit.turns.locked())
    await send([f"n{i}" for i in range(5)])
    await until(lambda: rt.group_commit.waiting() == 5)
    before = (await updates("totals"), await updates("spread"))
    gate.set()
    await until(lambda: len(committed) == 6)
    # the first alone, then the five together
    assert (await updates("totals"), await updates("spread")) == (before[0] + 2,
                                                                  before[1] + 2)
    assert await totals() == ({"events": 6}, 6)

    # 2: a refused event among them: the group's transaction fails, each runs again alone
    gate.clear()
    await send(["first again"])
    await until(lambda: rt.group_commit.turns.locked())
    await send(["m0", "m1", "refused"])  # m0 and m1 have counted when it fails
    await until(lambda: rt.group_commit.waiting() == 3)
    gate.set()
    await until(lambda: len(committed) == 9)
    dead = await dead_letters(amqp_url, ns)
    assert [d["reason"] for d in dead] == ["refused"]
    assert ran.count("m0") == 2 and ran.count("m1") == 2  # in the failed group, then alone
    assert await totals() == ({"events": 9}, 9)


async def test_a_groups_blind_inserts_are_one_insert_per_collection_and_a_duplicate_reruns(
        env, amqp_url):
    """`uow.insert`: what a group of consumed events inserts goes to the store as one
    `insert_many` per collection, in their transaction. A document that exists already (a
    copy of an event under a new id) fails the group; each event runs again alone, the copy
    fails its first delivery on the duplicate key and its redelivery takes the careful
    path: every record once, nothing lost, nothing dead-lettered."""
    ns, runtime = env
    rt = runtime("boards", consumer_transactions=1, consumer_batch=8, outbox_relay=False)
    gate = asyncio.Event()
    attempts: dict[str, list[bool]] = {}
    committed: list[str] = []

    @rt.on("requests", "request.received")
    async def handle(uow, event: RequestReceived) -> None:
        if event.subject.startswith("first"):
            await gate.wait()  # holds the one transaction slot while the others queue
        row = {"_id": event.text, "subject": event.subject}
        attempts.setdefault(event.subject, []).append(uow.first_delivery)
        if uow.first_delivery:
            uow.insert("rows", row)
            uow.insert("seen", {"_id": event.subject})
        else:
            await uow.db["rows"].update_one({"_id": row["_id"]}, {"$setOnInsert": row},
                                            upsert=True, session=uow.session)
            await uow.db["seen"].update_one({"_id": event.subject}, {"$set": {}},
                                            upsert=True, session=uow.session)
        uow.after_commit(committed.append, event.subject)

    async def inserts(collection: str) -> int:
        top = (await rt.client.admin.command("top"))["totals"]
        return top.get(f"{rt.settings.mongo_db}.{collection}", {}).get("insert", {}).get(
            "count", 0)

    async def send(items: list[tuple[str, str]]) -> None:
        for subject, key in items:
            await rt.bus.publish(make_envelope(
                request().model_copy(update={"subject": subject, "text": key}),
                account_id="a"))

    await rt.start()
    # 1: five events wait behind the first; released, they commit together: one insert
    # per collection for the five
    await send([("first", "k-first")])
    await until(lambda: rt.group_commit.turns.locked())
    await send([(f"n{i}", f"k{i}") for i in range(5)])
    await until(lambda: rt.group_commit.waiting() == 5)
    before = (await inserts("rows"), await inserts("seen"))
    gate.set()
    await until(lambda: len(committed) == 6)
    assert (await inserts("rows"), await inserts("seen")) == (before[0] + 2, before[1] + 2)
    assert await rt.db["rows"].count_documents({}) == 6

    # 2: a copy of k1's event (a new event id) among three others: the group's insert
    # fails on the duplicate key and commits nothing; alone, the others commit at once and
    # the copy once it is redelivered (no longer a first delivery)
    gate.clear()
    await send([("first again", "k-again")])
    await until(lambda: rt.group_commit.turns.locked())
    await send([("m0", "km0"), ("copy", "k1"), ("m1", "km1")])
    await until(lambda: rt.group_commit.waiting() == 3)
    gate.set()
    await until(lambda: len(committed) == 10)
    assert attempts["copy"][0] is True and attempts["copy"][-1] is False
    assert sorted(committed[6:]) == ["copy", "first again", "m0", "m1"]
    rows = {d["_id"]: d["subject"] async for d in rt.db["rows"].find()}
    assert len(rows) == 9 and rows["k1"] == "n1"  # the copy kept the record there
    assert await rt.db["seen"].count_documents({}) == 10
    assert await list_dead(amqp_url, Topology(ns), "boards.requests", 10) == []


def json_subject(message) -> str:
    import json
    return json.loads(message.body)["payload"]["text"]
