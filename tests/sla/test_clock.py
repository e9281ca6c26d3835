"""SLA records: pauses, priority changes, warnings, breaches, replies, reopen (no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from desk_contracts.catalog import StatusCategory as C
from pydantic import ValidationError
from sla.domain.calendar import BusinessCalendar
from sla.domain.clock import CardSla
from sla.domain.policy import SlaPolicy
from sla.policies import DEMO_CALENDARS, DEMO_POLICIES

POLICIES = {p["name"]: SlaPolicy.model_validate(p) for p in DEMO_POLICIES}
STANDARD = POLICIES["standard"]  # 24x7: first response 240 min, resolution 2880 min
ALWAYS = BusinessCalendar.always()
OFFICE = BusinessCalendar.from_doc(DEMO_CALENDARS[0])  # Moscow 09-18 Mon-Fri, UTC+3
T0 = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # Monday 10:00 in Moscow
MIN = timedelta(minutes=1)


def new(policy=STANDARD, cal=ALWAYS, priority="medium", at=T0, **kw) -> CardSla:
    return CardSla.open(card_id="c1", number="SD-1", service_id="problem", policy=policy,
                        cal=cal, priority=priority, category=C.QUEUED, column_id="queue",
                        at=at, warn_share=0.8, **kw)


def clock(sla: CardSla, target: str):
    return sla.targets[target]


def test_a_new_card_runs_first_response_and_resolution():
    sla = new()
    assert set(sla.targets) == {"first_response", "resolution"}
    assert clock(sla, "first_response").deadline == T0 + 240 * MIN
    assert clock(sla, "first_response").warn_at == T0 + 192 * MIN
    assert clock(sla, "resolution").deadline == T0 + 2880 * MIN
    assert sla.next_due_at(2) == T0 + 192 * MIN


def test_waiting_for_customer_pauses_resolution_only_and_resumes_where_it_left_off():
    sla = new()
    sla.enter(C.WAITING_FOR_CUSTOMER, "clarification", T0 + 60 * MIN, STANDARD, ALWAYS)
    res = clock(sla, "resolution")
    assert res.state == "paused" and res.deadline is None
    assert res.spent(ALWAYS, T0 + 10 * 60 * MIN) == 60 * 60
    assert clock(sla, "first_response").state == "running"  # the customer still has no answer
    back = T0 + 3 * 24 * 60 * MIN  # three days later, spanning nights and days
    sla.enter(C.IN_PROGRESS, "in-progress", back, STANDARD, ALWAYS)
    assert res.state == "running"
    assert res.deadline == back + (2880 - 60) * MIN
    [pause] = sla.pauses
    assert (pause.started_at, pause.ended_at, pause.cause) == (
        T0 + 60 * MIN, back, "waiting_for_customer")


def test_moving_between_two_pausing_columns_keeps_one_clock_stopped():
    sla = new()
    sla.enter(C.WAITING_FOR_CUSTOMER, "clarification", T0 + 10 * MIN, STANDARD, ALWAYS)
    sla.enter(C.PAUSED, "pause", T0 + 20 * MIN, STANDARD, ALWAYS)
    sla.enter(C.IN_PROGRESS, "in-progress", T0 + 30 * MIN, STANDARD, ALWAYS)
    assert clock(sla, "resolution").spent(ALWAYS, T0 + 30 * MIN) == 10 * 60
    assert [(p.cause, p.ended_at) for p in sla.pauses] == [
        ("waiting_for_customer", T0 + 20 * MIN), ("paused", T0 + 30 * MIN)]


def test_business_hours_pause_spanning_days():
    policy = POLICIES["consultation"]  # office hours; resolution 2400 min = 40 h = 4.44 days
    sla = new(policy=policy, cal=OFFICE)
    # 2 working hours, then waiting from Mon 12:00 MSK to Wed 15:00 MSK
    sla.enter(C.WAITING_FOR_CUSTOMER, "clarification", T0 + 120 * MIN, policy, OFFICE)
    back = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    sla.enter(C.IN_PROGRESS, "in-progress", back, policy, OFFICE)
    res = clock(sla, "resolution")
    assert res.spent_before == 2 * 3600
    # 38 working hours left from Wed 15:00 MSK: 3 h Wed, 9 h Thu, Fri, Mon, 8 h Tue → Tue 17:00
    assert res.deadline == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


def test_priority_change_reprices_without_losing_time_spent():
    sla = new()
    sla.reprice(T0 + 30 * MIN, STANDARD, ALWAYS, ALWAYS, priority="high")
    first = clock(sla, "first_response")
    assert first.spent_before == 30 * 60
    assert first.deadline == T0 + 60 * MIN  # high: 60 min in all, 30 already used
    assert clock(sla, "resolution").deadline == T0 + 480 * MIN
    assert sla.priority == "high"


# Core12's own priorities: two of the same level, one with its own targets.
BY_ID = SlaPolicy.model_validate({
    "name": "core12", "targets": {"first_response": 240, "resolution": 2880},
    "priority_overrides": {"critical": {"first_response": 30}},
    "priority_targets": {"overdue-urgent": {"first_response": 10, "resolution": 120}}})


def test_a_board_priority_id_has_its_own_targets_and_the_level_is_the_fallback():
    urgent = new(BY_ID, priority="critical", priority_key="overdue-urgent")
    assert clock(urgent, "first_response").deadline == T0 + 10 * MIN
    assert clock(urgent, "resolution").deadline == T0 + 120 * MIN
    other_critical = new(BY_ID, priority="critical", priority_key="fire")
    assert clock(other_critical, "first_response").deadline == T0 + 30 * MIN  # the level's
    assert clock(other_critical, "resolution").deadline == T0 + 2880 * MIN  # the policy's
    assert new(BY_ID, priority="medium").targets["first_response"].deadline == T0 + 240 * MIN
    # today's four: their ids are their levels, so a policy may name "high" either way
    by_level_id = SlaPolicy.model_validate({
        "name": "p", "targets": {"first_response": 240},
        "priority_targets": {"high": {"first_response": 45}}})
    assert clock(new(by_level_id, priority="high"), "first_response").deadline == T0 + 45 * MIN


def test_changing_to_a_board_priority_of_the_same_level_reprices():
    sla = new(BY_ID, priority="critical", priority_key="fire")
    sla.reprice(T0 + 5 * MIN, BY_ID, ALWAYS, ALWAYS, priority="critical",
                priority_key="overdue-urgent")
    first = clock(sla, "first_response")
    assert first.spent_before == 5 * 60 and first.deadline == T0 + 10 * MIN
    assert sla.priority_key == "overdue-urgent"
    assert sla.log[-1].detail == "priority fire → overdue-urgent"
    sla.reprice(T0 + 6 * MIN, BY_ID, ALWAYS, ALWAYS, priority="low")  # an event without an id
    assert sla.priority_key is None and clock(sla, "first_response").deadline == T0 + 240 * MIN


def test_a_policy_refuses_what_cannot_be_a_board_priority_id():
    with pytest.raises(ValidationError):
        SlaPolicy.model_validate({"name": "p", "targets": {"first_response": 1},
                                  "priority_targets": {"Not An Id": {"first_response": 5}}})
    with pytest.raises(ValidationError):
        SlaPolicy.model_validate({"name": "p", "targets": {"first_response": 1},
                                  "priority_targets": {"x": {"first_response": 0}}})


def test_raising_priority_past_the_new_target_breaches_at_once():
    sla = new()
    now = T0 + 90 * MIN
    sla.reprice(now, STANDARD, ALWAYS, ALWAYS, priority="high")
    [signal] = [s for s in sla.due(now, 2) if s.target == "first_response"]
    assert signal.kind == "breached" and signal.due_at == now


def test_warning_then_breach_each_raised_once():
    sla = new()
    assert sla.due(T0 + 191 * MIN, 2) == []
    [warn] = sla.due(T0 + 193 * MIN, 2)
    assert (warn.kind, warn.target, warn.due_at) == ("warning", "first_response", T0 + 192 * MIN)
    sla.mark(warn, T0 + 193 * MIN)
    assert sla.due(T0 + 200 * MIN, 2) == []
    assert sla.next_due_at(2) == T0 + 240 * MIN
    [breach] = sla.due(T0 + 241 * MIN, 2)
    assert breach.kind == "breached" and breach.deadline == T0 + 240 * MIN
    sla.mark(breach, T0 + 241 * MIN)
    assert sla.due(T0 + 300 * MIN, 2) == []
    assert clock(sla, "first_response").state == "breached"
    assert clock(sla, "first_response").breached_at == T0 + 240 * MIN


def test_a_long_outage_raises_the_breach_without_a_stale_warning():
    sla = new()
    signals = sla.due(T0 + 250 * MIN, 2)
    assert [(s.kind, s.target) for s in signals] == [("breached", "first_response")]


def test_agent_reply_meets_first_response_then_customer_reply_starts_next_response():
    sla = new()
    met, done = sla.agent_replied(T0 + 20 * MIN, STANDARD, ALWAYS)
    assert (met.kind, met.target) == ("met", "first_response")
    assert (done.kind, done.met, done.spent_seconds) == ("completed", True, 20 * 60)
    assert clock(sla, "first_response").state == "met"
    sla.customer_replied(T0 + 60 * MIN, STANDARD, ALWAYS)
    nxt = clock(sla, "next_response")
    assert nxt.state == "running" and nxt.deadline == T0 + (60 + 480) * MIN
    met2, done2 = sla.agent_replied(T0 + 70 * MIN, STANDARD, ALWAYS)
    assert met2.target == "next_response" and done2.spent_seconds == 10 * 60
    sla.customer_replied(T0 + 80 * MIN, STANDARD, ALWAYS)
    assert clock(sla, "next_response").cycle == 2


def test_customer_message_before_first_answer_starts_no_second_clock():
    sla = new()
    sla.customer_replied(T0 + 5 * MIN, STANDARD, ALWAYS)
    assert "next_response" not in sla.targets


def test_answer_after_breach_is_missed_not_met():
    sla = new()
    [breach] = sla.due(T0 + 241 * MIN, 2)
    sla.mark(breach, T0 + 241 * MIN)
    [late] = sla.agent_replied(T0 + 250 * MIN, STANDARD, ALWAYS)
    assert (late.kind, late.met, late.spent_seconds) == ("completed", False, 250 * 60)
    assert clock(sla, "first_response").state == "missed"


def test_close_meets_resolution_and_reopen_resumes_it_without_the_closed_time():
    sla = new()
    sla.agent_replied(T0 + 10 * MIN, STANDARD, ALWAYS)
    signals = sla.enter(C.DONE, "done", T0 + 100 * MIN, STANDARD, ALWAYS)
    assert [(s.kind, s.target) for s in signals] == [("met", "resolution"),
                                                      ("completed", "resolution")]
    assert sla.next_due_at(2) is None
    reopened = T0 + 5 * 24 * 60 * MIN
    sla.enter(C.IN_PROGRESS, "in-progress", reopened, STANDARD, ALWAYS)
    res = clock(sla, "resolution")
    assert sla.reopened == 1 and res.state == "running" and res.cycle == 2
    assert res.spent_before == 100 * 60
    assert res.deadline == reopened + (2880 - 100) * MIN


def test_customer_silence_brings_a_reminder_then_auto_close():
    sla = new(auto_close_after_days=5)
    waiting = T0 + 30 * MIN
    sla.enter(C.WAITING_FOR_CUSTOMER, "clarification", waiting, STANDARD, ALWAYS)
    kinds = [s.kind for s in sla.due(waiting + timedelta(days=2, minutes=1), 2)]
    assert "reminder" in kinds and "auto_close" not in kinds
    for s in sla.due(waiting + timedelta(days=2, minutes=1), 2):
        sla.mark(s, waiting + timedelta(days=2, minutes=1))
    assert sla.next_due_at(2) == waiting + timedelta(days=5)
    [close] = [s for s in sla.due(waiting + timedelta(days=5), 2) if s.kind == "auto_close"]
    assert close.due_at == waiting + timedelta(days=5)


def test_a_customer_answer_stops_the_reminder():
    sla = new(auto_close_after_days=5)
    sla.enter(C.WAITING_FOR_CUSTOMER, "clarification", T0, STANDARD, ALWAYS)
    sla.agent_replied(T0 + MIN, STANDARD, ALWAYS)
    sla.customer_replied(T0 + 60 * MIN, STANDARD, ALWAYS)
    assert sla.reminder_at(2) is None and sla.auto_close_at() is None


def test_record_shows_targets_pauses_and_log():
    sla = new()
    sla.enter(C.PAUSED, "pause", T0 + 10 * MIN, STANDARD, ALWAYS)
    record = sla.record(ALWAYS, T0 + 20 * MIN)
    targets = {t["target"]: t for t in record["targets"]}
    assert targets["resolution"]["spent_seconds"] == 600
    assert targets["first_response"]["spent_seconds"] == 1200
    assert record["pauses"][0]["cause"] == "paused"
    assert [e["what"] for e in record["log"]][:3] == ["opened", "started", "started"]


def test_completion_reports_business_time_and_pauses():
    policy = POLICIES["consultation"]
    friday_17 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # Fri 17:00 MSK
    sla = new(policy=policy, cal=OFFICE, at=friday_17)
    sla.enter(C.PAUSED, "pause", friday_17 + 30 * MIN, policy, OFFICE)
    monday_10 = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    sla.enter(C.IN_PROGRESS, "in-progress", monday_10, policy, OFFICE)
    done = [s for s in sla.enter(C.DONE, "done", monday_10 + 60 * MIN, policy, OFFICE)
            if s.kind == "completed" and s.target == "resolution"][0]
    assert done.spent_seconds == 90 * 60  # 30 min Friday + 60 min Monday, weekend not counted
    assert done.paused_seconds == (monday_10 - friday_17 - 30 * MIN).total_seconds()
