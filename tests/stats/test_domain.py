"""Pure statistics arithmetic, without any server."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from boards.stats import domain
from boards.stats.api import cell, parse_instant
from boards.stats.domain import Period
from boards.stats.page import duration

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


def h(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def version(v: int, column: str, category: str, at: datetime, lane: str = "std") -> dict:
    return {"card_id": "c", "version": v, "column_id": column, "lane_id": lane,
            "category": category, "at": at}


HISTORY = [version(1, "new", "queued", h(0)), version(2, "new", "queued", h(1)),  # assigned
           version(3, "doing", "in_progress", h(2)), version(4, "done", "done", h(5)),
           version(5, "doing", "in_progress", h(30)), version(6, "doing", "in_progress", h(31),
                                                              lane="expedite"),
           version(7, "done", "done", h(33))]


def test_percentile_interpolates_between_ranks():
    assert domain.percentile([], 0.5) is None
    assert domain.percentile([7], 0.9) == 7
    assert domain.percentile([1, 2, 3, 4], 0.5) == 2.5
    assert domain.percentile([600, 1200, 1800, 3600, 7200], 0.9) == pytest.approx(5760)
    assert domain.describe([1, 2, 3]) == {"count": 3, "median": 2, "p90": 2.8, "mean": 2}
    assert domain.describe([])["mean"] is None


def test_intervals_do_not_depend_on_arrival_order_or_duplicates():
    expected = domain.intervals_of(HISTORY)
    shuffled = HISTORY * 2
    random.Random(7).shuffle(shuffled)
    assert domain.intervals_of(shuffled) == expected
    assert [(i.column_id, i.start, i.end) for i in expected] == [
        ("new", h(0), h(2)), ("doing", h(2), h(5)), ("done", h(5), h(30)),
        ("doing", h(30), h(33)), ("done", h(33), None)]


def test_closings_reopenings_and_cycle_time():
    ivs = domain.intervals_of(HISTORY)
    assert domain.closings(ivs) == [h(5), h(33)]
    assert domain.reopenings(ivs) == [h(30)]
    assert domain.work_started(ivs) == h(2)
    month = Period(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    cycle = domain.cycle_times({"c": ivs}, month)
    assert cycle["points"][0]["seconds"] == 31 * 3600  # work started → last closing
    rate = domain.reopen_rate({"c": ivs}, month, set())
    assert rate == {"closed": 1, "reopened": 1, "rate": 1.0}
    # reopened only counts after the closing that falls in the period
    late = Period(h(32), h(40))
    assert domain.reopen_rate({"c": ivs}, late, set())["reopened"] == 0
    assert domain.reopen_rate({"c": ivs}, late, {"c"})["reopened"] == 1  # a follow-up


def test_time_in_columns_is_clipped_to_the_period():
    ivs = domain.intervals_of(HISTORY)
    out = domain.time_in_columns({"c": ivs}, Period(h(1), h(34)))
    assert out["cards"]["c"] == {"new": 3600.0, "doing": 6 * 3600.0, "done": 26 * 3600.0}
    assert out["columns"]["doing"]["category"] == "in_progress"


def test_time_in_columns_stops_at_now_in_a_period_that_has_not_ended():
    """This week's figures seen on Wednesday: a card in "done" since Monday has spent two
    days there, not the rest of the week too."""
    ivs = domain.intervals_of(HISTORY)  # in "done" from h(33) on
    week = Period(h(0), h(0) + timedelta(days=7))
    out = domain.time_in_columns({"c": ivs}, week, now=h(40))
    assert out["cards"]["c"]["done"] == (25 + 7) * 3600.0  # h(5)–h(30) and h(33)–now
    assert domain.time_in_columns({"c": ivs}, week)["cards"]["c"]["done"] == (
        25 * 3600.0 + (7 * 24 - 33) * 3600.0)  # no now given: the period's own end


def test_sla_shares_count_open_breaches_once():
    p = Period(h(0), h(100))
    rows = [{"card_id": "a", "target": "first_response", "cycle": 1, "met": False,
             "completed_at": h(5)},
            {"card_id": "b", "target": "first_response", "cycle": 1, "met": True,
             "completed_at": h(6)}]
    signals = [{"kind": "breached", "card_id": "a", "target": "first_response", "at": h(4),
                "deadline": h(4)},
               {"kind": "breached", "card_id": "c", "target": "first_response", "at": h(8),
                "deadline": h(8)},
               {"kind": "breached", "card_id": "c", "target": "first_response", "at": h(8),
                "deadline": h(8)}]
    out = domain.sla_shares(rows, signals, p)
    assert out["first_response"]["met"] == 1 and out["first_response"]["breached"] == 2
    assert out["first_response"]["met_share"] == pytest.approx(1 / 3)


def test_latest_rating_counts_and_response_rate():
    p = Period(h(0), h(100))
    ratings = [{"card_id": "a", "rating": 4, "comment": None, "rated_at": h(1)},
               {"card_id": "a", "rating": 2, "comment": "slow", "rated_at": h(3)},
               {"card_id": "b", "rating": 5, "comment": "ok", "rated_at": h(2)}]
    out = domain.csat(ratings, {"a", "b", "c", "d"}, p)
    assert out["average"] == 3.5 and out["distribution"]["2"] == 1
    assert out["distribution"]["4"] == 0 and out["response_rate"] == 0.5
    assert [c["comment"] for c in out["comments"]] == ["ok", "slow"]


def test_throughput_lists_every_week_monday_first():
    p = Period(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC))
    ivs = domain.intervals_of(HISTORY)
    weeks = domain.throughput({"c": ivs}, p)
    assert [w["week"] for w in weeks] == ["2026-10-26", "2026-11-02", "2026-11-09",
                                          "2026-11-16"]
    assert [w["closed"] for w in weeks] == [0, 1, 0, 0]


def test_day_ends_and_backlog():
    p = Period(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 4, 12, tzinfo=UTC))
    assert [d.isoformat()[:16] for d in domain.day_ends(p)] == [
        "2026-11-03T00:00", "2026-11-04T00:00", "2026-11-04T12:00"]
    ivs = domain.intervals_of(HISTORY)
    assert [b["open"] for b in domain.backlog({"c": ivs}, p)] == [0, 0, 0]
    # reopened at 15:00 on 3 Nov, done again at 18:00
    p2 = Period(datetime(2026, 11, 3, tzinfo=UTC), h(31))
    assert [b["open"] for b in domain.backlog({"c": ivs}, p2)] == [1]


def test_csv_cells_never_start_a_formula():
    assert cell("=1+2") == "'=1+2"
    assert cell("@SUM(A1)") == "'@SUM(A1)"
    assert cell("+7 (999) 123") == "'+7 (999) 123"
    assert cell(-5) == "-5" and cell(-2.5) == "-2.5"
    assert cell("plain") == "plain" and cell(None) == ""


def test_period_parsing():
    assert parse_instant("2026-11-30", end=True) == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_instant("2026-11-30T10:00:00+03:00") == datetime(2026, 11, 30, 7,
                                                                  tzinfo=UTC)
    with pytest.raises(Exception, match="not a date"):
        parse_instant("soon")


def test_duration_text():
    assert [duration(x) for x in (None, 40, 1800, 5400, 93600)] == [
        "—", "40s", "30m", "1h 30m", "1d 2h"]
