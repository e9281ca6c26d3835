"""Business-calendar arithmetic: nights, weekends, holidays, DST changes (no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sla.domain.calendar import BusinessCalendar, CalendarError

BERLIN = BusinessCalendar.from_doc({
    "name": "berlin-office",
    "timezone": "Europe/Berlin",
    "hours": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-11-30"],
})
SPLIT = BusinessCalendar.from_doc({
    "name": "split-day",
    "timezone": "Europe/Moscow",
    "hours": {"mon": [["09:00", "13:00"], ["14:00", "18:00"]]},
})
H = 3600


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_24x7_counts_every_second():
    cal = BusinessCalendar.always()
    start = utc(2026, 11, 28, 23, 30)  # a Saturday night
    assert cal.add_seconds(start, 240 * 60) == utc(2026, 11, 29, 3, 30)
    assert cal.seconds_between(start, utc(2026, 11, 29, 3, 30)) == 240 * 60


def test_overnight_carries_to_next_morning():
    # Tue 17:00 CET (16:00 UTC) + 2 working hours = 1 h today + 1 h from Wed 09:00 CET
    start = utc(2026, 11, 24, 16, 0)
    assert BERLIN.add_seconds(start, 2 * H) == utc(2026, 11, 25, 9, 0)
    assert BERLIN.seconds_between(start, utc(2026, 11, 25, 9, 0)) == 2 * H


def test_weekend_and_holiday_are_skipped():
    # Fri 17:30 CET + 1 h: 30 min Friday, Mon 30 Nov is a holiday, so Tue 09:30 CET
    start = utc(2026, 11, 27, 16, 30)
    assert BERLIN.add_seconds(start, H) == utc(2026, 12, 1, 8, 30)
    assert BERLIN.seconds_between(start, utc(2026, 12, 1, 8, 30)) == H


def test_start_outside_hours_begins_at_opening():
    saturday_noon = utc(2026, 11, 21, 11, 0)
    assert BERLIN.add_seconds(saturday_noon, 30 * 60) == utc(2026, 11, 23, 8, 30)
    assert not BERLIN.is_working(saturday_noon)
    assert BERLIN.is_working(utc(2026, 11, 23, 8, 30))


def test_spring_dst_change_keeps_working_hours_local():
    # Fri 27 Mar 17:00 CET = 16:00 UTC; clocks go forward on Sun 29 Mar;
    # Mon 30 Mar 09:00 CEST = 07:00 UTC, so 2 h of work end at 08:00 UTC.
    start = utc(2026, 3, 27, 16, 0)
    assert BERLIN.add_seconds(start, 2 * H) == utc(2026, 3, 30, 8, 0)
    assert BERLIN.seconds_between(start, utc(2026, 3, 30, 8, 0)) == 2 * H


def test_autumn_dst_change_keeps_working_hours_local():
    # Fri 23 Oct 17:00 CEST = 15:00 UTC; Mon 26 Oct 09:00 CET = 08:00 UTC
    start = utc(2026, 10, 23, 15, 0)
    assert BERLIN.add_seconds(start, 2 * H) == utc(2026, 10, 26, 9, 0)


def test_a_full_week_is_45_working_hours_across_dst():
    week = BERLIN.seconds_between(utc(2026, 3, 23, 0, 0), utc(2026, 3, 30, 0, 0))
    assert week == 45 * H


def test_lunch_break_is_not_counted():
    start = utc(2026, 11, 23, 9, 30)  # Mon 12:30 MSK
    assert SPLIT.add_seconds(start, H) == utc(2026, 11, 23, 11, 30)  # 14:30 MSK


def test_zero_budget_is_due_at_once():
    start = utc(2026, 11, 21, 11, 0)
    assert BERLIN.add_seconds(start, 0) == start


@settings(max_examples=200, deadline=None)
@given(start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31),
                          timezones=st.just(UTC)),
       seconds=st.integers(min_value=1, max_value=200 * H))
def test_add_and_between_are_inverse(start, seconds):
    end = BERLIN.add_seconds(start, seconds)
    assert end > start
    assert BERLIN.seconds_between(start, end) == pytest.approx(seconds)
    assert BERLIN.seconds_between(start, end - timedelta(seconds=1)) < seconds


@pytest.mark.parametrize("doc, message", [
    ({"name": "x", "timezone": "Mars/Olympus", "hours": {"mon": [["09:00", "18:00"]]}},
     "time zone"),
    ({"name": "x", "timezone": "UTC", "hours": {}}, "no working hours"),
    ({"name": "x", "timezone": "UTC", "hours": {"mon": [["18:00", "09:00"]]}}, "ends before"),
    ({"name": "x", "timezone": "UTC", "hours": {"mon": [["09:00", "13:00"], ["12:00", "18:00"]]}},
     "overlap"),
    ({"name": "x", "timezone": "UTC", "hours": {"funday": [["09:00", "18:00"]]}}, "weekday"),
])
def test_broken_calendars_are_refused_with_a_reason(doc, message):
    with pytest.raises(CalendarError, match=message):
        BusinessCalendar.from_doc(doc)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="aware"):
        BERLIN.add_seconds(datetime(2026, 1, 1), 10)
