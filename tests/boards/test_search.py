"""Full-text card search, bulk actions and saved views against a real boards process."""

from __future__ import annotations

import uuid

import pytest

from tests.support.stack import wait_until

pytestmark = pytest.mark.slow

OPS_BOARD = {
    "name": "Operations", "space": "IT",
    "columns": [{"id": "inbox", "name": "Inbox", "category": "queued"},
                {"id": "work", "name": "Work", "category": "in_progress", "wip_limit": 2},
                {"id": "wait", "name": "Waiting", "category": "paused"},
                {"id": "closed", "name": "Closed", "category": "done"}],
    "lanes": [{"id": "main", "name": "Main"}, {"id": "vip", "name": "VIP"}],
}


@pytest.fixture(scope="module")
def ops(desk):
    r = desk.admin.put("/v1/boards/ops", json=OPS_BOARD)
    assert r.status_code == 200, r.text
    desk.put_service({"id": "ops-help", "name": {"en": "Ops help", "ru": "Помощь"},
                      "group": {"en": "Infrastructure", "ru": "Инфраструктура"},
                      "target": {"board_id": "ops", "column_id": "inbox", "lane_id": "main"}})
    return r.json()


def new_card(desk, title: str, text: str = "Please help.", **extra) -> dict:
    body = {"service_id": "ops-help", "title": title, "text": text,
            "requester": {"email": f"c.{uuid.uuid4().hex[:6]}@acme.example",
                          "name": "Customer"}} | extra
    r = desk.admin.post("/v1/cards", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def search(client, **params) -> dict:
    r = client.get("/v1/search/cards", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def numbers(page: dict) -> list[str]:
    return [c["number"] for c in page["items"]]


def test_search_finds_every_place_in_ru_and_en_and_says_where(desk, ops):
    printer = new_card(desk, "Принтеры на третьем этаже",
                       text="Бумага застревает каждое утро",
                       requester={"email": "olga@north.example", "name": "Ольга Смирнова",
                                  "organisation": "Северный филиал"})
    vpn = new_card(desk, "VPN drops", text="The tunnel disconnects hourly",
                   priority="high")
    noted = new_card(desk, "Laptop request")
    r = desk.admin.post(f"/v1/cards/{noted['id']}/comments",
                        json={"text": "Ordered from the Gryphon supplier", "visibility":
                              "internal"})
    assert r.status_code == 201, r.text
    r = desk.admin.post(f"/v1/cards/{vpn['id']}/comments",
                        json={"text": "Перезагрузите маршрутизатор", "visibility": "public"})
    assert r.status_code == 201, r.text

    # stems, case and ё: "ПРИНТЕР" finds "Принтеры", "застрявшая" does not but "застревает" does
    page = search(desk.admin, q="ПРИНТЕР")
    assert numbers(page) == [printer["number"]]
    assert page["items"][0]["matches"][0]["where"] == "title"
    assert any(s["mark"] and s["text"] == "Принтеры"
               for s in page["items"][0]["matches"][0]["snippet"])
    # the description (the customer's own text), the requester and its organisation
    assert numbers(search(desk.admin, q="бумаги застревают")) == [printer["number"]]
    where = search(desk.admin, q="северного")["items"][0]["matches"]
    assert where[0]["where"] == "requester"
    # a public reply and an internal note (agents are the only ones who search)
    reply = search(desk.admin, q="маршрутизатора")["items"]
    assert [c["number"] for c in reply] == [vpn["number"]]
    assert reply[0]["matches"][0]["where"] == "reply"
    note = search(desk.admin, q="gryphon")["items"]
    assert [c["number"] for c in note] == [noted["number"]]
    assert note[0]["matches"][0]["where"] == "note"
    # English stems and prefixes: "disconnecting" and "tunn"
    assert numbers(search(desk.admin, q="disconnecting tunn")) == [vpn["number"]]
    # the number and the e-mail whole
    assert numbers(search(desk.admin, q=vpn["number"].lower())) == [vpn["number"]]
    assert numbers(search(desk.admin, q="olga@north.example")) == [printer["number"]]
    # filters combine with words
    assert numbers(search(desk.admin, q="vpn", priority="high")) == [vpn["number"]]
    assert numbers(search(desk.admin, q="vpn", priority="low")) == []
    # the index's own fields stay out of the answer
    assert "text_keys" not in page["items"][0] and "search_comments" not in page["items"][0]


def test_ranked_title_above_comment_and_field_edits_reindex(desk, ops):
    in_note = new_card(desk, "Keyboard broken")
    desk.admin.post(f"/v1/cards/{in_note['id']}/comments",
                    json={"text": "the zeppelin sticker fell off", "visibility": "internal"})
    in_title = new_card(desk, "Zeppelin poster for the lobby")
    assert numbers(search(desk.admin, q="zeppelin")) == [in_title["number"],
                                                         in_note["number"]]
    # an edited title is found by its new words, no longer by its old ones
    r = desk.admin.patch(f"/v1/cards/{in_title['id']}",
                         json={"version": desk.card(in_title["id"])["version"],
                               "title": "Airship poster"})
    assert r.status_code == 200, r.text
    assert numbers(search(desk.admin, q="airship")) == [in_title["number"]]
    assert numbers(search(desk.admin, q="zeppelin")) == [in_note["number"]]


def test_search_is_limited_to_the_agents_boards_and_refuses_bad_filters(desk, ops):
    secret = new_card(desk, "Quasar payroll mismatch")
    outsider = desk.client(desk.new_agent(["support"])["token"])
    assert search(outsider, q="quasar")["items"] == []
    assert outsider.get("/v1/search/cards", params={"q": "quasar", "board": "ops"}
                        ).status_code == 404
    r = outsider.post("/v1/cards/bulk", json={"cards": [secret["id"]], "action": "move",
                                             "column_id": "closed"})
    assert r.status_code == 200
    assert r.json()["results"][0]["status"] == "refused"
    assert r.json()["results"][0]["code"] == "not_found"
    assert desk.card(secret["id"])["column_id"] == "inbox"
    r = desk.admin.get("/v1/search/cards", params={"q": "x", "priority": "urgent",
                                                    "sort": "shoe", "limit": "0"})
    assert r.status_code == 422
    assert set(r.json()["details"]) == {"priority", "sort", "limit"}


def test_bulk_move_of_100_cards_one_event_each_and_a_result_per_card(desk, ops):
    made = [new_card(desk, f"Bulk batch card {i}", text="batchmarker")["id"] for i in range(100)]
    before = {e["payload"]["card"]["card_id"] for e in desk.outbox("card.moved")}
    r = desk.admin.post("/v1/cards/bulk", json={"cards": made, "action": "move",
                                                "column_id": "wait", "lane_id": "vip"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["done"], body["refused"]) == (100, 0)
    assert [x["card"] for x in body["results"]] == made
    moved = [e for e in desk.outbox("card.moved") if e["payload"]["card"]["card_id"] in made]
    assert sorted(e["payload"]["card"]["card_id"] for e in moved) == sorted(made)
    assert not before & set(made)
    card = desk.card(made[42])
    assert (card["column_id"], card["lane_id"], card["status_category"]) == ("wait", "vip",
                                                                             "paused")
    assert [h["to"] for h in card["history"] if h["field"] == "column_id"] == ["wait"]
    # the same action again changes nothing and says so
    again = desk.admin.post("/v1/cards/bulk", json={"cards": made[:3], "action": "move",
                                                    "column_id": "wait", "lane_id": "vip"})
    assert again.json()["unchanged"] == 3
    assert len([e for e in desk.outbox("card.moved")
                if e["payload"]["card"]["card_id"] in made]) == 100


def test_bulk_refuses_per_card_and_applies_the_single_operations(desk, ops):
    cards = [new_card(desk, f"Wip card {i}")["id"] for i in range(3)]
    r = desk.admin.post("/v1/cards/bulk", json={"cards": cards, "action": "move",
                                                "column_id": "work"})
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["done", "done", "refused"]
    assert results[2]["code"] == "wip_limit" and "limit of 2" in results[2]["reason"]
    agent = desk.new_agent(["ops"], name="Bulk Assignee")
    r = desk.admin.post("/v1/cards/bulk", json={"cards": cards, "action": "assign",
                                                "assignee_id": agent["id"]})
    assert r.json()["done"] == 3
    assigned = [e for e in desk.outbox("card.assigned")
                if e["payload"]["card"]["card_id"] in cards]
    assert len(assigned) == 3
    r = desk.admin.post("/v1/cards/bulk", json={"cards": cards, "action": "labels",
                                                "labels": [{"name": "urgent-fix"}]})
    assert r.json()["done"] == 3
    assert desk.card(cards[0])["labels"][0]["name"] == "urgent-fix"
    canned = desk.admin.post("/v1/canned-responses", json={
        "title": "Fixed", "text": "Done for you, {customer_name} ({number})."})
    assert canned.status_code == 201, canned.text
    r = desk.admin.post("/v1/cards/bulk", json={
        "cards": cards, "action": "close", "canned_response_id": canned.json()["id"]})
    assert r.json()["done"] == 3, r.text
    closed = desk.card(cards[1])
    assert closed["status_category"] == "done"
    replies = desk.admin.get(f"/v1/cards/{cards[1]}/comments").json()["items"]
    assert replies[-1]["visibility"] == "public"
    assert replies[-1]["text"] == f"Done for you, Customer ({closed['number']})."
    r = desk.admin.post("/v1/cards/bulk", json={"cards": cards, "action": "move"})
    assert r.status_code == 422 and "column_id" in r.json()["details"]


def test_saved_views_personal_shared_and_per_board(desk, ops):
    mine = desk.client(desk.new_agent(["ops"])["token"])
    colleague = desk.client(desk.new_agent(["ops"])["token"])
    stranger = desk.client(desk.new_agent(["support"])["token"])
    r = mine.post("/v1/views", json={"name": "Mine", "query": "board=ops&q=vpn&cols=number,title"})
    assert r.status_code == 201, r.text
    personal = r.json()
    assert personal["link"] == f"/table?view={personal['id']}"
    r = mine.post("/v1/views", json={"name": "Team", "query": "board=ops&priority=high",
                                     "shared": True})
    shared = r.json()
    r = mine.post("/v1/views", json={"name": "All", "query": "sla=breached", "shared": True})
    across = r.json()
    assert across["board"] is None
    assert {v["id"] for v in colleague.get("/v1/views").json()} >= {shared["id"],
                                                                     across["id"]}
    assert personal["id"] not in {v["id"] for v in colleague.get("/v1/views").json()}
    assert colleague.get(f"/v1/views/{personal['id']}").status_code == 404
    seen_by_stranger = {v["id"] for v in stranger.get("/v1/views").json()}
    assert shared["id"] not in seen_by_stranger and across["id"] in seen_by_stranger
    assert stranger.get(f"/v1/views/{shared['id']}").status_code == 404
    assert colleague.delete(f"/v1/views/{shared['id']}").status_code == 403
    assert mine.delete(f"/v1/views/{shared['id']}").status_code == 204
    bad = mine.post("/v1/views", json={"name": "Bad", "query": "priority=urgent&cols=secret"})
    assert bad.status_code == 422 and set(bad.json()["details"]) == {"priority", "cols"}
    foreign = stranger.post("/v1/views", json={"name": "X", "query": "board=ops"})
    assert foreign.status_code == 422


def test_backfill_gives_old_cards_comment_keys(desk, ops):
    """A card stored before search kept comment stems is found by them after a restart."""
    card = new_card(desk, "Legacy card", text="the obsidian monolith hums")
    desk.db["cards"].update_one({"_id": card["id"]},
                                {"$unset": {"search_comments": "", "text_keys": ""}})
    desk.db["counters"].delete_one({"_id": "search-keys"})
    assert search(desk.admin, q="obsidian")["items"] == []
    boards = desk.stack["boards"]
    boards.stop()
    boards.start()
    assert numbers(wait_until(lambda: search(desk.admin, q="obsidian monolith"), timeout=60)
                   ) == [card["number"]]
