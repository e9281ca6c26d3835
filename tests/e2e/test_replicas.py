"""Three replicas of every service end where one replica does, while replicas are killed.

One stack on the real broker and store. The same customer conversations (a request, the
agent's public reply, the customer's answer by mail, then a quick run of moves through
the SLA-pausing columns) are played twice: first with one replica of each service (what
one replica produces), then with three replicas of each service, requests spread over
them as a load balancer would, and one replica of each service killed in turn (SIGKILL)
while the conversations run. Every card's final state on the board, its SLA record (its
clocks, pauses and log, which depend on the order its events were handled), the
customer's view in the portal and the mails each customer got must be the same. The
replicas share the work: before the run each service's three replicas consume 2, 1 and 1
of its four bus partitions (agreed through the store), and after the kills the two
survivors consume 2 and 2 — the killed one's partitions taken over.
"""

from __future__ import annotations

import itertools
import re
import threading
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid

import httpx
import pytest

from tests.support.stack import (
    SERVICES,
    ServiceProcess,
    Stack,
    auth,
    cleanup,
    mongo_find,
    mta_auth,
    sla_auth,
    wait_until,
)

pytestmark = pytest.mark.slow

# leases (partitions, membership, a dead committer's events) of 5 s instead of the
# defaults' 10 s (sla's: 15 s): each killed replica's partitions are taken over within
# seconds, and each kill no longer holds the conversations up for 10-20 s. Not shorter:
# fifteen processes share a small machine, and a live replica that misses renewals
# would hand its partitions around (which the test tolerates, but waits for)
LEASE_SECONDS = 5
PARTITION = re.compile(r"\.p\d+$")  # a bus partition queue (`boards.requests.p3`)


@pytest.fixture(scope="module")
def stack(mongo_url, amqp_url, mail, tmp_path_factory):
    s = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("stack"), smtp_port=mail.port,
              lease_seconds=LEASE_SECONDS)
    s.start()
    yield s
    s.stop()
    cleanup(mongo_url, amqp_url, s.namespace)

CARDS = 4
# the moves after the conversation: waiting for the customer and paused stop the
# resolution clock, in progress restarts it; odd cards end paused, even ones done
MOVES = ("clarification", "pause", "in-progress", "pause")


class Balancer:
    """Spreads calls over the live replicas of each service, like a Service in front."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self._turns = {name: itertools.count() for name in SERVICES}
        self._lock = threading.Lock()

    def url(self, name: str) -> str:
        live = [p for p in self.stack.all_of(name) if p.proc and p.proc.poll() is None]
        with self._lock:
            return live[next(self._turns[name]) % len(live)].url

    def call(self, method: str, name: str, path: str, **kw) -> httpx.Response:
        """One call, tried on the next replica if the one asked dies under it."""
        last: Exception | None = None
        for _ in range(4):
            try:
                return httpx.request(method, self.url(name) + path, timeout=15, **kw)
            except httpx.TransportError as exc:
                last = exc
        raise AssertionError(f"no {name} replica answered {method} {path}: {last!r}")


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    return part.get_content() if part is not None else ""


def play(stack: Stack, mail, lb: Balancer, tag: str, between_steps=lambda step: None
         ) -> list[dict]:
    """The conversations; returns each card's request (email, card id) in order."""
    convs = []
    for i in range(CARDS):
        email = f"{tag}.c{i}.{uuid.uuid4().hex[:4]}@acme.example"
        body = {"service": "problem", "requester": {"email": email, "name": f"Customer {i}"},
                "subject": f"Case {i}: printer jams", "text": f"Case {i} description.",
                "fields": {"system": "mail", "impact": 3}}
        r = wait_until(lambda: (r := lb.call("POST", "intake", "/v1/requests", json=body))
                       .status_code != 404 and r, timeout=30)
        assert r.status_code == 202, r.text
        convs.append({"i": i, "email": email, "request_id": r.json()["request_id"]})
    between_steps("submitted")

    for c in convs:
        c["card_id"] = wait_until(lambda c=c: lb.call(
            "GET", "boards", "/v1/cards", params={"request_id": c["request_id"]},
            headers=auth(stack)).json()["items"], timeout=60)[0]["id"]
        mail.wait_for(c["email"], 1, timeout=60)  # the acknowledgment
        r = lb.call("POST", "boards", f"/v1/cards/{c['card_id']}/comments", headers=auth(stack),
                    json={"text": f"Please restart printer {c['i']}.", "visibility": "public"})
        assert r.status_code == 201, r.text
    between_steps("replied")

    for c in convs:
        reply = wait_until(lambda c=c: [m for m in mail.to(c["email"])
                                        if "restart printer" in text_of(m)], timeout=60)[0]
        answer = EmailMessage()
        answer["From"] = c["email"]
        answer["To"] = reply["Reply-To"]
        answer["Subject"] = "Re: " + reply["Subject"]
        answer["Message-ID"] = make_msgid(domain="acme.example")
        answer["In-Reply-To"] = answer["References"] = reply["Message-ID"]
        answer.set_content(f"Restarted printer {c['i']}, still jams.")
        r = lb.call("POST", "intake", "/v1/inbound/email", content=bytes(answer),
                    headers={"content-type": "message/rfc822", **mta_auth(stack)})
        assert r.status_code == 202, r.text
    between_steps("answered")

    for c in convs:
        wait_until(lambda c=c: [x for x in comments(lb, stack, c["card_id"])
                                if "still jams" in (x.get("text") or "")], timeout=60)
    for c in convs:  # the moves in a quick run: one card's events close together
        if c["i"] == CARDS // 2:
            between_steps("moving")
        version = card(lb, stack, c["card_id"])["version"]
        for column in MOVES + (("done",) if c["i"] % 2 == 0 else ()):
            r = lb.call("POST", "boards", f"/v1/cards/{c['card_id']}/move", headers=auth(stack),
                        json={"column_id": column, "version": version})
            assert r.status_code == 200, r.text
            version = r.json()["version"]
    between_steps("moved")
    return convs


def card(lb: Balancer, stack: Stack, card_id: str) -> dict:
    r = lb.call("GET", "boards", f"/v1/cards/{card_id}", headers=auth(stack))
    r.raise_for_status()
    return r.json()


def comments(lb: Balancer, stack: Stack, card_id: str) -> list[dict]:
    r = lb.call("GET", "boards", f"/v1/cards/{card_id}/comments", headers=auth(stack))
    r.raise_for_status()
    body = r.json()
    return body["items"] if isinstance(body, dict) else body


def outcome(stack: Stack, mail, lb: Balancer, c: dict) -> dict:
    """What a user (agent, customer, auditor) sees of one card, without ids and times."""
    on_board = card(lb, stack, c["card_id"])
    number = on_board["number"]
    r = lb.call("GET", "sla", f"/v1/cards/{c['card_id']}/sla", headers=sla_auth(stack))
    record = r.json() if r.status_code == 200 else {}
    portal = mongo_find(stack.mongo_url, f"{stack.namespace}_portal", "requests",
                        {"card_id": c["card_id"]})
    # each message once: a copy with the same Message-ID is a resend (see resent())
    mails = list({m["Message-ID"] or id(m): m for m in mail.to(c["email"])}.values())
    return {
        "board": {k: on_board.get(k) for k in ("column_id", "status_category", "lane_id",
                                               "version", "unread_customer_reply")},
        "comments": [(x.get("author") or {}).get("kind") for x in
                     comments(lb, stack, c["card_id"])],
        "sla": {
            "status_category": record.get("status_category"),
            "targets": sorted((t["target"], t["state"], t["cycle"])
                              for t in record.get("targets", [])),
            "pauses": [(p["cause"], p.get("column_id"), sorted(p["targets"]),
                        p.get("ended_at") is None) for p in record.get("pauses", [])],
            "log": [e["what"] for e in record.get("log", [])],
            "reopened": record.get("reopened"),
        },
        "portal": [(p.get("customer_status"), p.get("number") == number) for p in portal],
        "mails": sorted(re.sub(re.escape(number), "N", m["Subject"] or "") for m in mails),
    }


def settled(stack: Stack) -> bool:
    """Nothing in flight: every outbox entry published, every partition queue empty and
    unacknowledged-free, no e-mail waiting to be sent."""
    for name in SERVICES:
        if mongo_find(stack.mongo_url, f"{stack.namespace}_{name}", "outbox",
                      {"sent_at": None}):
            return False
    if mongo_find(stack.mongo_url, f"{stack.namespace}_notify", "deliveries",
                  {"status": {"$in": ["pending", "retrying"]}}):
        return False
    # every partition consumed (a killed replica's taken over: until then its events may
    # wait where nothing reads them) and nothing waiting or unacknowledged in any
    return all(ready == 0 and unacked == 0 and (consumers > 0 or not PARTITION.search(name))
               for name, (ready, unacked, consumers) in queue_depths(stack).items())


def queue_depths(stack: Stack) -> dict[str, tuple[int, int, int]]:
    """(ready, unacknowledged, consumers) of every partition queue, from the broker."""
    import subprocess
    out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name", "messages_ready",
                          "messages_unacknowledged", "consumers"], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    depths = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0].startswith(stack.namespace + ".") \
                and not parts[0].endswith(".dead"):
            depths[parts[0]] = (int(parts[1]), int(parts[2]), int(parts[3]))
    return depths


def partition_shares(stack: Stack, name: str) -> list[list[int]]:
    """The partitions each live replica of `name` consumes, as it last told the store."""
    members = mongo_find(stack.mongo_url, f"{stack.namespace}_{name}", "members",
                         {"expires_at": {"$gt": datetime.now(UTC)}})
    return sorted((sorted(m.get("owns") or []) for m in members), key=len, reverse=True)


def shared(stack: Stack, name: str, sizes: list[int]) -> list[list[int]] | None:
    """The shares, once the live replicas own `sizes` partitions, every one exactly once."""
    shares = partition_shares(stack, name)
    every = sorted(i for share in shares for i in share)
    return shares if [len(x) for x in shares] == sizes and every == [0, 1, 2, 3] else None


def resent(mail, convs: list[dict]) -> dict[str, list[str]]:
    """The customers' mails that arrived more than once (same Message-ID), by subject."""
    out: dict[str, list[str]] = {}
    for c in convs:
        seen: set[str] = set()
        for m in mail.to(c["email"]):
            if m["Message-ID"] and m["Message-ID"] in seen:
                out.setdefault(c["email"], []).append(m["Subject"])
            seen.add(m["Message-ID"])
    return out


def differences(got, want, path: str = "") -> list[str]:
    """Where two outcomes differ, field by field (a failure names what differs, which a
    truncated diff of the whole list does not)."""
    if isinstance(got, dict) and isinstance(want, dict):
        return [d for k in sorted(set(got) | set(want), key=str)
                for d in differences(got.get(k), want.get(k), f"{path}.{k}")]
    return [] if got == want else [f"{path}: {got!r} where one replica gave {want!r}"]


# The broker's queue counts for quorum queues are refreshed on a tick (5 s by default):
# "nothing waiting" is believed only when it still holds, with the same outcomes, once a
# tick has certainly passed
SETTLE_SECONDS = 6.0


def outcomes_when_settled(stack: Stack, mail, lb: Balancer, convs: list[dict]) -> list[dict]:
    """The outcomes once nothing is in flight and two looks SETTLE_SECONDS apart agree."""
    import time

    def stable():
        if not settled(stack):
            return None
        first = [outcome(stack, mail, lb, c) for c in convs]
        time.sleep(SETTLE_SECONDS)
        if not settled(stack):
            return None
        second = [outcome(stack, mail, lb, c) for c in convs]
        return first if first == second else None
    return wait_until(stable, timeout=180, interval=0.5)


def test_three_replicas_of_every_service_end_where_one_replica_does(stack, mail):
    lb = Balancer(stack)
    one = play(stack, mail, lb, "one")
    baseline = outcomes_when_settled(stack, mail, lb, one)
    assert resent(mail, one) == {}  # nothing killed: no message arrives twice
    # the run itself is sound (so the comparison below compares something)
    assert [o["board"]["column_id"] for o in baseline] == ["done", "pause"] * (CARDS // 2)
    assert all(o["comments"][-2:] == ["agent", "customer"] for o in baseline), baseline
    assert all(o["sla"]["pauses"] for o in baseline), baseline
    assert all(len(o["mails"]) >= 2 for o in baseline), baseline

    for name in SERVICES:
        stack.start_replicas(name, 2, wait=False)
    for name in SERVICES:  # ten processes starting at once on a small machine
        for proc in stack.replicas[name]:
            proc.wait_ready(timeout=180)
    for name in SERVICES:  # the work is shared: no replica idles as a standby
        wait_until(lambda name=name: shared(stack, name, [2, 1, 1]), timeout=120)

    # one replica of each service killed in turn while the conversations run (never
    # the first one: the services find each other through its address); sla and notify
    # in the middle of the run of moves, with their events in flight
    schedule = {"submitted": ("intake",), "replied": ("boards",), "answered": ("portal",),
                "moving": ("sla", "notify")}
    victims: list[ServiceProcess] = [stack.replicas[name][0] for name in SERVICES]

    def kill_next(step: str) -> None:
        for name in schedule.get(step, ()):
            stack.replicas[name][0].kill()

    convs = play(stack, mail, lb, "three", between_steps=kill_next)
    assert all(v.proc.poll() is not None for v in victims)
    for name in SERVICES:  # the killed replicas' partitions taken over first
        wait_until(lambda name=name: shared(stack, name, [2, 2]), timeout=60)
    replicated = outcomes_when_settled(stack, mail, lb, convs)
    assert replicated == baseline, "\n".join(
        f"card {i}{d}" for i, (got, want) in enumerate(zip(replicated, baseline))
        for d in differences(got, want))
    # the notify replica killed between the SMTP server accepting a message and notify
    # recording it resends that message, same Message-ID, once its claim runs out
    # (docs/notify.md, known limits): counted once above, and nothing but the batch it
    # had claimed (notify's dispatch_batch, 8) may arrive twice
    again = resent(mail, convs)
    assert sum(map(len, again.values())) <= 8, again

    # the survivors share the work: every service still has two live replicas, ready,
    # and they consume two partitions each (the killed replica's taken over)
    for name in SERVICES:
        live = [p for p in stack.all_of(name) if p.proc.poll() is None]
        assert len(live) == 2, name
        for proc in live:
            assert httpx.get(f"{proc.url}/readyz", timeout=5).status_code == 200, name
        wait_until(lambda name=name: shared(stack, name, [2, 2]), timeout=60)
