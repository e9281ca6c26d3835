"""The work behind a request, through the five services on the real broker and store: a task
card (agents told, no customer, no clock), a request moved to another board (its SLA record,
portal row, history and links kept; a board that forbids it refuses), and a new hire's child
card per department with the parent waiting for them."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.stack import Stack, auth, card_for, mongo_find, sla_auth, wait_until

pytestmark = pytest.mark.slow

COLUMNS = [{"id": "todo", "name": "To do", "category": "queued"},
           {"id": "doing", "name": "Doing", "category": "in_progress"},
           {"id": "done", "name": "Done", "category": "done"}]


def boards(stack: Stack, method: str, path: str, token: str | None = None, **kw
           ) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else auth(stack)
    return httpx.request(method, f"{stack['boards'].url}{path}", headers=headers, timeout=15,
                         **kw)


def put_board(stack: Stack, board_id: str, **extra) -> None:
    body = {"name": board_id.title(), "columns": COLUMNS,
            "lanes": [{"id": "main", "name": "Main"}]} | extra
    r = boards(stack, "PUT", f"/v1/boards/{board_id}", json=body)
    assert r.status_code == 200, r.text


def new_agent(stack: Stack, board_ids: list[str], name: str) -> dict:
    r = boards(stack, "POST", "/v1/agents", json={
        "id": f"{name.lower()}-{uuid.uuid4().hex[:4]}", "name": name, "boards": board_ids,
        "email": f"{name.lower()}.{uuid.uuid4().hex[:4]}@desk.example"})
    assert r.status_code == 201, r.text
    return r.json()


def event_id(mongo_url: str, stack: Stack, type_: str, card_id: str) -> str:
    found = wait_until(lambda: [
        d["envelope"]["event_id"] for d in mongo_find(
            mongo_url, f"{stack.namespace}_boards", "outbox", {"envelope.type": type_})
        if d["envelope"]["payload"]["card"]["card_id"] == card_id])
    return found[0]


def handled_by(mongo_url: str, stack: Stack, service: str, event: str) -> bool:
    """Whether `service` committed its handling of the event (its processed record)."""
    return any(str(d["_id"]).endswith(f":{event}") for d in mongo_find(
        mongo_url, f"{stack.namespace}_{service}", "processed_events", {}))


def test_a_task_card_tells_agents_and_never_a_customer(stack, mail, mongo_url):
    dev = new_agent(stack, ["support"], "Dana")
    lead = new_agent(stack, ["support"], "Leo")
    r = boards(stack, "POST", "/v1/tasks", token=lead["token"], json={
        "board_id": "support", "title": "Renew the TLS certificate", "assignee_id": dev["id"],
        "text": "Expires on Friday"})
    assert r.status_code == 201, r.text
    task = r.json()
    assert (task["kind"], task["requester"]) == ("task", None)

    # notify: the assignee hears it is theirs, by e-mail through SMTP
    [assigned] = mail.wait_for(dev["email"])
    assert assigned["Subject"] == f"{task['number']} is yours: Renew the TLS certificate"
    assert f"/cards/{task['number']}" in assigned.get_body(("plain",)).get_content()
    # an @mention by name (any case) in an internal note reaches the named agent, without
    # the note's text
    r = boards(stack, "POST", f"/v1/cards/{task['id']}/comments", token=dev["token"], json={
        "visibility": "internal", "text": "@LEO the new key is in the vault"})
    assert r.status_code == 201 and r.json()["mentions"][0]["agent_id"] == lead["id"]
    [mentioned] = mail.wait_for(lead["email"])
    assert mentioned["Subject"] == f"Dana mentioned you on {task['number']}"
    assert "vault" not in mentioned.get_body(("plain",)).get_content()
    # the lead follows the task: a note from someone else reaches them, once
    r = boards(stack, "PUT", f"/v1/cards/{task['id']}/following", token=lead["token"],
               json={"following": True})
    assert r.status_code == 200
    r = boards(stack, "POST", f"/v1/cards/{task['id']}/comments", token=dev["token"], json={
        "visibility": "internal", "text": "rotated on staging"})
    assert r.status_code == 201
    noted = mail.wait_for(lead["email"], count=2)[1]
    assert noted["Subject"] == f"{task['number']} changed: Renew the TLS certificate"
    body = noted.get_body(("plain",)).get_content()
    assert f"Dana added an internal note to card {task['number']}" in body
    assert "staging" not in body

    # portal and sla handled the task's creation and made nothing of it
    created = event_id(mongo_url, stack, "card.created", task["id"])
    wait_until(lambda: handled_by(mongo_url, stack, "portal", created))
    wait_until(lambda: handled_by(mongo_url, stack, "sla", created))
    assert mongo_find(mongo_url, f"{stack.namespace}_portal", "requests",
                      {"_id": task["id"]}) == []
    assert httpx.get(f"{stack['sla'].url}/v1/cards/{task['id']}/sla",
                     headers=sla_auth(stack)).status_code == 404
    # closing it asks no customer for a rating: notify records no customer delivery
    card = boards(stack, "GET", f"/v1/cards/{task['id']}").json()
    r = boards(stack, "POST", f"/v1/cards/{task['id']}/move",
               json={"column_id": "done", "version": card["version"]})
    assert r.status_code == 200
    moved = event_id(mongo_url, stack, "card.moved", task["id"])
    wait_until(lambda: handled_by(mongo_url, stack, "notify", moved))
    deliveries = mongo_find(mongo_url, f"{stack.namespace}_notify", "deliveries",
                            {"card_id": task["id"]})
    assert {d["audience"] for d in deliveries} == {"agent"}
    # ... and its follower hears it was closed
    closed = mail.wait_for(lead["email"], count=3)[2]
    assert (f"closed card {task['number']} “Renew the TLS certificate”, which you follow"
            in closed.get_body(("plain",)).get_content())
    assert len(mail.to(lead["email"])) == 3


def submit(stack: Stack, email: str) -> str:
    body = {"service": "problem", "requester": {"email": email, "name": "Anna"},
            "subject": "Export breaks on umlauts", "text": "The CSV export fails.",
            "fields": {"system": "crm", "impact": 2}}

    def post():
        r = httpx.post(f"{stack['intake'].url}/v1/requests", json=body, timeout=10)
        return r if r.status_code != 404 else None
    r = wait_until(post, timeout=20)
    assert r.status_code == 202, r.text
    return r.json()["request_id"]


def test_a_request_moves_to_the_developers_board_keeping_its_record(stack, mongo_url):
    put_board(stack, "ready-for-it", accepts={"from_boards": ["support"]})
    put_board(stack, "internal-only", accepts={"requests": False})
    email = f"anna.{uuid.uuid4().hex[:6]}@acme.example"
    card = card_for(stack, submit(stack, email))
    record = wait_until(lambda: (r := httpx.get(
        f"{stack['sla'].url}/v1/cards/{card['id']}/sla", headers=sla_auth(stack))
    ).status_code == 200 and r.json())
    note = boards(stack, "POST", "/v1/tasks", json={"board_id": "support", "title": "Repro"})
    boards(stack, "POST", f"/v1/cards/{card['id']}/links", json={"child": note.json()["id"]})
    card = boards(stack, "GET", f"/v1/cards/{card['id']}").json()

    r = boards(stack, "POST", f"/v1/cards/{card['id']}/transfer",
               json={"board_id": "internal-only", "version": card["version"]})
    assert r.status_code == 409 and r.json()["error"] == "transfer_refused"
    assert "internal tasks only" in r.json()["message"]
    r = boards(stack, "POST", f"/v1/cards/{card['id']}/transfer",
               json={"board_id": "ready-for-it", "column_id": "doing",
                     "version": card["version"]})
    assert r.status_code == 200, r.text
    moved = r.json()
    assert (moved["board_id"], moved["number"]) == ("ready-for-it", card["number"])
    assert [link["number"] for link in moved["links"]] == [note.json()["number"]]
    assert {"created", "board_id"} <= {h["field"] for h in moved["history"]}

    # sla: the same record, its clock following the card into "in progress"
    after = wait_until(lambda: (r := httpx.get(
        f"{stack['sla'].url}/v1/cards/{card['id']}/sla", headers=sla_auth(stack)).json()
    )["status_category"] == "in_progress" and r)
    assert after["policy"] == record["policy"]
    assert after["targets"][0]["started_at"] == record["targets"][0]["started_at"]
    # portal: the customer still sees their request, now in progress
    rows = wait_until(lambda: [r for r in mongo_find(
        mongo_url, f"{stack.namespace}_portal", "requests", {"_id": card["id"]})
        if r["status_category"] == "in_progress"])
    assert rows[0]["requester_email"] == email

    # a request given to its real author: the portal moves it from one list to the other
    real = f"real.{uuid.uuid4().hex[:6]}@acme.example"
    r = boards(stack, "PUT", f"/v1/cards/{card['id']}/requester",
               json={"requester": {"email": real, "name": "Real"}, "version": moved["version"]})
    assert r.status_code == 200, r.text
    wait_until(lambda: mongo_find(mongo_url, f"{stack.namespace}_portal", "requests",
                                  {"requester_email": real}))
    assert mongo_find(mongo_url, f"{stack.namespace}_portal", "requests",
                      {"requester_email": email}) == []


def test_a_new_hire_makes_a_child_card_per_department(stack, mail, mongo_url):
    put_board(stack, "hiring", parent_waits_for_children=True)
    departments = {}
    for department in ("payroll", "accounting", "admins"):
        put_board(stack, department)
        departments[department] = new_agent(stack, [department], department.title())
    r = boards(stack, "POST", "/v1/tasks", json={"board_id": "hiring",
                                                  "title": "Anna accepted the offer"})
    offer = r.json()
    children = []
    for department, agent in departments.items():
        r = boards(stack, "POST", f"/v1/cards/{offer['id']}/children", json={
            "board_id": department, "title": f"Anna: {department}",
            "assignee_id": agent["id"]})
        assert r.status_code == 201, r.text
        children.append(r.json())
    # each department's agent is told of their part
    for department, agent in departments.items():
        [told] = mail.wait_for(agent["email"])
        assert f"Anna: {department}" in told["Subject"]
    parent = boards(stack, "GET", f"/v1/cards/{offer['id']}").json()
    assert parent["children"]["done"] == 0 and parent["children"]["total"] == 3
    r = boards(stack, "POST", f"/v1/cards/{offer['id']}/move",
               json={"column_id": "done", "version": parent["version"]})
    assert r.status_code == 409 and len(r.json()["details"]["open_children"]) == 3
    for child, agent in zip(children, departments.values(), strict=True):
        r = boards(stack, "POST", f"/v1/cards/{child['id']}/move", token=agent["token"],
                   json={"column_id": "done", "version": child["version"]})
        assert r.status_code == 200, r.text
    parent = boards(stack, "GET", f"/v1/cards/{offer['id']}").json()
    assert parent["children"] == {"done": 3, "total": 3, "open": []}
    r = boards(stack, "POST", f"/v1/cards/{offer['id']}/move",
               json={"column_id": "done", "version": parent["version"]})
    assert r.status_code == 200
    # none of it reached a customer's portal
    for card in [offer, *children]:
        created = event_id(mongo_url, stack, "card.created", card["id"])
        wait_until(lambda event=created: handled_by(mongo_url, stack, "portal", event))
        assert mongo_find(mongo_url, f"{stack.namespace}_portal", "requests",
                          {"_id": card["id"]}) == []
    # statistics count the closed work by type
    closed = wait_until(lambda: (boards(stack, "GET", "/v1/stats/summary",
                                        params={"board": "payroll"}).json()
                                 ["closed_by_type"].get("task")))
    assert closed == 1
