"""Boards as a real process fed the scripted month on the real bus (module scope)."""

from __future__ import annotations

import asyncio
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
from desk_contracts import Envelope, make_envelope
from desk_contracts.topology import Topology
from desk_runtime.bus import Bus

from tests.stats import scenario
from tests.support.stack import Stack, auth, cleanup, wait_until

CONSUMED = re.compile(r"^desk_bus_messages_consumed_total\{([^}]*)\} ([0-9.e+]+)$")


def publish(stack: Stack, amqp_url: str, envelopes: list[Envelope]) -> None:
    """Publish on the stack's bus with broker confirms, in the given order."""

    async def run() -> None:
        bus = Bus(amqp_url, Topology(stack.namespace), "stats-test")
        await bus.start()
        try:
            for env in envelopes:
                await bus.publish(env)
        finally:
            await bus.close()

    # in a thread of its own: Playwright's sync API keeps a loop running in this one
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def envelope(payload, occurred_at=None) -> Envelope:
    return make_envelope(payload, account_id="acme", occurred_at=occurred_at)


@dataclass
class Desk:
    stack: Stack
    amqp_url: str
    http: httpx.Client
    envelopes: list[Envelope] = field(default_factory=list)
    published: int = 0

    def get(self, path: str, **params) -> httpx.Response:
        return self.http.get(path, params={**scenario.PERIOD, **params})

    def publish(self, envelopes: list[Envelope]) -> None:
        publish(self.stack, self.amqp_url, envelopes)
        self.published += len(envelopes)

    def consumed(self) -> int:
        """Messages boards.stats has finished with (a retried one is not finished yet)."""
        total = 0.0
        for line in self.http.get("/metrics").text.splitlines():
            m = CONSUMED.match(line)
            if m:
                labels = dict(re.findall(r'([a-z_]+)="([^"]*)"', m.group(1)))
                if labels["queue"].endswith(".boards.stats") and labels["outcome"] != "retried":
                    total += float(m.group(2))
        return int(total)

    def settle(self) -> None:
        """Wait until every message published so far has been taken off boards.stats."""
        wait_until(lambda: self.consumed() >= self.published, timeout=60, interval=0.2)


def first_publication(cards: list[scenario.Card]) -> list[Envelope]:
    """The month in event order, except a few out of order as a busy bus delivers them:
    SD-2's moves arrive newest first and SD-5's rating before its card exists."""
    envs: list[Envelope] = []
    for card in cards:
        events = list(card.events)
        if card.number == "SD-2":
            events.reverse()
        if card.number == "SD-5":
            events = [events[-1], *events[:-1]]
        envs += [envelope(e) for e in events]
    return envs


@pytest.fixture(scope="module")
def desk(mongo_url, amqp_url, tmp_path_factory):
    stack = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("stats"),
                  extra={"boards": {"BOARDS_STATS_GAUGE_REFRESH_SECONDS": "0.3"}})
    stack.start(("boards",))
    http = httpx.Client(base_url=stack["boards"].url, headers=auth(stack), timeout=30)
    d = Desk(stack, amqp_url, http)
    try:
        d.envelopes = first_publication(scenario.month())
        d.publish(d.envelopes)
        d.settle()
        yield d
    finally:
        http.close()
        stack.stop()
        cleanup(mongo_url, amqp_url, stack.namespace)


def new_ids(envs: list[Envelope]) -> list[Envelope]:
    """The same facts under fresh event ids (a producer that re-emitted them)."""
    return [env.model_copy(update={"event_id": uuid.uuid4()}) for env in envs]
