"""The Card aggregate's rules, without a store: moves and WIP, versions, assignment, links."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from boards.domain.card import Card, StaleVersion, WipLimitReached
from desk_runtime.http import Conflict, Invalid

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
BOARD = {"_id": "support", "lanes": [{"id": "l1"}, {"id": "l2"}], "columns": [
    {"id": "queue", "name": "Queue", "category": "queued", "wip_limit": None},
    {"id": "doing", "name": "Doing", "category": "in_progress", "wip_limit": 2},
    {"id": "done", "name": "Done", "category": "done"}]}


def card(**over) -> Card:
    doc = {"_id": "c1", "number": "SD-1", "version": 3, "title": "VPN down",
           "board_id": "support", "column_id": "queue", "lane_id": "l1",
           "status_category": "queued", "priority": "high", "channel": "email",
           "created_at": T0, "updated_at": T0, "custom": "kept"} | over
    return Card.from_document(doc)


def test_document_round_trip_keeps_unknown_fields_and_leaves_out_unread_ones():
    c = card()
    assert c.to_document()["custom"] == "kept"
    assert "history" not in c.to_document()  # not read (a list leaves it out): not written
    assert Card.from_document(c.to_document()) == c


def test_move_changes_column_category_and_history():
    change = card().move(BOARD, "doing", "l2", by="ann", now=T0, held_in_column=1)
    assert change.sets == {"lane_id": "l2", "column_id": "doing",
                           "status_category": "in_progress", "column_entered_at": T0}
    assert [(h["field"], h["from"], h["to"]) for h in change.history] == [
        ("column_id", "queue", "doing"), ("lane_id", "l1", "l2")]
    assert card().move(BOARD, "queue", "l1", by="ann", now=T0, held_in_column=None) is None


def test_wip_limit_refuses_a_full_column_but_not_a_lane_change_inside_it():
    with pytest.raises(WipLimitReached):
        card().move(BOARD, "doing", "l1", by="ann", now=T0, held_in_column=2)
    inside = card(column_id="doing", status_category="in_progress")
    assert not inside.wip_applies(BOARD, "doing") and card().wip_applies(BOARD, "doing")
    change = inside.move(BOARD, "doing", "l2", by="ann", now=T0, held_in_column=None)
    assert change.sets == {"lane_id": "l2"}


def test_versions():
    card().require_version(3)
    card().require_version(None)
    with pytest.raises(StaleVersion) as refused:
        card().require_version(2)
    assert refused.value.details == {"current_version": 3}
    change = card().edit({"title": "VPN slow"}, by="ann", now=T0)
    assert card().derived(change, T0)["search_terms"] == ["1", "sd", "sd-1", "slow", "vpn"]


def test_assignment_needs_a_member_of_the_board():
    c = card()
    assert c.assign(None, None, by="ann", now=T0) is None  # nobody's already
    with pytest.raises(Invalid):
        c.assign("bob", None, by="ann", now=T0)
    with pytest.raises(Invalid):
        c.assign("bob", {"_id": "bob", "boards": ["other"]}, by="ann", now=T0)
    change = c.assign("bob", {"_id": "bob", "boards": ["support"]}, by="ann", now=T0)
    assert change.sets == {"assignee_id": "bob"} and change.add_to_set == {"members": "bob"}


def test_links_refuse_a_second_parent_and_a_cycle():
    parent, child = card(), card(_id="c2", number="SD-2")
    child_change, parent_change = parent.adopt(child, by="ann", now=T0, ancestors=[])
    assert child_change.sets == {"parent_id": "c1"}
    assert parent_change.pushes["links"][0]["number"] == "SD-2"
    assert parent.adopt(card(_id="c2", parent_id="c1"), by="ann", now=T0, ancestors=[]) is None
    with pytest.raises(Conflict):
        parent.adopt(card(_id="c2", parent_id="c9"), by="ann", now=T0, ancestors=[])
    with pytest.raises(Conflict):
        parent.adopt(child, by="ann", now=T0, ancestors=["c2"])


def test_a_newer_rating_wins_and_sla_clocks_are_not_versioned():
    rated = card(rating={"score": 5, "rated_at": T0.replace(hour=12)})
    assert rated.rate(score=1, comment=None, rated_at=T0, rated_by=None, now=T0) is None
    clock = card().sla_clock({"resolution": ("running", T0)}, T0, "standard")
    assert not clock.versioned and set(clock.sets) == {"sla.resolution", "sla_state"}
    # one change that moves two clocks: both shown by one write, nothing left for the
    # event of the other clock
    both = {"first_response": ("running", T0), "resolution": ("running", T0)}
    change = card().sla_clock(both, T0, "standard")
    assert set(change.sets) == {"sla.first_response", "sla.resolution", "sla_state"}
    shown = card(sla={k: v for k, v in ((n.split(".")[1], x) for n, x in change.sets.items()
                                         if n.startswith("sla."))})
    assert shown.sla_clock(both, T0, "standard") is None
