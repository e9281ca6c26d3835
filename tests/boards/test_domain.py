"""Boards' pure rules: assignment, search words, cursors, SLA signals, canned answers, links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from boards.domain.cards import (
    apply_sla_signal,
    choose_assignee,
    decode_cursor,
    encode_cursor,
    first_column_of_category,
    query_terms,
    render_canned,
    search_terms,
    sla_state,
    sort_key,
    would_cycle,
)
from desk_contracts.catalog import AssignmentRule

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_assignment_rules():
    none = AssignmentRule()
    assert choose_assignee(none, turn=0, open_load={}) is None
    fixed = AssignmentRule(kind="fixed", agents=("ann", "bob"))
    assert {choose_assignee(fixed, turn=t, open_load={"ann": 9}) for t in range(4)} == {"ann"}
    rr = AssignmentRule(kind="round_robin", agents=("ann", "bob", "cid"))
    assert [choose_assignee(rr, turn=t, open_load={}) for t in range(4)] == [
        "ann", "bob", "cid", "ann"]
    ll = AssignmentRule(kind="least_loaded", agents=("ann", "bob", "cid"))
    assert choose_assignee(ll, turn=0, open_load={"ann": 3, "bob": 1, "cid": 2}) == "bob"
    assert choose_assignee(ll, turn=0, open_load={"ann": 1, "bob": 1}) == "cid"  # cid has 0
    assert choose_assignee(ll, turn=0, open_load={"ann": 1, "bob": 1, "cid": 1}) == "ann"


def test_search_words_cover_title_number_and_requester():
    card = {"title": "Принтер не печатает / Printer jammed", "number": "SD-42",
            "requester": {"email": "Olga.P@acme.example", "name": "Olga Petrova"}}
    terms = search_terms(card)
    for word in ("принтер", "printer", "jammed", "sd-42", "olga.p@acme.example", "petrova"):
        assert word in terms
    assert query_terms("  SD-42 ") == ["sd-42"]
    assert query_terms("Printer  JAMMED printer") == ["jammed", "printer"]
    assert query_terms("   ") == []


def test_cursor_round_trip_and_tampering():
    key = sort_key(T0, "0b0c6f0e-1f7a-4c53-8d67-3f5b1c2a9e10")
    assert decode_cursor(encode_cursor(key)) == key
    assert sort_key(T0 + timedelta(microseconds=1), "a") > sort_key(T0, "z")
    for bad in ("", "!!!", encode_cursor('{"$gt": ""}'), encode_cursor("2026|x")):
        with pytest.raises(ValueError):
            decode_cursor(bad)


def test_sla_signals_keep_the_latest_per_target_and_the_worst_alert():
    s = apply_sla_signal({}, "first_response", "warning", T0, T0, "std")
    assert sla_state(s) == "warning"
    s = apply_sla_signal(s, "first_response", "breached", T0, T0 + timedelta(minutes=1), "std")
    assert sla_state(s) == "breached"
    # a late, older event is ignored
    assert apply_sla_signal(s, "first_response", "warning", T0, T0, "std") is None
    s = apply_sla_signal(s, "resolution", "met", None, T0 + timedelta(minutes=2), "std")
    assert sla_state(s) == "breached"
    s = apply_sla_signal(s, "first_response", "met", T0, T0 + timedelta(minutes=3), "std")
    assert sla_state(s) is None


def test_canned_placeholders():
    card = {"number": "SD-7", "title": "VPN", "requester": {"email": "a@b.example"}}
    assert render_canned("Hi {customer_name}, {number} / {unknown} — {agent_name}", card,
                         "Ivan") == "Hi a@b.example, SD-7 / {unknown} — Ivan"


def test_links_refuse_cycles_and_done_column_is_found():
    assert would_cycle("a", "a", [])
    assert would_cycle("child-of-b", "b", ["x", "b"])
    assert not would_cycle("a", "b", ["x"])
    board = {"_id": "b", "columns": [{"id": "q", "category": "queued"},
                                     {"id": "won", "category": "done"},
                                     {"id": "lost", "category": "done"}]}
    assert first_column_of_category(board, "done")["id"] == "won"
    assert first_column_of_category(board, "paused") is None



def test_sla_clock_shows_time_left_but_never_clears_an_alert():
    from datetime import UTC, datetime, timedelta

    from boards.domain.cards import apply_sla_clock, apply_sla_signal, sla_state

    t0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    def clock(signals, state, deadline, at, target="resolution"):
        return apply_sla_clock(signals, {target: (state, deadline)}, at, "std")

    running = clock({}, "running", t0 + timedelta(hours=8), t0)
    assert running["resolution"]["state"] == "running"
    assert running["resolution"]["deadline"] == t0 + timedelta(hours=8)
    paused = clock(running, "paused", None, t0 + timedelta(hours=1))
    assert paused["resolution"]["state"] == "paused" and paused["resolution"]["deadline"] is None
    # an older clock change arriving late is ignored
    assert clock(paused, "running", t0, t0) is None
    # and so is a face the card already shows (as the store gives it back: ms, naive UTC)
    deadline = t0 + timedelta(hours=2, microseconds=123456)
    shown = clock(paused, "running", deadline, t0 + timedelta(hours=1, minutes=1))
    shown["resolution"]["deadline"] = datetime(2026, 11, 23, 11, 0, 0, 123000)
    assert clock(shown, "running", deadline, t0 + timedelta(hours=1, minutes=1)) is None
    warned = apply_sla_signal(paused, "resolution", "warning", t0 + timedelta(hours=9),
                              t0 + timedelta(hours=2), "std")
    later = clock(warned, "running", t0 + timedelta(hours=10), t0 + timedelta(hours=3))
    assert later["resolution"]["state"] == "warning"  # the colour never goes back
    assert later["resolution"]["deadline"] == t0 + timedelta(hours=10)
    assert sla_state(later) == "warning"
