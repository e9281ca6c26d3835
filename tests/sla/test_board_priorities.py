"""A policy's targets per board priority id, with the level as the fallback, on a real sla
process: a card's budget follows its board priority, also when only the id changes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from desk_contracts import make_envelope
from desk_contracts.catalog import ServiceDefinition
from desk_contracts.events import CardCreated, CardSnapshot, CardUpdated, CatalogServiceChanged
from desk_contracts.topology import Topology
from desk_runtime.bus import Bus

from tests.support.infra import free_port
from tests.support.stack import ServiceProcess, Stack, cleanup, wait_until

pytestmark = pytest.mark.slow

ADMIN = {"Authorization": "Bearer sla-admin"}
READ = {"Authorization": f"Bearer {Stack.SLA_READ_TOKEN}"}


@pytest.fixture(scope="module")
def sla(mongo_url, amqp_url, tmp_path_factory):
    stack = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("sla-prio"))
    env = stack.env_for("sla") | {"SLA_HTTP_PORT": str(free_port()),
                                  "SLA_ADMIN_TOKEN": "sla-admin"}
    proc = ServiceProcess("sla", env, int(env["SLA_HTTP_PORT"]), stack.workdir / "sla.log")
    stack.services["sla"] = proc
    proc.start()
    yield stack, proc
    proc.stop()
    cleanup(mongo_url, amqp_url, stack.namespace)


def publish(amqp_url: str, ns: str, *payloads) -> None:
    async def run() -> None:
        bus = Bus(amqp_url, Topology(ns), "test")
        await bus.start()
        try:
            for p in payloads:
                await bus.publish(make_envelope(p, account_id="default"))
        finally:
            await bus.close()
    asyncio.run(run())


def snapshot(card_id: str, *, priority: str, key: str, version: int, at: datetime
             ) -> CardSnapshot:
    return CardSnapshot(card_id=card_id, number="SD-7", version=version, title="Export",
                        service_id="core12", board_id="it", column_id="queue", lane_id="l1",
                        status_category="queued", customer_status="x", priority=priority,
                        priority_key=key, requester={"email": "a@acme.example"},
                        channel="api", created_at=at, updated_at=at)


def budgets(proc: ServiceProcess, card_id: str) -> dict[str, float] | None:
    r = httpx.get(f"{proc.url}/v1/cards/{card_id}/sla", headers=READ, timeout=10)
    if r.status_code != 200:
        return None
    return {t["target"]: t["budget_minutes"] for t in r.json()["targets"]}


def test_a_card_is_priced_by_its_board_priority_id_then_its_level(sla, amqp_url):
    stack, proc = sla
    r = httpx.put(f"{proc.url}/v1/policies/core12", headers=ADMIN, json={
        "calendar": "24x7", "targets": {"first_response": 240, "resolution": 2880},
        "priority_overrides": {"critical": {"first_response": 30}},
        "priority_targets": {"overdue-urgent": {"first_response": 10, "resolution": 120}}})
    assert r.status_code == 200, r.text
    # the API's document names the policy's shape, board priority targets included
    spec = httpx.get(f"{proc.url}/openapi.json").json()
    body = spec["paths"]["/v1/policies/{name}"]["put"]["requestBody"]["content"]
    assert body["application/json"]["schema"]["$ref"] == "#/components/schemas/SlaPolicy"
    assert "priority_targets" in spec["components"]["schemas"]["SlaPolicy"]["properties"]
    # a client that knows nothing of board priorities (the admin page) keeps them on saving
    r = httpx.put(f"{proc.url}/v1/policies/core12", headers=ADMIN, json={
        "calendar": "24x7", "targets": {"first_response": 240, "resolution": 2880},
        "priority_overrides": {"critical": {"first_response": 30}}})
    assert r.json()["priority_targets"] == {
        "overdue-urgent": {"first_response": 10, "resolution": 120}}
    r = httpx.post(f"{proc.url}/v1/preview", headers=ADMIN, json={
        "policy": "core12", "priority": "critical", "priority_key": "overdue-urgent",
        "start": "2026-12-01T10:00:00Z"})
    assert r.status_code == 200, r.text
    assert {t["target"]: t["minutes"] for t in r.json()["targets"]} == {
        "first_response": 10, "resolution": 120}

    service = ServiceDefinition.model_validate({
        "id": "core12", "name": {"en": "Core12"}, "sla_policy": "core12",
        "target": {"board_id": "it", "column_id": "queue", "lane_id": "l1"}})
    at = datetime.now(UTC)
    card_id = str(uuid.uuid4())
    publish(amqp_url, stack.namespace, CatalogServiceChanged(service=service, revision=1),
            CardCreated(card=snapshot(card_id, priority="critical", key="overdue-urgent",
                                      version=1, at=at)))
    assert wait_until(lambda: budgets(proc, card_id)) == {"first_response": 10.0,
                                                          "resolution": 120.0}
    # another board priority of the same level: only `priority_key` changed
    publish(amqp_url, stack.namespace, CardUpdated(
        card=snapshot(card_id, priority="critical", key="fire", version=2, at=at),
        changed=("priority_key",)))
    assert wait_until(lambda: budgets(proc, card_id) == {"first_response": 30.0,
                                                         "resolution": 2880.0})
    record = httpx.get(f"{proc.url}/v1/cards/{card_id}/sla", headers=READ).json()
    assert record["priority_key"] == "fire"
    assert any(e["what"] == "repriced" and e["detail"] == "priority overdue-urgent → fire"
               for e in record["log"])
