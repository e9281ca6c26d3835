"""The automation API on the real stack: a wrong rule is refused field by field and nothing
of it is kept; a saved rule keeps its versions; agents may not edit rules; rules that
trigger each other are stopped at the depth limit and the stop is written on the card."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

import aio_pika
import httpx
import pytest
from desk_contracts.events import Person, ReplyReceived, SlaBreached
from desk_contracts.topology import PARTITION_HEADER, Topology
from pymongo import MongoClient

from tests.support.stack import wait_until

pytestmark = pytest.mark.slow

COLUMNS = [{"id": "todo", "name": "To do", "category": "queued"},
           {"id": "doing", "name": "Doing", "category": "in_progress"},
           {"id": "done", "name": "Done", "category": "done"}]


def test_a_wrong_rule_is_refused_per_field_and_nothing_is_kept(boards):
    r = boards.put("rules", "broken", {
        "name": "", "board_id": "it",
        "trigger": {"type": "card_moved", "to_column": "nowhere"},
        "conditions": [{"attribute": "category", "values": ["no-such-category"]}],
        "actions": [{"type": "set_column", "column_id": "void"},
                    {"type": "add_checklist", "checklist_template_id": "gone"},
                    {"type": "fly"}]})
    assert r.status_code == 422
    assert r.json()["details"] == {
        "name": "a rule needs a name",
        "trigger.to_column": "board 'it' has no such column",
        "conditions[0].values": "no such category: no-such-category",
        "actions[0].column_id": "board 'it' has no such column",
        "actions[1].checklist_template_id": "no such checklist template",
        "actions[2].type": r.json()["details"]["actions[2].type"],
    }
    assert r.json()["details"]["actions[2].type"].startswith("one of set_type")
    assert boards.http.get("/v1/automation/rules/broken").status_code == 404


def test_a_category_must_answer_the_forms_dependent_select(boards):
    # the form shows "system" only under category=access, so it cannot sit below "question"
    r = boards.put("categories", "q-vpn", {"service_id": "it-request", "parent_id":
                                          "it-question", "field": "system", "value": "vpn"})
    assert r.status_code == 422
    assert set(r.json()["details"]) == {"field"}
    r = boards.put("categories", "a-vpn", {"service_id": "it-request", "parent_id": "it-access",
                                          "field": "system", "value": "vpn", "name": "VPN"})
    assert r.status_code == 200, r.text
    assert boards.http.delete("/v1/automation/categories/it-access").status_code == 422
    assert boards.http.delete("/v1/automation/categories/a-vpn").status_code == 204


def test_a_rule_keeps_each_version_and_only_admins_edit(boards):
    rule = {"name": "Improvements get a due date", "board_id": "it",
            "trigger": {"type": "card_created"},
            "conditions": [{"attribute": "category", "values": ["it-improvement"]}],
            "actions": [{"type": "set_due_date", "days": 14}]}
    first = boards.put("rules", "improvement-due", rule)
    assert first.status_code == 200, first.text
    second = boards.put("rules", "improvement-due", rule | {"actions": [
        {"type": "set_due_date", "days": 30}]})
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    versions = boards.http.get("/v1/automation/rules/improvement-due/versions").json()["items"]
    assert [(v["version"], v["actions"][0]["days"]) for v in versions] == [(2, 30), (1, 14)]
    agent = boards.http.post("/v1/agents", json={"id": f"ag-{uuid.uuid4().hex[:6]}",
                                                 "name": "Ag", "boards": ["it"]}).json()
    as_agent = httpx.put(f"{boards.stack['boards'].url}/v1/automation/rules/improvement-due",
                         json=rule, headers={"Authorization": f"Bearer {agent['token']}"})
    assert as_agent.status_code == 403
    assert boards.http.delete("/v1/automation/rules/improvement-due").status_code == 204
    # each change is in the admin audit log, with the rule before and after
    logged = [e for e in boards.http.get("/v1/admin/audit").json()["items"]
              if e["target"] == "rule:improvement-due"]
    assert [e["action"] for e in logged] == ["deleted", "updated", "created"]
    assert logged[1]["before"]["actions"][0]["days"] == 14
    assert logged[1]["after"]["actions"][0]["days"] == 30


def test_rules_that_trigger_each_other_are_stopped_and_the_card_says_so(boards):
    board = f"loop-{uuid.uuid4().hex[:6]}"
    r = boards.http.put(f"/v1/boards/{board}", json={
        "name": "Loop", "columns": COLUMNS, "lanes": [{"id": "main", "name": "Main"}]})
    assert r.status_code == 200, r.text
    r = boards.http.put(f"/v1/services/{board}", json={
        "id": board, "name": {"en": "Loop"},
        "target": {"board_id": board, "column_id": "todo", "lane_id": "main"}})
    assert r.status_code == 200, r.text
    for rule_id, trigger, to in ((f"{board}-start", {"type": "card_created"}, "doing"),
                                 (f"{board}-ping", {"type": "card_moved", "to_column": "doing"},
                                  "todo"),
                                 (f"{board}-pong", {"type": "card_moved", "to_column": "todo"},
                                  "doing")):
        r = boards.put("rules", rule_id, {"name": rule_id, "board_id": board, "trigger": trigger,
                                          "actions": [{"type": "set_column", "column_id": to}]})
        assert r.status_code == 200, r.text

    card = boards.submit(board, "Going round in circles")
    stopped = wait_until(lambda: [run for run in boards.runs(card["id"])
                                  if run["outcome"] == "loop_stopped"], timeout=60)
    assert len(stopped) == 1 and stopped[0]["depth"] == 5
    assert "rule runs in a row" in stopped[0]["did"][0]
    history = boards.card(card["id"])["history"]
    moves = [h for h in history if h["field"] == "column_id"]
    assert len(moves) == 5  # start, then ping/pong twice each: then the chain is stopped
    logged = [h for h in history if h["field"].startswith("automation:")]
    assert len(logged) == 6
    assert logged[-1]["from"] == "card_moved (loop_stopped)"
    # the stop is final: the card stays where the last run left it
    assert boards.card(card["id"])["column_id"] == "doing"


def test_a_card_left_in_a_column_too_long_is_escalated_once(boards):
    board = f"slow-{uuid.uuid4().hex[:6]}"
    r = boards.http.put(f"/v1/boards/{board}", json={
        "name": "Slow", "columns": COLUMNS, "lanes": [{"id": "main", "name": "Main"},
                                                      {"id": "urgent", "name": "Urgent"}]})
    assert r.status_code == 200, r.text
    r = boards.http.put(f"/v1/services/{board}", json={
        "id": board, "name": {"en": "Slow"},
        "target": {"board_id": board, "column_id": "todo", "lane_id": "main"}})
    assert r.status_code == 200, r.text
    r = boards.put("rules", f"{board}-stuck", {
        "name": "Waiting too long in To do", "board_id": board,
        "trigger": {"type": "time_in_column", "column_id": "todo", "minutes": 0.05},
        "actions": [{"type": "set_lane", "lane_id": "urgent"},
                    {"type": "add_labels", "labels": ["waited"]}]})
    assert r.status_code == 200, r.text

    card = boards.submit(board, "Nobody looked at this")
    escalated = wait_until(lambda: (c := boards.card(card["id"]))["lane_id"] == "urgent" and c,
                           timeout=40)
    assert [x["name"] for x in escalated["labels"]] == ["waited"]
    [run] = [x for x in boards.runs(card["id"]) if x["rule_id"] == f"{board}-stuck"]
    assert (run["trigger"], run["outcome"]) == ("time_in_column", "ran")
    assert run["did"] == ["lane urgent", "labels added: waited"]
    # the same stay in the column does not fire it again: a second card, submitted now,
    # is escalated only after its own 3 s in the column, so the clock has looked at the
    # first card (still in the column, still overdue) in several rounds by then
    later = boards.submit(board, "Nobody looked at this either")
    wait_until(lambda: boards.card(later["id"])["lane_id"] == "urgent", timeout=40)
    assert len([x for x in boards.runs(card["id"]) if x["rule_id"] == f"{board}-stuck"]) == 1
    assert len([x for x in boards.runs(later["id"]) if x["rule_id"] == f"{board}-stuck"]) == 1


def test_a_rule_starts_a_request_templates_chain_when_its_condition_is_met(boards):
    board = f"chain-{uuid.uuid4().hex[:6]}"
    r = boards.http.put(f"/v1/boards/{board}", json={
        "name": "Chain", "columns": COLUMNS, "lanes": [{"id": "main", "name": "Main"}]})
    assert r.status_code == 200, r.text
    r = boards.http.put(f"/v1/services/{board}", json={
        "id": board, "name": {"en": "Invoices"},
        "target": {"board_id": board, "column_id": "todo", "lane_id": "main"}})
    assert r.status_code == 200, r.text
    r = boards.put("request-templates", f"{board}-pay", {
        "name": "Pay an invoice", "service_id": board, "start": "by_rule",
        "steps": [{"board_id": board, "title": "Check {title}"},
                  {"board_id": board, "title": "Pay {title}"}]})
    assert r.status_code == 200, r.text
    r = boards.put("rules", f"{board}-approved", {
        "name": "Approved invoices are paid", "board_id": board,
        "trigger": {"type": "card_moved", "to_column": "doing"},
        "conditions": [{"attribute": "kind", "values": ["request"]}],
        "actions": [{"type": "start_template", "request_template_id": f"{board}-pay"}]})
    assert r.status_code == 200, r.text

    card = boards.submit(board, "Invoice 42")
    time.sleep(3)  # on arrival nothing starts: the template waits for its rule
    assert boards.children(card["id"]) == []
    boards.move(card, "doing")
    [first] = wait_until(lambda: boards.children(card["id"]), timeout=30)
    assert first["title"] == "Check Invoice 42"
    boards.move(first, "done")
    second = wait_until(lambda: (c := boards.children(card["id"])) and len(c) == 2 and c[1],
                        timeout=30)
    assert second["title"] == "Pay Invoice 42"


def test_a_redelivered_event_runs_no_rule_twice(boards, stack, mongo_url):
    idea = boards.submit("idea", "Export the console to CSV")
    wait_until(lambda: boards.card(idea["id"])["checklist"], timeout=30)
    db = MongoClient(mongo_url, tz_aware=True)[f"{stack.namespace}_boards"]
    created = next(d["envelope"] for d in db.outbox.find({"envelope.type": "card.created"})
                   if d["envelope"]["payload"]["card"]["card_id"] == idea["id"])
    # the broker delivers it again, and the consumer's record of it is even lost: the
    # run's own id still keeps the rule from running twice
    db.processed_events.delete_one({"_id": f"boards.automation:{created['event_id']}"})

    async def publish() -> None:
        conn = await aio_pika.connect(boards.amqp_url)
        async with conn:
            channel = await conn.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(Topology(stack.namespace).exchange)
            body = json.dumps(created, default=str).encode()
            await exchange.publish(aio_pika.Message(body=body, headers={
                PARTITION_HEADER: idea["id"]}), routing_key="card.created.v1")
    asyncio.run(publish())
    wait_until(lambda: db.processed_events.find_one(
        {"_id": f"boards.automation:{created['event_id']}"}), timeout=30)
    runs = boards.runs(idea["id"])
    assert [r["rule_id"] for r in runs] == ["activecloud-idea-checklist"]
    card = boards.card(idea["id"])
    assert len(card["checklist"]) == 4
    assert len([h for h in card["history"] if h["field"].startswith("automation:")]) == 1


def test_a_customer_reply_and_an_sla_breach_trigger_their_rules(boards, stack, mail):
    board = f"watch-{uuid.uuid4().hex[:6]}"
    r = boards.http.put(f"/v1/boards/{board}", json={
        "name": "Watch", "columns": COLUMNS, "lanes": [{"id": "main", "name": "Main"}]})
    assert r.status_code == 200, r.text
    r = boards.http.put(f"/v1/services/{board}", json={
        "id": board, "name": {"en": "Watch"},
        "target": {"board_id": board, "column_id": "todo", "lane_id": "main"}})
    assert r.status_code == 200, r.text
    lead = boards.http.post("/v1/agents", json={
        "id": f"lead-{uuid.uuid4().hex[:6]}", "name": "Lena Lead", "boards": [board],
        "email": f"lena.{uuid.uuid4().hex[:6]}@desk.example"}).json()
    for rule_id, trigger, actions in (
            ("replied", {"type": "customer_replied"},
             [{"type": "add_labels", "labels": ["customer wrote"]}]),
            ("breached", {"type": "sla_breached", "target": "first_response"},
             [{"type": "set_priority", "value": "critical"},
              {"type": "notify", "agents": [lead["id"]]}])):
        r = boards.put("rules", f"{board}-{rule_id}", {"name": rule_id, "board_id": board,
                                                         "trigger": trigger, "actions": actions})
        assert r.status_code == 200, r.text

    card = boards.submit(board, "Still waiting")
    now = datetime.now(UTC)
    boards.publish(ReplyReceived(
        reply_id=f"r-{uuid.uuid4()}", card_id=card["id"], channel="email",
        author=Person(email=card["email"], name="Anna"), text="Any news?", received_at=now))
    labelled = wait_until(lambda: (c := boards.card(card["id"]))["labels"] and c, timeout=30)
    assert [x["name"] for x in labelled["labels"]] == ["customer wrote"]
    assert labelled["priority"] == "medium"  # the breach rule has not run: no breach yet

    # sla says the first response is late (as sla publishes it)
    boards.publish(SlaBreached(card_id=card["id"], number=card["number"],
                               target="first_response", deadline=now, at=now,
                               policy="standard", service_id=board))
    escalated = wait_until(lambda: (c := boards.card(card["id"]))["priority"] == "critical"
                           and c, timeout=30)
    assert escalated["priority_key"] == "critical"
    # the lead hears of it by e-mail, through notify
    [told] = mail.wait_for(lead["email"])
    assert card["number"] in told["Subject"]
