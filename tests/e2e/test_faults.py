"""Faults while requests flow: the broker, the store or a service killed -9 and started again.

Each test runs the five services as processes on a RabbitMQ node and a store of this
module's own (killable, restarted on the same port and data directory), and checks what a
customer and an operator would notice: every accepted request (202) ends as exactly one
card, one SLA record, one portal row and one acknowledgment e-mail; nothing is
dead-lettered; every queue has consumers again and every service says it is ready, with
no service restarted by hand.

One stack serves the module (starting it costs more than most tests); each test uses its
own requesters, and an autouse fixture hands each test a running broker, store and five
services (a failed test may have left one down).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aio_pika
import httpx
import pytest
from desk_contracts import make_envelope
from desk_contracts.events import Person, RequestReceived
from desk_contracts.topology import QUEUES, Topology
from pymongo import MongoClient

from tests.support.private_rabbit import PrivateRabbit, private_rabbit  # noqa: F401 (fixture)
from tests.support.private_store import PrivateStore, private_store  # noqa: F401 (fixture)
from tests.support.slow_mail import SlowMailSink
from tests.support.stack import SERVICES, Stack, auth, sla_auth, wait_until

pytestmark = pytest.mark.slow

# generous: a busy 2-core machine, five services, a broker and a store
COMPLETE_WITHIN = 120.0
RECOVER_WITHIN = 60.0
POST_TIMEOUT = 10.0


# --- the stack ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mail():
    with SlowMailSink() as sink:
        yield sink


# leases (partitions, a dead committer's events) of 5 s instead of the defaults' 10 s
# (sla's: 15 s): a service killed and started again takes its dead predecessor's
# partitions and unpublished events over within seconds
LEASE_SECONDS = 5


@pytest.fixture(scope="module")
def stack(private_rabbit, private_store, mail, tmp_path_factory):  # noqa: F811
    s = Stack(private_store.url, private_rabbit.url, tmp_path_factory.mktemp("faults"),
              smtp_port=mail.port, lease_seconds=LEASE_SECONDS)
    try:
        s.start()
        yield s
    finally:
        s.stop()
        for proc in s.services.values():  # stop() gives up after 15 s; nothing may stay
            proc.kill()


@pytest.fixture(scope="module")
def consumed(stack, private_rabbit) -> frozenset[str]:  # noqa: F811
    """The queues that have a consumer once the fresh stack is ready: they must again."""
    w = World(stack, private_rabbit, None, None)
    return frozenset(q for q, (_, c) in queue_states(w).items() if c > 0)


@dataclass
class World:
    stack: Stack
    rabbit: PrivateRabbit
    store: PrivateStore | None
    mail: SlowMailSink | None
    consumed: frozenset[str] = frozenset()
    log_marks: dict[str, int] = field(default_factory=dict)

    @property
    def topology(self) -> Topology:
        return Topology(self.stack.namespace)


_failed_so_far = {"n": 0}


@pytest.fixture(autouse=True)
def world(request, stack, private_rabbit, private_store, mail, consumed):  # noqa: F811
    """A running broker, store and five ready services with consumers, for every test.

    After a failed test the services are restarted (what an operator would do), so a
    runtime that did not heal shows in the test that broke it, not in the ones after.
    """
    w = World(stack, private_rabbit, private_store, mail, consumed)
    mail.delay = 0.0
    previous_failed = request.session.testsfailed > _failed_so_far["n"]
    _failed_so_far["n"] = request.session.testsfailed
    if not private_store.alive:
        private_store.start()
    if not private_rabbit.alive:
        private_rabbit.start()
    for proc in stack.services.values():
        if previous_failed:
            proc.kill()
        if proc.proc is None or proc.proc.poll() is not None:
            proc.start(wait=False)
    for proc in stack.services.values():
        proc.wait_ready(timeout=RECOVER_WITHIN)
    # a previous test may have left services without consumers (that is its failure,
    # not this test's): an operator's restart, so this test starts clean
    if idle := idle_queues(w):
        for name in sorted({q.split(".")[1] for q in idle}):
            stack[name].kill()
            stack[name].start()
        wait_until(lambda: not idle_queues(w), timeout=RECOVER_WITHIN, interval=0.5)
    drain_dead_letters(w)  # whatever an earlier test left is reported there, not here
    w.log_marks = {n: _log_size(stack, n) for n in SERVICES}
    yield w
    mail.delay = 0.0


# --- what the tests do ------------------------------------------------------------------
@dataclass
class Accepted:
    request_id: str
    email: str
    card_id: str | None = None


def request_body(email: str, subject: str) -> dict:
    return {"service": "question", "requester": {"email": email, "name": "Fault Tester"},
            "subject": subject, "text": "Submitted while something broke."}


def post_request(stack: Stack, email: str, subject: str, key: str | None = None
                 ) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return httpx.post(f"{stack['intake'].url}/v1/requests", json=request_body(email, subject),
                      headers=headers, timeout=POST_TIMEOUT)


class Stream:
    """Customers submitting web-form requests from a thread, `allow(n)` at a time.

    Only answers of 202 count as accepted; anything else (a refusal, a dropped
    connection, no answer) is recorded and not retried.
    """

    def __init__(self, stack: Stack, tag: str, pause: float = 0.3):
        self.stack = stack
        self.tag = f"{tag}-{uuid.uuid4().hex[:6]}"
        self.pause = pause
        self.accepted: list[Accepted] = []
        self.refused: Counter[str] = Counter()
        self.attempts = 0
        self._budget = 0
        self._posting = 0
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def allow(self, n: int) -> None:
        with self._cond:
            self._budget += n
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._budget == 0 and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                self._budget -= 1
                self._posting += 1
                i = self.attempts + self._posting - 1
            email = f"{self.tag}.{i}@acme.example"
            try:
                r = post_request(self.stack, email, f"{self.tag} request {i}")
                outcome = str(r.status_code)
                if r.status_code == 202:
                    self.accepted.append(Accepted(r.json()["request_id"], email))
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            with self._cond:
                self.attempts += 1
                self._posting -= 1
                if outcome != "202":
                    self.refused[outcome] += 1
                self._cond.notify_all()
            time.sleep(self.pause)

    def wait_accepted(self, n: int, timeout: float = 60.0) -> None:
        wait_until(lambda: len(self.accepted) >= n, timeout=timeout, interval=0.05)

    def wait_answered(self, n: int, timeout: float = 60.0) -> None:
        wait_until(lambda: self.attempts >= n, timeout=timeout, interval=0.05)

    def drain(self, timeout: float = 120.0) -> None:
        """Until every allowed request has had its answer."""
        def idle() -> bool:
            with self._cond:
                return self._budget == 0 and self._posting == 0
        wait_until(idle, timeout=timeout, interval=0.1)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(POST_TIMEOUT + 5)

    def __repr__(self) -> str:
        return (f"<{self.tag}: {self.attempts} posted, {len(self.accepted)} accepted, "
                f"refused {dict(self.refused)}>")


def publish_request_events(w: World, n: int, tag: str) -> list[Accepted]:
    """Valid `request.received` events published straight to the bus, as an integrator would."""
    async def run() -> list[Accepted]:
        out = []
        conn = await aio_pika.connect(w.rabbit.url)
        async with conn:
            ch = await conn.channel(publisher_confirms=True)
            exchange = await ch.get_exchange(w.topology.exchange)
            for i in range(n):
                request_id = f"{tag}-{uuid.uuid4()}"
                email = f"{tag}.bus{i}.{uuid.uuid4().hex[:4]}@acme.example"
                env = make_envelope(RequestReceived(
                    request_id=request_id, channel="api", service_id="question",
                    requester=Person(email=email, name="Fault Tester"),
                    subject=f"{tag} bus request {i}", text="Published during a store outage.",
                    received_at=datetime.now(UTC)), account_id="default")
                await exchange.publish(
                    aio_pika.Message(env.model_dump_json().encode(),
                                     delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                     content_type="application/json"),
                    routing_key=env.routing_key)
                out.append(Accepted(request_id, email))
        return out
    return asyncio.run(run())


# --- what the tests look at -------------------------------------------------------------
def _log_size(stack: Stack, name: str) -> int:
    try:
        return stack[name].log_path.stat().st_size
    except (OSError, KeyError):
        return 0


_EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception|Timeout)\w*: ")


def log_excerpt(w: World, names=SERVICES, show: int = 8) -> str:
    """What each service logged at warning/error level since the test began, summarised:
    each structured event by name with its count and first occurrence, and the last line
    of each traceback (for the failure text; the full logs are in the stack's workdir)."""
    out = []
    for name in names:
        try:
            with open(w.stack[name].log_path, "rb") as f:
                f.seek(w.log_marks.get(name, 0))
                text = f.read().decode(errors="replace")
        except (OSError, KeyError):
            continue
        counts: Counter[str] = Counter()
        first: dict[str, str] = {}
        for line in text.splitlines():
            key = None
            if line.startswith("{"):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("level") in ("warning", "error", "critical"):
                    key = f"{rec.get('level')} {rec.get('event')}"
                    detail = rec.get("error") or (rec.get("exception") or "").strip()
                    detail = detail.splitlines()[-1] if detail else ""
                    first.setdefault(key, detail[:160])
            elif _EXCEPTION_LINE.match(line):
                key = "traceback " + line.split(":", 1)[0]
                first.setdefault(key, line[:160])
            if key:
                counts[key] += 1
        if counts:
            out.append(f"--- {name}.log:")
            out.extend(f"  {n}x {key}: {first.get(key, '')}" for key, n in counts.most_common(show))
    return "\n".join(out)


def queue_states(w: World) -> dict[str, tuple[int, int]]:
    """Every service queue's partitions in the namespace: (ready messages, consumers);
    -1 if missing."""
    async def run() -> dict[str, tuple[int, int]]:
        out = {}
        conn = await aio_pika.connect(w.rabbit.url, timeout=10)
        async with conn:
            for name in (n for spec in QUEUES for n in w.topology.partition_queues(spec)):
                ch = await conn.channel()
                try:
                    q = await ch.declare_queue(name, passive=True)
                    out[name] = (q.declaration_result.message_count,
                                 q.declaration_result.consumer_count)
                    await ch.close()
                except aio_pika.exceptions.ChannelClosed:
                    out[name] = (-1, 0)
        return out
    return asyncio.run(run())


def idle_queues(w: World) -> dict[str, tuple[int, int]]:
    """Queues that had a consumer when the stack started and have none now."""
    return {q: s for q, s in queue_states(w).items() if q in w.consumed and s[1] == 0}


def drain_dead_letters(w: World) -> list[str]:
    """Take every message out of the namespace's `.dead` queues; one line per message."""
    async def run() -> list[str]:
        found = []
        conn = await aio_pika.connect(w.rabbit.url, timeout=10)
        async with conn:
            for spec in QUEUES:
                name = w.topology.dead_queue(spec)
                ch = await conn.channel()
                try:
                    q = await ch.declare_queue(name, passive=True)
                except aio_pika.exceptions.ChannelClosed:
                    continue
                while (m := await q.get(no_ack=True, fail=False)) is not None:
                    headers = m.headers or {}
                    try:
                        body = json.loads(m.body)
                        what = f"{body.get('type')} payload={json.dumps(body.get('payload'))[:160]}"
                    except ValueError:
                        what = repr(m.body[:80])
                    found.append(f"{name}: {what} reason={headers.get('x-dead-reason')!r} "
                                 f"detail={str(headers.get('x-dead-detail'))[:200]!r} "
                                 f"death={str(headers.get('x-death'))[:200]}")
                await ch.close()
        return found
    return asyncio.run(run())


def readiness(w: World, timeout: float = 2.0) -> dict[str, str]:
    out = {}
    for name in SERVICES:
        try:
            r = httpx.get(f"{w.stack[name].url}/readyz", timeout=timeout)
            out[name] = f"{r.status_code} {r.text[:200]}"
        except httpx.HTTPError as exc:
            out[name] = f"no answer: {type(exc).__name__}"
    return out


def all_ready(w: World) -> bool:
    return all(v.startswith("200") for v in readiness(w).values())


class Outcome:
    """Where each accepted request got to: cards, SLA record, portal rows, mails."""

    def __init__(self, w: World):
        self.w = w
        self.last_sla = ""

    def cards(self, acc: Accepted) -> list[dict] | None:
        try:
            r = httpx.get(f"{self.w.stack['boards'].url}/v1/cards",
                          params={"request_id": acc.request_id},
                          headers=auth(self.w.stack), timeout=5)
        except httpx.HTTPError:
            return None
        return r.json()["items"] if r.status_code == 200 else None

    def sla_record(self, card_id: str) -> bool:
        try:
            r = httpx.get(f"{self.w.stack['sla'].url}/v1/cards/{card_id}/sla",
                          headers=sla_auth(self.w.stack), timeout=5)
        except httpx.HTTPError as exc:
            self.last_sla = type(exc).__name__
            return False
        self.last_sla = f"{r.status_code} {r.text[:120]}"
        return r.status_code == 200 and bool(r.json().get("targets"))

    def portal_rows(self, emails: list[str]) -> Counter[str] | None:
        try:
            with MongoClient(self.w.store.url, serverSelectionTimeoutMS=2000,
                             tz_aware=True) as client:
                rows = client[f"{self.w.stack.namespace}_portal"]["requests"].find(
                    {"requester_email": {"$in": emails}}, {"requester_email": 1})
                return Counter(r["requester_email"] for r in rows)
        except Exception:  # noqa: BLE001 (store restarting: not there yet)
            return None

    def mails(self, acc: Accepted) -> int:
        return len(self.w.mail.to(acc.email))

    def stages(self, accepted: list[Accepted]) -> dict[str, dict[str, int]]:
        """For each request: how many cards, SLA records, portal rows and mails it has."""
        portal = self.portal_rows([a.email for a in accepted]) or Counter()
        out = {}
        for acc in accepted:
            cards = self.cards(acc) or []
            if len(cards) == 1:
                acc.card_id = cards[0]["id"]
            out[acc.request_id] = {
                "cards": len(cards),
                "sla": int(bool(cards) and self.sla_record(cards[0]["id"])),
                "portal": portal.get(acc.email, 0),
                "mail": self.mails(acc),
            }
        return out


def assert_every_request_once(w: World, accepted: list[Accepted], what: str) -> None:
    """The end state a customer and an operator see, once the desk has caught up."""
    assert accepted, f"{what}: no request was accepted at all"
    outcome = Outcome(w)
    pending = list(accepted)
    seen: dict[str, dict[str, int]] = {}
    deadline = time.monotonic() + COMPLETE_WITHIN
    while pending and time.monotonic() < deadline:
        stages = outcome.stages(pending)
        seen |= stages
        pending = [a for a in pending if min(stages[a.request_id].values()) == 0]
        if pending:
            time.sleep(0.5)
    if pending:
        missing = Counter(stage for rid in (a.request_id for a in pending)
                          for stage, n in seen[rid].items() if n == 0)
        pytest.fail(
            f"{what}: {len(pending)} of {len(accepted)} accepted requests incomplete after "
            f"{COMPLETE_WITHIN:.0f}s; missing per stage {dict(missing)}; e.g. "
            f"{[(a.request_id, seen[a.request_id]) for a in pending[:3]]}; "
            f"last SLA answer: {outcome.last_sla!r}\n"
            f"queues (ready, consumers): {queue_states(w)}\n"
            f"dead letters: {drain_dead_letters(w)[:5]}\n{log_excerpt(w)}")

    # the desk has caught up when no queue holds a ready message; then count exactly
    wait_until(lambda: all(m <= 0 for q, (m, _) in queue_states(w).items() if q in w.consumed),
               timeout=RECOVER_WITHIN, interval=0.5)
    final = outcome.stages(accepted)
    wrong = {rid: s for rid, s in final.items() if set(s.values()) != {1}}
    assert not wrong, f"{what}: not exactly one of each: {wrong}\n{log_excerpt(w)}"

    dead = drain_dead_letters(w)
    assert dead == [], f"{what}: dead-lettered:\n" + "\n".join(dead) + "\n" + log_excerpt(w)


def assert_healed(w: World, what: str) -> None:
    """Every queue has its consumer again and every service says it is ready."""
    try:
        wait_until(lambda: not idle_queues(w), timeout=RECOVER_WITHIN, interval=0.5)
    except TimeoutError:
        pytest.fail(f"{what}: queues without a consumer {RECOVER_WITHIN:.0f}s on: "
                    f"{idle_queues(w)}\n"
                    f"readiness: {readiness(w)}\n{log_excerpt(w)}")
    try:
        wait_until(lambda: all_ready(w), timeout=RECOVER_WITHIN, interval=0.5)
    except TimeoutError:
        pytest.fail(f"{what}: not ready {RECOVER_WITHIN:.0f}s on: {readiness(w)}\n"
                    f"{log_excerpt(w)}")
    for name, proc in w.stack.services.items():
        assert proc.proc.poll() is None, f"{what}: {name} exited\n{log_excerpt(w, (name,))}"


# --- the tests --------------------------------------------------------------------------
def test_concurrent_posts_with_one_idempotency_key_get_one_answer(world):
    key = str(uuid.uuid4())
    email = f"idem-{uuid.uuid4().hex[:6]}@acme.example"
    barrier = threading.Barrier(5)

    def post(_: int) -> tuple[int, dict | str]:
        barrier.wait()
        r = post_request(world.stack, email, "Five clicks on Send", key=key)
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, r.text[:200]

    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(post, range(5)))

    # every caller is told the request was accepted, and which one it is; the runtime
    # documents a replay as 200 and the first acceptance as 202 (see test_walking_skeleton)
    statuses = [s for s, _ in answers]
    assert all(s in (200, 202) for s in statuses) and 202 in statuses, \
        f"answers: {answers}\n{log_excerpt(world, ('intake',))}"
    ids = {body["request_id"] for _, body in answers}
    assert len(ids) == 1, f"answers: {answers}"
    assert_every_request_once(world, [Accepted(ids.pop(), email)], "idempotency race")


def test_store_down_intake_says_503_with_retry_after_and_nobody_is_ready(world):
    world.store.kill()
    problems = []
    # a customer submitting the moment the store went away (the service does not know yet)
    pool = ThreadPoolExecutor(1)
    first_post = pool.submit(post_request, world.stack,
                             f"down-{uuid.uuid4().hex[:6]}@acme.example",
                             "Sent while the store is down")

    # every service answers /readyz (within the client's 2 s) and soon says 503
    hung: dict[str, str] = {}

    def all_not_ready() -> bool:
        states = readiness(world, timeout=2.0)
        hung.update({n: v for n, v in states.items() if v.startswith("no answer")})
        return all(v.startswith("503") for v in states.values())
    try:
        wait_until(all_not_ready, timeout=10, interval=0.2)
    except TimeoutError:
        problems.append(f"/readyz while the store is down (10 s on): {readiness(world)}")
    if hung:
        problems.append(f"/readyz gave no answer within 2 s: {hung}")

    # customers submitting while it is down are told to come back later, not that the
    # desk broke (and are not kept waiting for it)
    def check(what: str, answer) -> None:
        try:
            r = answer()
        except httpx.HTTPError as exc:
            problems.append(f"{what}: no answer within {POST_TIMEOUT}s ({type(exc).__name__})")
            return
        if r.status_code != 503 or "retry-after" not in r.headers:
            problems.append(f"{what}: {r.status_code} {dict(r.headers)} {r.text[:300]}")
    check("POST the moment the store went away", first_post.result)
    pool.shutdown()
    check("POST while the store is down", lambda: post_request(
        world.stack, f"down-{uuid.uuid4().hex[:6]}@acme.example", "Sent while it is down"))
    world.store.start()
    assert not problems, "\n".join(problems) + "\n" + log_excerpt(world)

    assert_healed(world, "store back")
    email = f"back-{uuid.uuid4().hex[:6]}@acme.example"
    sent = post_request(world.stack, email, "Sent after the store came back")
    assert sent.status_code == 202, sent.text
    assert_every_request_once(world, [Accepted(sent.json()["request_id"], email)],
                              "store back")


def test_broker_down_readyz_503_then_200_without_restarting_services(world):
    pids = {n: p.proc.pid for n, p in world.stack.services.items()}
    world.rabbit.kill()
    try:
        wait_until(lambda: all(v.startswith("503") for v in readiness(world).values()),
                   timeout=30, interval=0.3)
    except TimeoutError:
        ready_during = readiness(world)
        world.rabbit.start()
        pytest.fail(f"/readyz with the broker down (30 s on): {ready_during}")
    stream = Stream(world.stack, "brokerdown")
    stream.allow(2)  # customers keep submitting; intake's outbox holds the events
    stream.drain()
    stream.stop()
    world.rabbit.start()

    assert_healed(world, "broker back")
    assert {n: p.proc.pid for n, p in world.stack.services.items()} == pids
    assert_every_request_once(world, stream.accepted, f"broker back {stream}")


def test_broker_killed_mid_stream(world):
    stream = Stream(world.stack, "brokerkill")
    stream.allow(8)
    stream.wait_accepted(4)
    world.rabbit.kill()            # the other four are posted while it is gone
    stream.drain()
    world.rabbit.start()
    stream.allow(4)
    stream.drain()
    stream.stop()

    assert_healed(world, f"broker killed {stream}")
    assert_every_request_once(world, stream.accepted, f"broker killed {stream}")


def test_store_killed_mid_stream(world):
    stream = Stream(world.stack, "storekill")
    stream.allow(6)
    stream.wait_accepted(3)
    world.store.kill()             # the rest are posted while it is gone
    stream.drain()
    world.store.start()
    stream.allow(5)
    stream.drain()
    stream.stop()

    assert_healed(world, f"store killed {stream}")
    assert_every_request_once(world, stream.accepted, f"store killed {stream}")


def test_each_service_killed_mid_stream(world):
    stream = Stream(world.stack, "svckill")
    for name in SERVICES:
        before = stream.attempts
        stream.allow(3)
        stream.wait_answered(before + 1)
        world.stack[name].kill()
        world.stack[name].start()  # as an orchestrator restarts a crashed container
        stream.drain()
    stream.stop()

    assert_healed(world, f"services killed {stream}")
    assert_every_request_once(world, stream.accepted, f"services killed {stream}")


def test_store_outage_of_half_a_minute_dead_letters_no_valid_event(world):
    stream = Stream(world.stack, "outage")
    stream.allow(4)
    stream.drain()
    stream.stop()
    world.store.kill()             # with events of those four still on their way
    # and one more waiting at the head of boards' queue: alone there, it is delivered
    # again and again for as long as the store is away, which must not make it poison
    on_bus = publish_request_events(world, 1, "outage")
    time.sleep(35)                 # the outage itself (each attempt may wait 5 s for the store)
    world.store.start()

    assert_healed(world, "35 s store outage")
    assert_every_request_once(world, stream.accepted + on_bus, f"35 s store outage {stream}")


def test_notify_stopped_mid_delivery_sends_the_acknowledgment_once(world):
    email = f"slowmail-{uuid.uuid4().hex[:6]}@acme.example"
    in_flight = world.mail.watch(email)
    world.mail.delay = 5.0         # the SMTP server answers DATA slowly
    r = post_request(world.stack, email, "Caught mid-delivery")
    assert r.status_code == 202, r.text
    acc = Accepted(r.json()["request_id"], email)

    assert in_flight.wait(COMPLETE_WITHIN), f"no mail to {email} started\n{log_excerpt(world)}"
    notify = world.stack["notify"]
    notify.proc.terminate()        # SIGTERM while the send waits for its answer
    try:
        notify.proc.wait(30)
    except Exception:  # noqa: BLE001
        notify.kill()
        pytest.fail(f"notify did not stop within 30 s of SIGTERM\n{log_excerpt(world, ('notify',))}")
    world.mail.delay = 0.0
    notify.start()

    # the delivery log says when notify is done with it; only then count what arrived
    def ack_done() -> bool:
        card = Outcome(world).cards(acc)
        if not card:
            return False
        try:
            r = httpx.get(f"{notify.url}/v1/deliveries", params={"card_id": card[0]["id"]},
                          headers=auth(world.stack), timeout=5)
            acks = [d for d in r.json()["items"] if d["kind"] == "acknowledgment"]
        except (httpx.HTTPError, ValueError, KeyError):
            return False
        return bool(acks) and all(d["state"] in ("sent", "failed") for d in acks) and acks
    try:
        acks = wait_until(ack_done, timeout=COMPLETE_WITHIN, interval=0.5)
    except TimeoutError:
        pytest.fail(f"acknowledgment not finished\n{log_excerpt(world, ('notify',))}")
    assert [d["state"] for d in acks] == ["sent"], acks
    assert len(world.mail.to(email)) == 1, (
        f"the customer received {len(world.mail.to(email))} acknowledgments: "
        f"{[m['Subject'] for m in world.mail.to(email)]}; delivery: {acks}\n"
        f"{log_excerpt(world, ('notify',))}")
    assert_every_request_once(world, [acc], "notify stopped mid-delivery")
