"""Boards' agent API and bus consumers against a real boards process, broker and store."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from desk_contracts.events import (
    Person,
    ReplyReceived,
    RequestReceived,
    RequestRated,
    SlaAutoClose,
    SlaBreached,
    SlaMet,
    SlaWarning,
)

from tests.support.stack import wait_until

pytestmark = pytest.mark.slow

DEV_BOARD = {
    "name": "Development", "space": "Engineering",
    "columns": [{"id": "backlog", "name": "Backlog", "category": "queued"},
                {"id": "doing", "name": "Doing", "category": "in_progress", "wip_limit": 1},
                {"id": "shipped", "name": "Shipped", "category": "done"}],
    "lanes": [{"id": "core", "name": "Core"}, {"id": "web", "name": "Web"}],
}


def service(id_: str, board: str = "support", column: str = "queue", lane: str = "l1",
            **extra) -> dict:
    return {"id": id_, "name": {"en": id_.title()}, "target": {
        "board_id": board, "column_id": column, "lane_id": lane}} | extra


@pytest.fixture(scope="module")
def dev_board(desk):
    r = desk.admin.put("/v1/boards/dev", json=DEV_BOARD)
    assert r.status_code == 200, r.text
    desk.put_service(service("bug-report", board="dev", column="backlog", lane="web"))
    return r.json()


# --- routing ---------------------------------------------------------------------------------

def test_each_service_routes_to_its_board_column_and_lane(desk, dev_board):
    problem = desk.request("problem", fields={"system": "mail"})
    legal = desk.request("legal-document", fields={"document": "nda", "counterparty": "ACME"})
    bug = desk.request("bug-report")
    assert (problem["board_id"], problem["column_id"], problem["lane_id"]) == (
        "support", "queue", "l1")
    assert (legal["board_id"], legal["column_id"], legal["lane_id"]) == ("support", "queue",
                                                                         "legal")
    assert (bug["board_id"], bug["column_id"], bug["lane_id"]) == ("dev", "backlog", "web")
    assert bug["status_category"] == "queued"
    assert problem["number"] != legal["number"] and problem["number"].startswith("SD-")
    created = desk.outbox("card.created", bug["id"])
    assert created[0]["payload"]["card"]["lane_id"] == "web"
    # the customer's text is the card's first public comment, by the customer
    [first] = desk.admin.get(f"/v1/cards/{bug['number']}/comments").json()["items"]
    assert first["author"]["kind"] == "customer" and first["text"] == "Please help."


def test_a_request_published_again_under_a_new_event_id_stays_one_card(desk):
    # a first delivery writes the card without looking for one (its request_id is unique
    # in the store): the copy's first attempt fails on that key, its redelivery finds the
    # card — one card, one card.created, and the copy handled (its processed record), not
    # dead-lettered
    card = desk.request(subject="Sent twice")
    again = {"request_id": card["request_id"], "channel": "email", "service_id": "question",
             "requester": {"email": "twice@acme.example", "name": "Customer"},
             "subject": "Sent twice", "text": "Please help.", "received_at": datetime.now(UTC)}
    [event_id] = desk.publish(RequestReceived(**again))
    wait_until(lambda: desk.db["processed_events"].find_one(
        {"_id": f"boards.requests:{event_id}"}), timeout=30)
    cards = desk.admin.get("/v1/cards", params={"request_id": card["request_id"]}).json()
    assert [c["number"] for c in cards["items"]] == [card["number"]]
    assert len(desk.outbox("card.created", card_id=card["id"])) == 1


def test_catalog_change_is_published_and_bad_target_refused(desk):
    desk.put_service(service("access-vpn", lane="l2", default_priority="high"))
    changed = [e for e in desk.outbox("catalog.service_changed")
               if e["payload"]["service"]["id"] == "access-vpn"]
    assert changed and changed[-1]["payload"]["service"]["target"]["lane_id"] == "l2"
    card = desk.request("access-vpn")
    assert (card["lane_id"], card["priority"]) == ("l2", "high")
    r = desk.admin.put("/v1/services/nowhere", json=service("nowhere", lane="no-such-lane"))
    assert r.status_code == 422 and "no lane" in r.json()["message"]
    assert "nowhere" not in {s["service"]["id"] for s in desk.admin.get(
        "/v1/services").json()["items"]}


# --- assignment rules ------------------------------------------------------------------------

def test_fixed_round_robin_and_least_loaded_assignment(desk):
    a, b = (desk.new_agent(["support"])["id"] for _ in range(2))
    desk.put_service(service("fixed-svc", assignment={"kind": "fixed", "agents": [b, a]}))
    desk.put_service(service("rr-svc", assignment={"kind": "round_robin", "agents": [a, b]}))
    desk.put_service(service("ll-svc", assignment={"kind": "least_loaded", "agents": [a, b]}))

    assert [desk.request("fixed-svc")["assignee_id"] for _ in range(2)] == [b, b]
    # b now holds 2 open cards, a none
    assert [desk.request("rr-svc")["assignee_id"] for _ in range(3)] == [a, b, a]
    # a holds 2, b holds 3: least loaded picks a; level at 3 the first listed (a); then b
    assert [desk.request("ll-svc")["assignee_id"] for _ in range(3)] == [a, a, b]
    mine = desk.admin.get("/v1/cards", params={"assignee": a})
    assert len(mine.json()["items"]) == 4


def test_least_loaded_spreads_a_burst_of_requests(desk):
    """Requests arriving together share store transactions; each still counts the cards
    given out before it in the same transaction."""
    a, b = (desk.new_agent(["support"])["id"] for _ in range(2))
    desk.put_service(service("ll-burst", assignment={"kind": "least_loaded",
                                                     "agents": [a, b]}))
    ids = [f"t-{uuid.uuid4()}" for _ in range(10)]
    desk.publish(*(RequestReceived(
        request_id=i, channel="email", service_id="ll-burst",
        requester=Person(email=f"c.{uuid.uuid4().hex[:6]}@acme.example", name="Customer"),
        subject="Printer on fire", text="Please help.", received_at=datetime.now(UTC))
        for i in ids))
    assignees = [desk.card_of(i)["assignee_id"] for i in ids]
    # two transactions at once may not see each other's cards: nearly even, never lopsided
    assert abs(assignees.count(a) - assignees.count(b)) <= 2, assignees


# --- public / internal boundary --------------------------------------------------------------

def test_internal_note_never_leaves_boards(desk):
    card = desk.request("problem", fields={"system": "crm"})
    secret = f"internal-secret-{uuid.uuid4().hex}"
    desk.drain("notify.events"), desk.drain("portal.cards")  # start from empty queues
    r = desk.admin.post(f"/v1/cards/{card['id']}/comments",
                        json={"text": f"Customer is rude. {secret}", "visibility": "internal"})
    assert r.status_code == 201 and r.json()["visibility"] == "internal"
    r = desk.admin.post(f"/v1/cards/{card['id']}/comments",
                        json={"text": "We are on it.", "visibility": "public"})
    assert r.status_code == 201
    public_id = r.json()["id"]

    def delivered():
        return [json.loads(b) for b in desk.drain("notify.events") + desk.drain("portal.cards")]
    seen: list[dict] = []
    wait_until(lambda: seen.extend(delivered()) or
               {e["payload"].get("comment_id") for e in seen} >= {public_id}, timeout=20)
    comment_events = [e for e in seen if e["type"] == "comment.added"]
    visibilities = {e["payload"]["visibility"] for e in comment_events}
    assert visibilities == {"internal", "public"}
    for event in seen:
        assert secret not in json.dumps(event)
    internal = next(e for e in comment_events if e["payload"]["visibility"] == "internal")
    assert internal["payload"]["text"] is None
    # nothing boards ever committed to the bus carries it either
    assert secret not in json.dumps(desk.outbox(card_id=card["id"]), default=str)
    # agents see it in the card's comments, with its visibility; the history does not quote it
    texts = {c["visibility"]: c["text"] for c in desk.admin.get(
        f"/v1/cards/{card['id']}/comments").json()["items"] if c["author"]["kind"] == "agent"}
    assert secret in texts["internal"]
    assert secret not in json.dumps(desk.card(card["id"])["history"])


def test_canned_response_fills_placeholders(desk):
    card = desk.request("question", requester={"email": "olga@acme.example", "name": "Olga"})
    r = desk.admin.post("/v1/canned-responses", json={
        "title": "Got it", "text": "Hello {customer_name}, your request {number} is in work."})
    assert r.status_code == 201
    r = desk.admin.post(f"/v1/cards/{card['number']}/comments", json={
        "visibility": "public", "canned_response_id": r.json()["id"]})
    assert r.json()["text"] == f"Hello Olga, your request {card['number']} is in work."
    listed = desk.admin.get("/v1/canned-responses", params={"service": "question"}).json()
    assert "Got it" in {c["title"] for c in listed["items"]}


# --- moves and concurrency -------------------------------------------------------------------

def test_concurrent_moves_one_wins_the_other_gets_409(desk):
    card = desk.request("question")
    version = card["version"]
    barrier = threading.Barrier(2)
    results: dict[str, int] = {}

    def move(column: str) -> None:
        barrier.wait()
        r = desk.admin.post(f"/v1/cards/{card['id']}/move",
                            json={"column_id": column, "version": version})
        results[column] = r.status_code

    threads = [threading.Thread(target=move, args=(c,)) for c in ("in-progress", "pause")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [200, 409], results
    winner = next(c for c, s in results.items() if s == 200)
    after = desk.card(card["id"])
    assert after["column_id"] == winner and after["version"] == version + 1
    assert [h["to"] for h in after["history"] if h["field"] == "column_id"] == [winner]
    assert len(desk.outbox("card.moved", card["id"])) == 1
    # the loser reloads and moves with the fresh version
    r = desk.admin.post(f"/v1/cards/{card['id']}/move",
                        json={"column_id": "done", "version": after["version"]})
    assert r.status_code == 200 and r.json()["status_category"] == "done"


def test_stale_patch_gets_409_and_changes_nothing(desk):
    card = desk.request("question")
    r = desk.admin.patch(f"/v1/cards/{card['id']}", json={
        "version": card["version"], "title": "Printer is smoking", "priority": "critical",
        "tags": ["hardware"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["title"], body["priority"], body["tags"]) == ("Printer is smoking", "critical",
                                                               ["hardware"])
    hist = {h["field"]: (h["from"], h["to"]) for h in body["history"]}
    assert hist["priority"] == ("medium", "critical")
    updated = desk.outbox("card.updated", card["id"])[-1]["payload"]
    assert set(updated["changed"]) == {"title", "priority", "tags"}
    r = desk.admin.patch(f"/v1/cards/{card['id']}", json={"version": card["version"],
                                                          "title": "Overwritten"})
    assert r.status_code == 409 and r.json()["error"] == "stale_version"
    assert desk.card(card["id"])["title"] == "Printer is smoking"
    # search finds it by the new title words, not the old ones
    found = desk.admin.get("/v1/cards", params={"q": "smoking printer"}).json()["items"]
    assert card["id"] in {c["id"] for c in found}


def test_board_reshape_cannot_strand_cards(desk, dev_board):
    card = desk.request("bug-report")  # in dev/backlog/web
    no_web = DEV_BOARD | {"lanes": [{"id": "core", "name": "Core"}]}
    assert desk.admin.put("/v1/boards/dev", json=no_web).status_code == 409
    recategorised = DEV_BOARD | {"columns": [
        {"id": "backlog", "name": "Backlog", "category": "done"}, *DEV_BOARD["columns"][1:]]}
    assert desk.admin.put("/v1/boards/dev", json=recategorised).status_code == 409
    renamed = DEV_BOARD | {"name": "Dev team"}
    r = desk.admin.put("/v1/boards/dev", json=renamed)
    assert r.status_code == 200 and r.json()["name"] == "Dev team"
    assert desk.card(card["id"])["lane_id"] == "web"


def test_wip_limit_refuses_a_move_into_a_full_column(desk, dev_board):
    first, second = desk.request("bug-report"), desk.request("bug-report")
    r = desk.admin.post(f"/v1/cards/{first['id']}/move",
                        json={"column_id": "doing", "version": first["version"]})
    assert r.status_code == 200
    r = desk.admin.post(f"/v1/cards/{second['id']}/move",
                        json={"column_id": "doing", "version": second["version"]})
    assert r.status_code == 409 and r.json()["error"] == "wip_limit"


# --- links and follow-ups --------------------------------------------------------------------

def test_follow_up_of_a_closed_request_becomes_a_linked_child(desk):
    closed = desk.request("question")
    r = desk.admin.post(f"/v1/cards/{closed['id']}/move",
                        json={"column_id": "done", "version": closed["version"]})
    assert r.status_code == 200
    follow = desk.request("question", follow_up_of=closed["id"], subject="Still broken")
    assert follow["parent_id"] == closed["id"]
    assert follow["links"][0] | {} == {"kind": "parent", "card_id": closed["id"],
                                       "number": closed["number"], "board_id": "support",
                                       "title": closed["title"]}
    parent = desk.card(closed["id"])
    assert {"kind": "child", "card_id": follow["id"]}.items() <= parent["links"][0].items()
    [linked] = desk.outbox("card.linked", follow["id"])
    assert linked["payload"] == {"parent_id": closed["id"], "child_id": follow["id"],
                                 "parent_number": closed["number"],
                                 "child_number": follow["number"]}
    assert desk.outbox("card.created", follow["id"])[0]["payload"]["follow_up_of"] == closed["id"]


def test_link_across_boards_and_no_cycles(desk, dev_board):
    support_card, dev_card = desk.request("problem", fields={"system": "mail"}), \
        desk.request("bug-report")
    r = desk.admin.post(f"/v1/cards/{support_card['number']}/links",
                        json={"child": dev_card["number"]})
    assert r.status_code == 201, r.text
    assert r.json()["links"][0]["board_id"] == "dev"
    assert desk.card(dev_card["id"])["parent_id"] == support_card["id"]
    r = desk.admin.post(f"/v1/cards/{dev_card['id']}/links", json={"child": support_card["id"]})
    assert r.status_code == 409


# --- roles and visibility --------------------------------------------------------------------

def test_agent_of_another_board_gets_404(desk, dev_board):
    support_card = desk.request("question")
    dev_card = desk.request("bug-report")
    dev_agent = desk.new_agent(["dev"])
    with desk.client(dev_agent["token"]) as c:
        assert c.get(f"/v1/cards/{support_card['id']}").status_code == 404
        assert c.get(f"/v1/cards/{support_card['number']}").status_code == 404
        assert c.get(f"/v1/cards/{dev_card['id']}").status_code == 200
        for method, path, body in [
            ("post", f"/v1/cards/{support_card['id']}/move",
             {"column_id": "done", "version": support_card["version"]}),
            ("post", f"/v1/cards/{support_card['id']}/comments",
             {"text": "hi", "visibility": "public"}),
            ("patch", f"/v1/cards/{support_card['id']}", {"version": 1, "title": "x"}),
            ("post", f"/v1/cards/{support_card['id']}/assign", {"assignee_id": None}),
            ("post", f"/v1/cards/{support_card['id']}/read", None),
            ("post", f"/v1/cards/{dev_card['id']}/links", {"child": support_card["id"]}),
            ("get", f"/v1/cards/{support_card['id']}/comments", None),
        ]:
            r = c.request(method.upper(), path, json=body)
            assert r.status_code == 404, (path, r.status_code, r.text)
        listed = c.get("/v1/cards", params={"limit": 200}).json()["items"]
        assert listed and {x["board_id"] for x in listed} == {"dev"}
        assert c.get("/v1/cards", params={"board": "support"}).status_code == 404
        assert c.get("/v1/cards", params={"request_id": support_card["request_id"]}
                     ).json()["items"] == []
        # agents do not configure the desk
        assert c.put("/v1/services/sneaky", json=service("sneaky")).status_code == 403
        assert c.put("/v1/boards/dev", json=DEV_BOARD).status_code == 403
        assert c.post("/v1/agents", json={"name": "x", "role": "admin"}).status_code == 403
        assert c.get("/v1/agents").status_code == 403
        # and cannot file a request on a board they are not on
        r = c.post("/v1/cards", json={"service_id": "question", "title": "x", "text": "y",
                                      "requester": {"email": "a@acme.example"}})
        assert r.status_code == 422
    assert desk.card(support_card["id"])["version"] == support_card["version"]


def test_agent_cannot_move_a_card_to_a_service_of_a_board_they_are_not_on(desk, dev_board):
    """Giving a card another service is refused exactly where filing one there would be."""
    card = desk.request("question")
    support_agent = desk.new_agent(["support"])
    with desk.client(support_agent["token"]) as c:
        r = c.patch(f"/v1/cards/{card['number']}",
                    json={"version": card["version"], "service_id": "bug-report"})
        assert r.status_code == 422, r.text
        assert "on your boards" in r.json()["message"]
        # the same answer as for a service that does not exist
        r = c.patch(f"/v1/cards/{card['number']}",
                    json={"version": card["version"], "service_id": "no-such-service"})
        assert r.status_code == 422 and "on your boards" in r.json()["message"]
        ok = c.patch(f"/v1/cards/{card['number']}",
                     json={"version": card["version"], "service_id": "problem"})
        assert ok.status_code == 200 and ok.json()["service_id"] == "problem"
    assert desk.card(card["id"])["service_id"] == "problem"
    both = desk.new_agent(["support", "dev"])
    with desk.client(both["token"]) as c:
        current = desk.card(card["id"])
        r = c.patch(f"/v1/cards/{card['number']}",
                    json={"version": current["version"], "service_id": "bug-report"})
        assert r.status_code == 200 and r.json()["service_id"] == "bug-report"


def test_an_agent_name_with_a_line_break_is_refused(desk):
    """An agent's name signs public comments that travel to customers' mail."""
    r = desk.admin.post("/v1/agents", json={"name": "Eve\r\nBcc: all@acme.example",
                                            "boards": ["support"]})
    assert r.status_code == 422
    agent = desk.new_agent(["support"])
    r = desk.admin.patch(f"/v1/agents/{agent['id']}", json={"name": "Eve\nX"})
    assert r.status_code == 422
    assert desk.admin.patch(f"/v1/agents/{agent['id']}", json={"name": "Eve Example"}
                            ).status_code == 200


def test_membership_changes_and_deactivation_take_effect(desk, dev_board):
    card = desk.request("question")
    agent = desk.new_agent(["dev"])
    with desk.client(agent["token"]) as c:
        assert c.get(f"/v1/cards/{card['id']}").status_code == 404
        r = desk.admin.patch(f"/v1/agents/{agent['id']}", json={"boards": ["dev", "support"]})
        assert r.status_code == 200 and r.json()["boards"] == ["dev", "support"]
        assert c.get(f"/v1/cards/{card['id']}").status_code == 200
        assert agent["id"] in desk.admin.get("/v1/boards/support").json()["members"]
        assert c.patch(f"/v1/agents/{agent['id']}", json={"role": "admin"}).status_code == 403
        r = desk.admin.patch(f"/v1/agents/{agent['id']}", json={"active": False})
        assert r.status_code == 200
        assert c.get(f"/v1/cards/{card['id']}").status_code == 401


def test_tokens_are_required_and_checked(desk):
    assert desk.client("nonsense").get("/v1/cards").status_code == 401
    import httpx
    assert httpx.get(f"{desk.url}/v1/cards").status_code == 401
    agent = desk.new_agent(["support"])
    stored = desk.db["agents"].find_one({"_id": agent["id"]})
    assert agent["token"] not in json.dumps(stored, default=str)  # only the hash is kept


# --- lists -----------------------------------------------------------------------------------

def test_list_filters_and_cursor_pagination(desk):
    agent = desk.new_agent(["support"])
    tag = uuid.uuid4().hex[:8]
    made = [desk.request("problem", fields={"system": "mail"}, subject=f"Zebra {tag} {i}",
                         priority="high" if i % 2 else "low") for i in range(5)]
    for card in made[:2]:
        r = desk.admin.post(f"/v1/cards/{card['id']}/assign", json={"assignee_id": agent["id"]})
        assert r.status_code == 200 and r.json()["assignee_id"] == agent["id"]
    with desk.client(agent["token"]) as c:
        mine = c.get("/v1/cards", params={"assignee": "me"}).json()["items"]
        assert {x["id"] for x in mine} == {made[0]["id"], made[1]["id"]}
        high = c.get("/v1/cards", params={"q": f"zebra {tag}", "priority": "high"}).json()
        assert {x["id"] for x in high["items"]} == {made[1]["id"], made[3]["id"]}
        lane = c.get("/v1/cards", params={"q": tag, "lane": "l2"}).json()["items"]
        assert lane == []
        by_number = c.get("/v1/cards", params={"q": made[4]["number"].lower()}).json()["items"]
        assert [x["id"] for x in by_number] == [made[4]["id"]]
        pages, cursor = [], None
        while True:
            params = {"q": tag, "board": "support", "service": "problem", "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = c.get("/v1/cards", params=params).json()
            pages.append([x["id"] for x in page["items"]])
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert [len(p) for p in pages] == [2, 2, 1]
        assert [i for p in pages for i in p] == [x["id"] for x in reversed(made)]
        assert c.get("/v1/cards", params={"cursor": "garbage!"}).status_code == 422


# --- manual cards, replies, ratings ----------------------------------------------------------

def test_agent_files_a_request_for_a_customer_who_phoned(desk):
    agent = desk.new_agent(["support"], name="Ivan")
    with desk.client(agent["token"]) as c:
        r = c.post("/v1/cards", json={
            "service_id": "problem", "title": "CRM is down", "text": "Called at 10:05",
            "requester": {"email": "boss@acme.example", "name": "Boss"},
            "fields": {"system": "crm"}, "priority": "critical"})
        assert r.status_code == 201, r.text
        card = r.json()
        assert (card["channel"], card["priority"], card["created_by"]) == (
            "agent", "critical", agent["id"])
        [first] = c.get(f"/v1/cards/{card['id']}/comments").json()["items"]
        assert first["author"] == {"kind": "customer", "id": "boss@acme.example",
                                   "name": "Boss"}
        assert desk.outbox("card.created", card["id"])[0]["payload"]["card"]["requester"][
            "email"] == "boss@acme.example"
        r = c.post("/v1/cards", json={"service_id": "problem", "title": "x", "text": "y",
                                      "requester": {"email": "a@acme.example"},
                                      "fields": {"system": "other"}})
        assert r.status_code == 422
        assert r.json()["details"]["fields"] == {"system_other": "is required"}


def test_manual_card_respects_the_services_access_rule(desk):
    desk.put_service(service("heads-only", access={"addresses": ["ceo@acme.example"],
                                                    "domains": ["board.acme.example"]}))
    body = {"service_id": "heads-only", "title": "Budget", "text": "Need numbers"}
    for outsider in ("intern@acme.example", "ceo@acme.example.evil.io", "x@evilboard.acme.example"):
        r = desk.admin.post("/v1/cards", json=body | {"requester": {"email": outsider}})
        assert r.status_code == 422, outsider
    for insider in ("ceo@acme.example", "cfo@board.acme.example"):
        r = desk.admin.post("/v1/cards", json=body | {"requester": {"email": insider}})
        assert r.status_code == 201, (insider, r.text)


def test_public_comment_attachments_travel_internal_ones_do_not(desk):
    card = desk.request("question")
    ref = {"id": "att-1", "filename": "screen.png", "content_type": "image/png", "size": 10,
           "sha256": "a" * 64}
    for visibility in ("public", "internal"):
        r = desk.admin.post(f"/v1/cards/{card['id']}/comments", json={
            "text": f"{visibility} with file", "visibility": visibility, "attachments": [ref]})
        assert r.status_code == 201 and r.json()["attachments"][0]["id"] == "att-1"
    events = {e["payload"]["visibility"]: e["payload"] for e in desk.outbox(
        "comment.added", card["id"]) if e["payload"]["author"]["kind"] == "agent"}
    assert events["public"]["attachments"][0]["sha256"] == "a" * 64
    assert events["internal"]["attachments"] == [] and events["internal"]["text"] is None


def test_customer_reply_sets_unread_until_marked_read(desk):
    card = desk.request("question")
    desk.publish(ReplyReceived(reply_id=f"r-{uuid.uuid4()}", card_id=card["id"],
                               channel="email", author={"email": "c@acme.example"},
                               text="Any news?", received_at=datetime.now(UTC)))
    wait_until(lambda: desk.card(card["id"])["unread_customer_reply"])
    r = desk.admin.post(f"/v1/cards/{card['id']}/read")
    assert r.status_code == 200 and r.json()["unread_customer_reply"] is False
    assert "unread_customer_reply" in desk.outbox("card.updated", card["id"])[-1]["payload"][
        "changed"]


def test_rating_is_kept_on_the_card(desk):
    card = desk.request("question")
    desk.publish(RequestRated(card_id=card["id"], rating=4, comment="Quick, thanks",
                              rated_at=datetime.now(UTC), rated_by="c@acme.example"))
    rated = wait_until(lambda: desk.card(card["id"])["rating"])
    assert (rated["score"], rated["comment"]) == (4, "Quick, thanks")
    hist = desk.card(card["id"])["history"]
    assert any(h["field"] == "rating" and h["to"] == 4 for h in hist)


# --- SLA signals and auto-close --------------------------------------------------------------

def test_sla_signals_show_on_cards_and_filter_lists(desk):
    card = desk.request("question")
    now = datetime.now(UTC)
    sig = {"card_id": card["id"], "number": card["number"], "policy": "consultation",
           "deadline": now + timedelta(hours=1)}
    desk.publish(SlaWarning(target="first_response", at=now, **sig))
    wait_until(lambda: desk.card(card["id"])["sla_state"] == "warning")
    warned = desk.admin.get("/v1/cards", params={"sla": "warning"}).json()["items"]
    assert card["id"] in {c["id"] for c in warned}
    desk.publish(SlaBreached(target="first_response", at=now + timedelta(minutes=5), **sig),
                 # an older warning arriving late must not hide the breach
                 SlaWarning(target="first_response", at=now - timedelta(minutes=1), **sig),
                 SlaMet(target="resolution", at=now + timedelta(minutes=6), **sig))
    got = wait_until(lambda: (c := desk.card(card["id"]))["sla"].get("resolution") and c)
    assert got["sla"]["first_response"]["state"] == "breached"
    assert got["sla_state"] == "breached"
    breached = desk.admin.get("/v1/cards", params={"sla": "breached"}).json()["items"]
    assert card["id"] in {c["id"] for c in breached}
    assert card["id"] not in {c["id"] for c in desk.admin.get(
        "/v1/cards", params={"sla": "warning"}).json()["items"]}


def test_auto_close_moves_a_waiting_card_to_done_as_system(desk):
    card = desk.request("question")
    r = desk.admin.post(f"/v1/cards/{card['id']}/move",
                        json={"column_id": "clarification", "version": card["version"]})
    assert r.status_code == 200
    open_card = desk.request("question")  # not waiting for the customer: stays open
    for c in (card, open_card):
        desk.publish(SlaAutoClose(card_id=c["id"], number=c["number"],
                                  waiting_since=datetime.now(UTC) - timedelta(days=8)))
    closed = wait_until(lambda: (c := desk.card(card["id"]))["column_id"] == "done" and c)
    assert closed["status_category"] == "done"
    moved = desk.outbox("card.moved", card["id"])[-1]["payload"]
    assert (moved["moved_by"], moved["from_column_id"]) == ("system", "clarification")
    assert desk.card(open_card["id"])["column_id"] == "queue"


# --- documentation ---------------------------------------------------------------------------

def test_openapi_describes_the_agents_api(desk):
    doc = desk.admin.get("/openapi.json").json()
    paths = doc["paths"]
    for path in ("/v1/cards", "/v1/cards/{card_ref}/move", "/v1/cards/{card_ref}/comments",
                 "/v1/services/{service_id}", "/v1/boards/{board_id}", "/v1/agents"):
        assert path in paths
    move = paths["/v1/cards/{card_ref}/move"]["post"]
    assert move["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "MoveCard")
    assert "CardPage" in json.dumps(paths["/v1/cards"]["get"]["responses"]["200"])
