"""The rules of the work behind a request, without a store: a board's types, priorities and
what it accepts; task cards; moves across boards; blockers; participants; followers; a
request's new author; @mentions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from boards.domain.board import (
    DEFAULT_PRIORITIES,
    BoardRules,
    TransferRefused,
    priority_name,
    stored_priority_key,
    type_name,
)
from boards.domain.card import Card, WipLimitReached
from boards.domain.mentions import find_mentions, mention_segments, mentioned_agents
from desk_runtime.http import Invalid

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SUPPORT = {"_id": "support", "lanes": [{"id": "l1"}], "columns": [
    {"id": "queue", "name": "Queue", "category": "queued"}]}
DEV = {"_id": "dev", "lanes": [{"id": "web"}], "columns": [
    {"id": "backlog", "name": "Backlog", "category": "queued", "wip_limit": 1},
    {"id": "shipped", "name": "Shipped", "category": "done"}],
    "card_types": [{"id": "bug", "name": {"en": "Bug"}, "customer_request": True},
                   {"id": "chore", "name": {"en": "Chore"}, "sla_policy": "internal",
                    "fields": {"estimate": "1d"}}],
    "priorities": [{"id": "later", "names": {"en": "Later"}, "color": "#2e7d32",
                    "level": "low"},
                   {"id": "now", "names": {"en": "Now"}, "color": "#c62828",
                    "level": "critical"}],
    "accepts": {"from_boards": ["support"], "types": ["bug", "chore"]}}


def request_card(**over) -> Card:
    doc = {"_id": "c1", "number": "SD-1", "version": 3, "title": "VPN down",
           "board_id": "support", "column_id": "queue", "lane_id": "l1", "type": "bug",
           "status_category": "queued", "priority": "high", "channel": "email",
           "requester": {"email": "anna@acme.example"}, "created_at": T0,
           "updated_at": T0} | over
    return Card.from_document(doc)


def task(**over) -> Card:
    rules = BoardRules(DEV)
    card = Card.new_task(card_id="t1", number="SD-2", title="Bump deps", board=DEV,
                         column_id="backlog", lane_id="web", card_type=rules.task_type(),
                         priority=rules.priority("now"), fields={}, due_date=None,
                         assignee="bob", parent=None, by="ann", now=T0)
    for name, value in over.items():
        setattr(card, name, value)
    return card


def test_a_board_without_rules_reads_as_today():
    rules = BoardRules(SUPPORT)
    assert [p["id"] for p in rules.priorities] == ["low", "medium", "high", "critical"]
    assert rules.task_type()["id"] == "task" and rules.card_type("request")["customer_request"]
    assert not rules.parent_waits_for_children
    rules.refusal(card_type="anything", kind="request", from_board="dev")  # accepts all
    # today's priorities keep no separate key on a card; a board's own do
    assert [stored_priority_key(p) for p in DEFAULT_PRIORITIES] == [None] * 4
    assert stored_priority_key(BoardRules(DEV).priority("now")) == "now"


def test_types_and_priorities_are_named_in_the_page_s_language_else_english_else_by_id():
    request, task_type = BoardRules(SUPPORT).card_types
    assert type_name(request, "ru") == "Запрос" and type_name(task_type, "en") == "Task"
    bug = BoardRules(DEV).card_type("bug")
    assert type_name(bug, "ru") == "Bug"  # no Russian name: the English one
    assert type_name({"id": "idea", "name": {}}, "ru") == "idea"
    assert type_name({"id": "idea"}, "en") == "idea"
    assert priority_name(BoardRules(SUPPORT).priority("high"), "ru") == "Высокий"
    assert priority_name(BoardRules(DEV).priority("now"), "ru") == "Now"
    assert priority_name({"id": "soon", "names": {"ru": "Скоро"}}, "en") == "soon"


def test_a_task_has_no_requester_its_types_defaults_and_its_people():
    t = task()
    assert (t.kind, t.requester, t.service_id, t.channel) == ("task", None, None, "agent")
    assert (t.type, t.fields, t.sla_policy) == ("chore", {"estimate": "1d"}, "internal")
    assert (t.priority, t.priority_key, t.members) == ("critical", "now", ["ann", "bob"])
    snap = t.snapshot(None)
    assert (snap.kind, snap.card_type, snap.priority_key, snap.requester) == (
        "task", "chore", "now", None)
    with pytest.raises(Invalid):
        t.change_requester({"email": "x@acme.example"}, by="ann", now=T0)


def test_a_board_refuses_by_its_rules_with_the_reason():
    rules = BoardRules(DEV)
    rules.refusal(card_type="bug", kind="request", from_board="support")
    with pytest.raises(TransferRefused) as refused:
        rules.refusal(card_type="bug", kind="request", from_board="hr")
    assert refused.value.code == "board_not_accepted" and "support" in refused.value.reason
    with pytest.raises(TransferRefused) as refused:
        rules.refusal(card_type="question", kind="request", from_board="support")
    assert refused.value.code == "type_not_accepted" and "'question'" in refused.value.reason
    tasks_only = BoardRules({"_id": "it", "accepts": {"requests": False}})
    with pytest.raises(TransferRefused) as refused:
        tasks_only.refusal(card_type="request", kind="request", from_board="support")
    assert refused.value.code == "requests_not_accepted"


def test_a_move_to_another_board_keeps_the_card_and_notes_where_from():
    change = request_card().transfer(DEV, "backlog", "web", by="ann", now=T0,
                                     held_in_column=0)
    assert change.sets == {"board_id": "dev", "column_id": "backlog", "lane_id": "web",
                           "status_category": "queued", "column_entered_at": T0}
    assert [(h["field"], h["from"], h["to"]) for h in change.history] == [
        ("board_id", "support", "dev"), ("column_id", "queue", "backlog"),
        ("lane_id", "l1", "web")]
    with pytest.raises(WipLimitReached):
        request_card().transfer(DEV, "backlog", "web", by="ann", now=T0, held_in_column=1)


def test_blockers_open_and_close_and_say_whether_the_card_is_blocked():
    card = request_card()
    other = task()
    change = card.block(blocker_id="b1", reason=None, by_card=other, by="ann", now=T0)
    [entry] = change.pushes["blockers"]
    assert (entry["card_number"], entry["resolved_at"]) == ("SD-2", None)
    blocked = request_card(blockers=[entry])
    assert blocked.blocked and blocked.snapshot(None).blocked
    later = T0 + timedelta(hours=1)
    [freed] = blocked.unblock("b1", by="ann", now=later).sets["blockers"]
    assert freed["resolved_at"] == later
    assert not request_card(blockers=[freed]).blocked
    with pytest.raises(Invalid):
        request_card(blockers=[freed]).unblock("b1", by="ann", now=later)
    with pytest.raises(Invalid):
        card.block(blocker_id="b2", reason=None, by_card=card, by="ann", now=T0)


def test_participants_keep_the_assignee_and_followers_toggle():
    card = request_card(assignee_id="bob", members=["bob"])
    assert card.participants_set(["bob"], by="ann", now=T0) is None
    assert card.participants_set(["bob", "cy", "cy"], by="ann", now=T0).sets == {
        "members": ["bob", "cy"]}
    with pytest.raises(Invalid):
        card.participants_set(["cy"], by="ann", now=T0)
    on = card.follow("cy", True, now=T0)
    assert on.sets == {"followers": ["cy"]} and not on.touch
    assert request_card(followers=["cy"]).follow("cy", True, now=T0) is None
    assert request_card(followers=["cy"]).follow("cy", False, now=T0).sets == {
        "followers": []}


def test_a_request_gets_its_real_author_with_history():
    change = request_card().change_requester({"email": "real@acme.example", "name": "R"},
                                             by="ann", now=T0)
    assert change.sets["requester"]["email"] == "real@acme.example"
    assert [(h["from"], h["to"]) for h in change.history] == [
        ("anna@acme.example", "real@acme.example")]
    assert request_card().change_requester({"email": "anna@acme.example"}, by="ann",
                                           now=T0) is None


AGENTS = [("bob", "Bob Stone"), ("cy.z", "Cyril Zaytsev"), ("anna", "Анна Петрова"),
          ("ann2", "Анна Смирнова"), ("max", "Макс")]


def named(text: str) -> list[str]:
    return mentioned_agents(find_mentions(text, AGENTS))


def test_mentions_are_handles_not_mail_addresses():
    assert named("@bob please check; cc @cy.z, and @bob again") == ["bob", "cy.z"]
    assert named("write to boss@desk.example or a@b") == []
    assert named("@BOB and @Cy.Z") == ["bob", "cy.z"]


def test_mentions_by_display_name_in_any_case_ru_and_en():
    assert named("@Анна Петрова посмотри, пожалуйста") == ["anna"]
    assert named("@анна смирнова, @bob stone: done?") == ["ann2", "bob"]
    assert named("спросите @макс.") == ["max"]
    assert named("@Bob, look") == ["bob"]  # a first name no other agent shares
    assert named("@Анна, посмотри") == []  # two Annas: left as text
    assert named("@Борис and @bobby") == []  # nobody by that name
    # a whole name wins over another agent's first word
    assert mentioned_agents(find_mentions("@Макс?", [*AGENTS, ("mx", "Макс Орлов")])) == ["max"]


def test_a_note_splits_into_text_and_highlighted_mentions():
    text = "Hi @Анна Петрова and @nobody, see @bob."
    mentions = [m.as_document() for m in find_mentions(text, AGENTS)]
    assert mention_segments(text, mentions) == [
        ("Hi ", None), ("@Анна Петрова", "anna"), (" and @nobody, see ", None),
        ("@bob", "bob"), (".", None)]
    assert mention_segments("plain", []) == [("plain", None)]
