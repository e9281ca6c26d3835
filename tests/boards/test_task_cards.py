"""Task cards, card types, priorities, moves across boards, child cards, blockers, labels,
participants, mentions and a request's new author — against a real boards process."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from desk_contracts.events import Person, ReplyReceived

from tests.support.stack import wait_until

pytestmark = pytest.mark.slow

COLUMNS = [{"id": "todo", "name": "To do", "category": "queued"},
           {"id": "doing", "name": "Doing", "category": "in_progress"},
           {"id": "done", "name": "Done", "category": "done"}]

# Core12 names its own priorities; Hopper IT colours them.
OWN_PRIORITIES = [
    {"id": "waits", "names": {"en": "Waits more than two days", "ru": "Ждёт больше двух дней"},
     "color": "#2e7d32", "level": "low"},
    {"id": "normal", "names": {"en": "Normal", "ru": "Обычный"}, "color": "#f9a825",
     "level": "medium"},
    {"id": "overdue-urgent", "names": {"en": "Overdue-urgent", "ru": "Просрочено-срочно"},
     "color": "#c62828", "level": "critical"},
]


def put_board(desk, board_id: str, **extra) -> dict:
    body = {"name": board_id.title(), "columns": COLUMNS,
            "lanes": [{"id": "main", "name": "Main"}]} | extra
    r = desk.admin.put(f"/v1/boards/{board_id}", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def agent(desk, boards: list[str], email: str | None = None) -> dict:
    r = desk.admin.post("/v1/agents", json={
        "id": f"ag-{uuid.uuid4().hex[:8]}", "name": "Dev", "boards": boards, "email": email,
        "language": "ru"})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(scope="module")
def boards(desk):
    put_board(desk, "it-ready", priorities=OWN_PRIORITIES,
              card_types=[{"id": "feature", "name": {"en": "Feature", "ru": "Доработка"},
                           "color": "#6a1b9a", "fields": {"estimate": "1d"}},
                          {"id": "bug", "name": {"en": "Bug", "ru": "Ошибка"},
                           "color": "#c62828"}],
              accepts={"requests": False}, parent_waits_for_children=True)
    put_board(desk, "payroll")
    put_board(desk, "admins")
    return ("it-ready", "payroll", "admins")


def task(desk, client=None, **body) -> dict:
    r = (client or desk.admin).post("/v1/tasks", json={"board_id": "it-ready",
                                                       "title": "Export to 1C"} | body)
    assert r.status_code == 201, r.text
    return r.json()


def test_a_task_has_no_requester_and_nothing_for_a_customer(desk, boards):
    card = task(desk, type="feature", text="Scope: the monthly report", due_date="2030-01-31")
    assert (card["kind"], card["requester"], card["service_id"]) == ("task", None, None)
    assert card["type"] == "feature" and card["fields"] == {"estimate": "1d"}
    assert card["priority_key"] == "normal" and card["priority"] == "medium"
    [created] = desk.outbox("card.created", card["id"])
    assert created["payload"]["card"]["kind"] == "task"
    assert created["payload"]["card"]["requester"] is None
    # its description is an internal note: no content on the bus
    [note] = desk.admin.get(f"/v1/cards/{card['id']}/comments").json()["items"]
    assert note["visibility"] == "internal" and note["text"] == "Scope: the monthly report"
    r = desk.admin.post(f"/v1/cards/{card['id']}/comments",
                        json={"text": "Hello customer", "visibility": "public"})
    assert r.status_code == 422 and r.json()["details"]["visibility"]
    assert [c["visibility"] for c in desk.admin.get(
        f"/v1/cards/{card['id']}/comments").json()["items"]] == ["internal"]


def test_tasks_only_on_the_agents_own_boards_and_of_an_internal_type(desk, boards):
    outsider = agent(desk, ["payroll"])
    client = desk.client(outsider["token"])
    r = client.post("/v1/tasks", json={"board_id": "it-ready", "title": "Sneak in"})
    assert r.status_code == 422 and r.json()["details"]["board_id"]
    assert task(desk, client, board_id="payroll")["board_id"] == "payroll"
    r = desk.admin.post("/v1/tasks", json={"board_id": "support", "title": "x",
                                           "type": "request"})
    assert r.status_code == 422 and r.json()["details"]["type"]


def test_board_priorities_and_types_are_the_boards_own(desk, boards):
    card = task(desk, priority_key="overdue-urgent")
    assert (card["priority_key"], card["priority"]) == ("overdue-urgent", "critical")
    r = desk.admin.patch(f"/v1/cards/{card['id']}",
                         json={"version": card["version"], "priority_key": "high"})
    assert r.status_code == 422 and r.json()["details"]["priority_key"]
    r = desk.admin.patch(f"/v1/cards/{card['id']}", json={
        "version": card["version"], "priority_key": "waits", "type": "bug",
        "labels": [{"name": "1C", "color": "#00897b"}, {"name": "report"}]})
    assert r.status_code == 200, r.text
    edited = r.json()
    assert (edited["priority"], edited["type"]) == ("low", "bug")
    # a board without a label list takes free labels (no id)
    assert edited["labels"] == [{"id": None, "name": "1C", "color": "#00897b"},
                                {"id": None, "name": "report", "color": "#607d8b"}]
    [updated] = desk.outbox("card.updated", card["id"])
    assert updated["payload"]["card"]["labels"] == ["1C", "report"]
    assert updated["payload"]["card"]["priority_key"] == "waits"
    r = desk.admin.patch(f"/v1/cards/{card['id']}",
                         json={"version": edited["version"], "type": "no-such-type"})
    assert r.status_code == 422 and r.json()["details"]["type"]
    r = desk.admin.patch(f"/v1/cards/{card['id']}",
                         json={"version": edited["version"], "labels": [{"name": "x",
                                                                         "color": "red"}]})
    assert r.status_code == 422
    # a client that edits only columns and lanes (the admin page) keeps the board's rules
    r = desk.admin.put("/v1/boards/it-ready", json={
        "name": "IT ready", "columns": COLUMNS, "lanes": [{"id": "main", "name": "Main"}]})
    assert r.status_code == 200
    kept = r.json()
    assert [p["id"] for p in kept["priorities"]] == ["waits", "normal", "overdue-urgent"]
    assert kept["accepts"]["requests"] is False and kept["parent_waits_for_children"] is True
    # the demo board keeps today's four
    demo = desk.admin.get("/v1/boards/support").json()
    assert demo.get("priorities") is None
    request = desk.request("question")
    assert request["priority_key"] == request["priority"]


def test_a_board_refuses_cards_its_rules_keep_out_and_takes_the_rest(desk, boards):
    request = desk.request("question")
    r = desk.admin.post(f"/v1/cards/{request['id']}/transfer",
                        json={"board_id": "it-ready", "version": request["version"]})
    assert r.status_code == 409
    assert r.json()["error"] == "transfer_refused" and "tasks only" in r.json()["message"]
    assert desk.card(request["id"])["board_id"] == "support"
    parent = task(desk, board_id="payroll", title="Onboard Anna")
    moved_task = task(desk, board_id="payroll", title="Laptop")
    link = desk.admin.post(f"/v1/cards/{parent['id']}/links", json={"child": moved_task["id"]})
    assert link.status_code == 201
    current = desk.card(moved_task["id"])
    r = desk.admin.post(f"/v1/cards/{moved_task['id']}/transfer",
                        json={"board_id": "admins", "version": current["version"]})
    assert r.status_code == 200, r.text
    moved = r.json()
    assert (moved["board_id"], moved["column_id"], moved["lane_id"]) == ("admins", "todo", "main")
    assert moved["number"] == moved_task["number"] and moved["parent_id"] == parent["id"]
    assert [h["to"] for h in moved["history"] if h["field"] == "board_id"] == ["admins"]
    [event] = desk.outbox("card.moved", moved_task["id"])
    assert event["payload"]["from_board_id"] == "payroll"
    assert event["payload"]["card"]["board_id"] == "admins"
    # an agent who is not on the target board cannot send cards there
    payroll_only = desk.client(agent(desk, ["payroll"])["token"])
    other = task(desk, board_id="payroll", title="Badge")
    r = payroll_only.post(f"/v1/cards/{other['id']}/transfer",
                          json={"board_id": "admins", "version": other["version"]})
    assert r.status_code == 422 and r.json()["details"]["board_id"]


def test_child_per_department_and_the_parent_waits_for_them(desk, boards):
    offer = task(desk, title="New hire accepted the offer")
    children = []
    for department in ("payroll", "admins"):
        r = desk.admin.post(f"/v1/cards/{offer['id']}/children",
                            json={"board_id": department, "title": f"Hire: {department}"})
        assert r.status_code == 201, r.text
        children.append(r.json())
    assert [c["board_id"] for c in children] == ["payroll", "admins"]
    assert all(c["parent_id"] == offer["id"] for c in children)
    parent = desk.card(offer["id"])
    assert parent["children"] == {"done": 0, "total": 2,
                                  "open": sorted(c["number"] for c in children)}
    r = desk.admin.post(f"/v1/cards/{offer['id']}/move",
                        json={"column_id": "done", "version": parent["version"]})
    assert r.status_code == 409 and r.json()["error"] == "children_open"
    for child in children:
        r = desk.admin.post(f"/v1/cards/{child['id']}/move",
                            json={"column_id": "done", "version": child["version"]})
        assert r.status_code == 200, r.text
    parent = desk.card(offer["id"])
    assert parent["children"]["done"] == 2
    r = desk.admin.post(f"/v1/cards/{offer['id']}/move",
                        json={"column_id": "done", "version": parent["version"]})
    assert r.status_code == 200 and r.json()["status_category"] == "done"
    # throughput per type: the offer is a "feature" of it-ready, each department's a "task"
    wait_until(lambda: desk.admin.get("/v1/stats/summary", params={"board": "it-ready"})
               .json()["closed_by_type"].get("feature", 0) >= 1)
    by_type = desk.admin.get("/v1/stats/flow").json()["throughput_by_type"]
    assert by_type.get("task", 0) >= 2 and by_type.get("feature", 0) >= 1
    # a board without the rule closes a parent freely
    free = task(desk, board_id="payroll", title="Free parent")
    desk.admin.post(f"/v1/cards/{free['id']}/children", json={"board_id": "admins",
                                                               "title": "child"})
    free = desk.card(free["id"])
    r = desk.admin.post(f"/v1/cards/{free['id']}/move",
                        json={"column_id": "done", "version": free["version"]})
    assert r.status_code == 200


def test_blockers_by_reason_or_card_show_on_the_card_and_the_bus(desk, boards):
    card = task(desk, title="Deploy")
    other = task(desk, title="Migrate DB")
    r = desk.admin.post(f"/v1/cards/{card['id']}/blockers", json={"reason": "waits for vendor"})
    assert r.status_code == 201 and r.json()["blocked"] is True
    r = desk.admin.post(f"/v1/cards/{card['id']}/blockers", json={"blocked_by": other["number"]})
    blockers = r.json()["blockers"]
    assert [(b["reason"], b["card_number"]) for b in blockers] == [
        ("waits for vendor", None), (None, other["number"])]
    assert desk.admin.post(f"/v1/cards/{card['id']}/blockers", json={}).status_code == 422
    assert desk.admin.post(f"/v1/cards/{card['id']}/blockers",
                           json={"blocked_by": card["number"]}).status_code == 422
    for b in blockers:
        r = desk.admin.delete(f"/v1/cards/{card['id']}/blockers/{b['id']}")
        assert r.status_code == 200
    assert r.json()["blocked"] is False
    states = [e["payload"]["card"]["blocked"] for e in desk.outbox("card.updated", card["id"])]
    assert states == [True, True, True, False]
    assert desk.admin.delete(
        f"/v1/cards/{card['id']}/blockers/{blockers[0]['id']}").status_code == 422
    # statistics count the time it was held up (the card's own board only holds this one)
    put_board(desk, "blocked-only")
    held = task(desk, board_id="blocked-only", title="Held")
    r = desk.admin.post(f"/v1/cards/{held['id']}/blockers", json={"reason": "legal review"})
    blocker = r.json()["blockers"][0]["id"]
    desk.admin.delete(f"/v1/cards/{held['id']}/blockers/{blocker}")

    def unblocked_figures():  # both events applied: blocked once, not any more
        figures = desk.admin.get("/v1/stats/summary", params={"board": "blocked-only"}).json()
        return figures["blocked"] if figures["blocked"]["count"] and not figures[
            "blocked"]["blocked_at_end"] else None
    figures = wait_until(unblocked_figures)
    # the span from blocking to unblocking, not the rest of the period (days by default)
    assert figures["count"] == 1 and 0 < figures["total_seconds"] < 3600


def test_assignee_mentioned_agents_and_followers_are_told(desk, boards):
    dev = agent(desk, ["it-ready"], email="dev@desk.example")
    mute = agent(desk, ["it-ready"])  # no contact: nothing to send
    outsider = agent(desk, ["payroll"], email="out@desk.example")
    card = task(desk, title="Fix the export")
    r = desk.admin.post(f"/v1/cards/{card['id']}/assign", json={"assignee_id": dev["id"]})
    assert r.status_code == 200
    [assigned] = desk.outbox("card.assigned", card["id"])
    assert assigned["payload"]["assignee"]["email"] == "dev@desk.example"
    assert assigned["payload"]["assignee"]["language"] == "ru"
    r = desk.admin.post(f"/v1/cards/{card['id']}/comments", json={
        "visibility": "internal",
        "text": f"@{dev['id']} please look; @{mute['id']} and @{outsider['id']} fyi, "
                "mail me at boss@desk.example"})
    assert r.status_code == 201
    told = desk.outbox("card.mentioned", card["id"])
    assert [(e["payload"]["agent"]["agent_id"], e["payload"]["reason"]) for e in told] == [
        (dev["id"], "mention")]
    assert "text" not in told[0]["payload"]  # the note stays in boards
    # participants: board members only; the assignee stays one
    r = desk.admin.put(f"/v1/cards/{card['id']}/participants",
                       json={"members": [dev["id"], outsider["id"]]})
    assert r.status_code == 422 and r.json()["details"]["members"]
    r = desk.admin.put(f"/v1/cards/{card['id']}/participants", json={"members": [mute["id"]]})
    assert r.status_code == 422
    r = desk.admin.put(f"/v1/cards/{card['id']}/participants",
                       json={"members": [dev["id"], mute["id"]]})
    assert r.status_code == 200 and r.json()["members"] == [dev["id"], mute["id"]]
    # a follower hears of a move made by someone else
    r = desk.client(dev["token"]).put(f"/v1/cards/{card['id']}/following",
                                      json={"following": True})
    assert r.status_code == 200 and r.json()["followers"] == [dev["id"]]
    current = desk.card(card["id"])
    desk.admin.post(f"/v1/cards/{card['id']}/move",
                    json={"column_id": "doing", "version": current["version"]})
    reasons = [e["payload"]["reason"] for e in desk.outbox("card.mentioned", card["id"])]
    assert reasons == ["mention", "followed_change"]


def test_a_request_gets_a_new_author_with_history(desk, boards):
    card = desk.request("question")
    old = card["requester"]["email"]
    r = desk.admin.put(f"/v1/cards/{card['id']}/requester", json={
        "requester": {"email": "real.author@acme.example", "name": "Real Author"},
        "version": card["version"]})
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["requester"]["email"] == "real.author@acme.example"
    assert [(h["from"], h["to"]) for h in changed["history"] if h["field"] == "requester"] == [
        (old, "real.author@acme.example")]
    [event] = [e for e in desk.outbox("card.updated", card["id"])
               if e["payload"]["changed"] == ["requester"]]
    assert event["payload"]["previous_requester"]["email"] == old
    found = desk.admin.get("/v1/cards", params={"q": "real.author@acme.example"}).json()
    assert [c["id"] for c in found["items"]] == [card["id"]]
    a_task = task(desk)
    r = desk.admin.put(f"/v1/cards/{a_task['id']}/requester", json={
        "requester": {"email": "x@acme.example"}, "version": a_task["version"]})
    assert r.status_code == 422


def test_a_note_names_agents_by_handle_or_name_in_any_case(desk, boards):
    anna = desk.admin.post("/v1/agents", json={
        "id": f"anna-{uuid.uuid4().hex[:6]}", "name": "Анна Петрова", "boards": ["it-ready"],
        "email": "anna@desk.example", "language": "ru"}).json()
    bob = desk.admin.post("/v1/agents", json={
        "id": f"bob-{uuid.uuid4().hex[:6]}", "name": "Bob Stone", "boards": ["it-ready"],
        "slack_webhook_url": "https://hooks.slack.example/services/T/B/x"}).json()
    outsider = desk.admin.post("/v1/agents", json={
        "id": f"out-{uuid.uuid4().hex[:6]}", "name": "Outside Olga", "boards": ["payroll"],
        "email": "olga@desk.example"}).json()
    card = task(desk, title="Names in notes")
    text = (f"@анна петрова и @BOB STONE, посмотрите; @{bob['id'].upper()} ещё раз; "
            "@Outside Olga is not on this board, @Никто is nobody, mail boss@desk.example")
    r = desk.admin.post(f"/v1/cards/{card['id']}/comments",
                        json={"visibility": "internal", "text": text})
    assert r.status_code == 201, r.text
    mentions = r.json()["mentions"]
    assert [(text[m["start"]:m["end"]], m["agent_id"]) for m in mentions] == [
        ("@анна петрова", anna["id"]), ("@BOB STONE", bob["id"]),
        (f"@{bob['id'].upper()}", bob["id"])]
    told = desk.outbox("card.mentioned", card["id"])
    assert [(e["payload"]["agent"]["agent_id"], e["payload"]["agent"].get("email"),
             e["payload"]["agent"].get("slack_webhook_url")) for e in told] == [
        (anna["id"], "anna@desk.example", None),
        (bob["id"], None, "https://hooks.slack.example/services/T/B/x")]
    assert outsider["id"] not in str(told)
    listed = desk.admin.get(f"/v1/cards/{card['id']}/comments").json()["items"]
    assert listed[-1]["mentions"] == mentions


def test_followers_hear_every_change_once_and_never_their_own(desk, boards):
    card = desk.request("question")
    lead = agent(desk, [card["board_id"]], email="lead@desk.example")
    dev = agent(desk, [card["board_id"]], email="dev2@desk.example")
    lead_api, dev_api = desk.client(lead["token"]), desk.client(dev["token"])
    for who in (lead_api, dev_api):
        assert who.put(f"/v1/cards/{card['id']}/following",
                       json={"following": True}).status_code == 200

    def changes(agent_id: str) -> list[str]:
        return [e["payload"]["change"] for e in desk.outbox("card.mentioned", card["id"])
                if e["payload"]["agent"]["agent_id"] == agent_id
                and e["payload"]["reason"] == "followed_change"]

    columns = {"in_progress": "in-progress", "done": "done"}  # the demo board's
    # the lead acts: the developer hears each change, the lead never of their own
    assert lead_api.post(f"/v1/cards/{card['id']}/comments", json={
        "visibility": "public", "text": "We are on it."}).status_code == 201
    assert lead_api.post(f"/v1/cards/{card['id']}/comments", json={
        "visibility": "internal", "text": "checking the logs"}).status_code == 201
    version = desk.card(card["id"])["version"]
    assert lead_api.patch(f"/v1/cards/{card['id']}", json={
        "version": version, "priority": "high"}).status_code == 200
    assert lead_api.post(f"/v1/cards/{card['id']}/assign",
                         json={"assignee_id": lead["id"]}).status_code == 200
    version = desk.card(card["id"])["version"]
    assert lead_api.post(f"/v1/cards/{card['id']}/move", json={
        "column_id": columns["in_progress"], "version": version}).status_code == 200
    version = desk.card(card["id"])["version"]
    assert lead_api.post(f"/v1/cards/{card['id']}/move", json={
        "column_id": columns["done"], "version": version}).status_code == 200
    version = desk.card(card["id"])["version"]
    assert lead_api.post(f"/v1/cards/{card['id']}/move", json={
        "column_id": columns["in_progress"], "version": version}).status_code == 200
    # the customer writes (the same reply twice: one comment, one message), then again
    def reply(text: str, reply_id: str | None = None) -> ReplyReceived:
        return ReplyReceived(reply_id=reply_id or f"r-{uuid.uuid4()}", card_id=card["id"],
                             channel="email", text=text, received_at=datetime.now(UTC),
                             author=Person(email=card["requester"]["email"], name="Customer"))
    first = reply("Thanks!")
    desk.publish(first, first, reply("One more thing"))
    wait_until(lambda: changes(dev["id"]).count("customer_reply") == 2)
    # a note that names the developer: the mention, not a second message as a follower
    assert lead_api.post(f"/v1/cards/{card['id']}/comments", json={
        "visibility": "internal", "text": f"@{dev['id']} have a look"}).status_code == 201
    assert changes(dev["id"]) == ["agent_reply", "internal_note", "priority", "assigned",
                                  "moved", "closed", "reopened", "customer_reply",
                                  "customer_reply"]
    assert changes(lead["id"]) == ["customer_reply", "customer_reply"]
    named = [e for e in desk.outbox("card.mentioned", card["id"])
             if e["payload"]["reason"] == "mention"]
    assert [e["payload"]["agent"]["agent_id"] for e in named] == [dev["id"]]
    comments = desk.admin.get(f"/v1/cards/{card['id']}/comments").json()["items"]
    assert sum(1 for c in comments if c["text"] == "Thanks!") == 1


def test_a_board_label_list_chosen_on_cards_and_renamed_everywhere(desk, boards):
    r = desk.admin.put("/v1/boards/payroll/labels", json={"labels": [
        {"name": "1C", "color": "#1565C0"}, {"name": "Срочно", "color": "#c62828"}]})
    assert r.status_code == 200, r.text
    labels = r.json()["labels"]
    assert labels[0] == {"id": "1c", "name": "1C", "color": "#1565c0"}
    urgent = labels[1]["id"]
    card = task(desk, board_id="payroll", title="Salary export")
    r = desk.admin.patch(f"/v1/cards/{card['id']}", json={
        "version": card["version"], "label_ids": ["1c", urgent]})
    assert r.status_code == 200, r.text
    assert [x["name"] for x in r.json()["labels"]] == ["1C", "Срочно"]
    # a label that is not on the board's list is refused, naming it
    r = desk.admin.patch(f"/v1/cards/{card['id']}", json={
        "version": r.json()["version"], "labels": [{"name": "vip"}]})
    assert r.status_code == 422 and "vip" in r.json()["details"]["labels"]
    # by name (any case) as the bulk action and older clients send them
    version = desk.card(card["id"])["version"]
    r = desk.admin.patch(f"/v1/cards/{card['id']}", json={
        "version": version, "labels": [{"name": "срочно"}]})
    assert r.status_code == 200 and [x["id"] for x in r.json()["labels"]] == [urgent]
    # renamed and recoloured on the board: every view of the card shows it
    r = desk.admin.put("/v1/boards/payroll/labels", json={"labels": [
        {"id": "1c", "name": "1C", "color": "#1565c0"},
        {"id": urgent, "name": "Горит", "color": "#ff0000"}]})
    assert r.status_code == 200
    shown = [{"id": urgent, "name": "Горит", "color": "#ff0000"}]
    assert desk.card(card["id"])["labels"] == shown
    listed = desk.admin.get("/v1/cards", params={"board": "payroll"}).json()["items"]
    assert next(c for c in listed if c["id"] == card["id"])["labels"] == shown
    assert desk.admin.get("/v1/boards/payroll/labels").json()["labels"][1]["name"] == "Горит"
    # the card's next event carries the new name too
    r = desk.admin.patch(f"/v1/cards/{card['id']}", json={
        "version": desk.card(card["id"])["version"], "title": "Salary export v2"})
    assert r.status_code == 200
    assert desk.outbox("card.updated", card["id"])[-1]["payload"]["card"]["labels"] == [
        "Горит"]
    # admins and the board's lead change the list, an agent does not; two labels of one
    # name are refused
    dev = agent(desk, ["payroll"])
    assert desk.client(dev["token"]).put("/v1/boards/payroll/labels",
                                         json={"labels": []}).status_code == 403
    lead = desk.new_agent(["payroll"], role="lead", name="Lead")
    current = desk.admin.get("/v1/boards/payroll/labels").json()["labels"]
    assert desk.client(lead["token"]).put("/v1/boards/payroll/labels",
                                          json={"labels": current}).status_code == 200
    assert desk.client(lead["token"]).put("/v1/boards/admins/fields",
                                          json={"fields": []}).status_code in (403, 404)
    r = desk.admin.put("/v1/boards/payroll/labels", json={"labels": [
        {"name": "A"}, {"name": "a"}]})
    assert r.status_code == 422


def test_typed_custom_fields_are_checked_by_type_with_an_error_per_field(desk, boards):
    r = desk.admin.put("/v1/boards/admins/fields", json={"fields": [
        {"key": "hours", "label": {"en": "Hours", "ru": "Часы"}, "type": "number"},
        {"key": "start", "label": {"en": "Start"}, "type": "date", "required": True},
        {"key": "system", "label": {"en": "System"}, "type": "select",
         "options": [{"value": "1c", "label": {"en": "1C"}},
                     {"value": "sap", "label": {"en": "SAP"}}]},
        {"key": "laptop", "label": {"en": "Laptop"}, "type": "checkbox"},
        {"key": "note", "label": {"en": "Note"}}]})
    assert r.status_code == 200, r.text
    assert [f["type"] for f in desk.admin.get("/v1/boards/admins/fields").json()["fields"]] == [
        "number", "date", "select", "checkbox", "text"]
    r = desk.admin.put("/v1/boards/admins/fields", json={"fields": [
        {"key": "system", "label": {"en": "System"}, "type": "select"}]})
    assert r.status_code == 422 and "system" in r.json()["details"]["fields"]
    r = desk.admin.put("/v1/boards/admins/fields", json={"fields": [
        {"key": "x", "label": {"en": "X"}, "card_types": ["nope"]}]})
    assert r.status_code == 422 and r.json()["details"]["fields"]["x"]
    # a task is made without its required date (filled in on the card later)
    card = task(desk, board_id="admins", title="New hire laptop", fields={"hours": "2,5"})
    assert card["fields"] == {"hours": 2.5}
    r = desk.admin.patch(f"/v1/cards/{card['id']}", json={"version": card["version"], "fields": {
        "hours": "lots", "start": "31.12.2026", "system": "oracle", "laptop": "maybe",
        "colour": "red"}})
    assert r.status_code == 422
    assert r.json()["details"]["fields"] == {
        "hours": "must be a number", "start": "must be a date (YYYY-MM-DD)",
        "system": "must be one of: 1c, sap", "laptop": "must be yes or no",
        "colour": "is not a field of this board"}
    r = desk.admin.patch(f"/v1/cards/{card['id']}", json={"version": card["version"], "fields": {
        "hours": "8", "system": "sap"}})
    assert r.status_code == 422 and r.json()["details"]["fields"] == {"start": "is required"}
    r = desk.admin.patch(f"/v1/cards/{card['id']}", json={"version": card["version"], "fields": {
        "hours": "8", "start": "2026-12-31", "system": "sap", "laptop": True}})
    assert r.status_code == 200, r.text
    assert r.json()["fields"] == {"hours": 8, "start": "2026-12-31", "system": "sap",
                                  "laptop": True}
    # a board without typed fields takes free keys as before
    other = task(desk, board_id="payroll", title="Free fields", fields={"anything": "goes"})
    assert other["fields"] == {"anything": "goes"}


def test_statistics_count_blocked_time_and_closed_work_per_type(desk, boards):
    put_board(desk, "stats-dept", card_types=[
        {"id": "feature", "name": {"en": "Feature"}, "color": "#6a1b9a"},
        {"id": "bug", "name": {"en": "Bug"}, "color": "#c62828"}])
    feature = task(desk, board_id="stats-dept", type="feature", title="Export")
    bug = task(desk, board_id="stats-dept", type="bug", title="Crash")
    r = desk.admin.post(f"/v1/cards/{bug['id']}/blockers", json={"reason": "vendor"})
    assert r.status_code == 201, r.text
    [blocker] = r.json()["blockers"]
    r = desk.admin.delete(f"/v1/cards/{bug['id']}/blockers/{blocker['id']}")
    assert r.status_code == 200, r.text
    for card in (feature, desk.card(bug["id"])):
        r = desk.admin.post(f"/v1/cards/{card['id']}/move",
                            json={"column_id": "done", "version": card["version"]})
        assert r.status_code == 200, r.text

    def summary() -> dict | None:
        found = desk.admin.get("/v1/stats/summary", params={"board": "stats-dept"}).json()
        return found if sum(found["closed_by_type"].values()) == 2 else None
    figures = wait_until(summary)
    assert figures["closed_by_type"] == {"bug": 1, "feature": 1}
    assert figures["blocked"]["count"] == 1 and figures["blocked"]["blocked_at_end"] == 0
    assert figures["blocked"]["total_seconds"] > 0
