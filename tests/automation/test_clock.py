"""Boards' automation clock on the real store: a time-in-column rule reaches every card of a
column holding more cards than one round takes, each exactly once, also when two replicas'
clocks run at the same time."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from boards.automation import application
from boards.automation.repository import AutomationRepository
from boards.settings import BoardsSettings
from desk_runtime.unit_of_work import UnitOfWork
from pymongo import AsyncMongoClient


class Process:
    """What the clock needs of a boards process: its store and one transaction per call."""

    def __init__(self, client: AsyncMongoClient, db):
        self.client, self.db = client, db

    async def transact(self, work, *, kind: str = "command"):
        async with self.client.start_session() as session:
            async def body(s):
                return await work(UnitOfWork(self.db, s, "default"))
            return await session.with_transaction(body)


@pytest.fixture
async def process(mongo_url):
    client = AsyncMongoClient(mongo_url, tz_aware=True)
    name = f"t{uuid.uuid4().hex[:10]}_clock"
    yield Process(client, client[name])
    await client.drop_database(name)
    await client.close()


async def test_the_clock_pages_through_a_full_column_once_per_card(process, monkeypatch):
    monkeypatch.setattr(application, "TIMER_BATCH", 3)
    monkeypatch.setattr(application, "_WALKS", {})
    db = process.db
    old = datetime.now(UTC) - timedelta(hours=2)
    await db.boards.insert_one({"_id": "ops", "name": "Ops", "columns": [
        {"id": "todo", "name": "To do", "category": "queued"}],
        "lanes": [{"id": "main", "name": "Main"}]})
    ids = [f"card-{i:02d}" for i in range(8)]
    await db.cards.insert_many([{
        "_id": card_id, "number": f"OPS-{i}", "version": 1, "title": f"Card {i}",
        "board_id": "ops", "column_id": "todo", "lane_id": "main",
        "status_category": "queued", "priority": "medium", "channel": "agent",
        "created_at": old, "updated_at": old, "column_entered_at": old, "kind": "task",
        "type": "task", "labels": [], "history": []} for i, card_id in enumerate(ids)])
    await AutomationRepository(db).save_rule({
        "_id": "stuck", "name": "Stuck in To do", "board_id": "ops", "active": True,
        "order": 0, "trigger": {"type": "time_in_column", "column_id": "todo", "minutes": 60},
        "conditions": [], "actions": [{"type": "add_labels", "labels": ["stuck"]}]},
        by="test", at=datetime.now(UTC))

    settings = BoardsSettings()
    # two replicas' clocks at once, a few rounds each, until neither finds work
    for _ in range(6):
        await asyncio.gather(application.timer_round(process, settings),
                             application.timer_round(process, settings))

    labelled = {c["_id"]: [x["name"] for x in c["labels"]]
                async for c in db.cards.find({}, {"labels": 1})}
    assert labelled == {card_id: ["stuck"] for card_id in ids}
    runs = [r async for r in db.automation_runs.find({})]
    assert sorted(r["card_id"] for r in runs) == ids  # each card once
    assert {r["outcome"] for r in runs} == {"ran"}
    # the log is on each card's history
    card = await db.cards.find_one({"_id": ids[-1]})
    assert [h["field"] for h in card["history"]][-1] == "automation: Stuck in To do"
