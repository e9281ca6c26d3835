"""Blocked time and throughput per card type, from the read model's rows (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from boards.stats.domain import (
    Period,
    blocked_spans,
    blocked_time,
    intervals_of,
    throughput_by_type,
)

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)
PERIOD = Period(T0, T0 + timedelta(days=7))


def row(card: str, version: int, hours: float, blocked: bool | None = None,
        column: str = "todo", category: str = "queued") -> dict:
    out = {"card_id": card, "version": version, "at": T0 + timedelta(hours=hours),
           "column_id": column, "lane_id": "main", "category": category}
    if blocked is not None:
        out["blocked"] = blocked
    return out


def test_blocked_spans_follow_versions_not_arrival_and_old_rows_count_as_free():
    rows = [row("a", 3, 5, blocked=False), row("a", 1, 0), row("a", 2, 2, blocked=True),
            row("a", 4, 6, blocked=True)]
    assert blocked_spans(rows) == [(T0 + timedelta(hours=2), T0 + timedelta(hours=5)),
                                   (T0 + timedelta(hours=6), None)]


def test_blocked_time_inside_the_period_and_cards_still_blocked_at_its_end():
    spans = {
        "a": [(T0 - timedelta(hours=1), T0 + timedelta(hours=2))],  # 2 h inside the period
        "b": [(T0 + timedelta(days=6), None)],                      # 1 day, still blocked
        "c": [(T0 - timedelta(days=3), T0 - timedelta(days=2))],    # before: not counted
    }
    figures = blocked_time(spans, PERIOD)
    assert figures["count"] == 2 and figures["blocked_at_end"] == 1
    assert figures["total_seconds"] == 2 * 3600 + 86400
    assert figures["median"] == (2 * 3600 + 86400) / 2


def test_throughput_per_type_counts_cards_closed_in_the_period():
    cards = [{"_id": "a", "card_type": "feature"}, {"_id": "b", "card_type": "bug"},
             {"_id": "c"}, {"_id": "d", "card_type": "feature"}]
    histories = {
        "a": intervals_of([row("a", 1, 0), row("a", 2, 3, column="done", category="done")]),
        "b": intervals_of([row("b", 1, 0), row("b", 2, 4, column="done", category="done")]),
        "c": intervals_of([row("c", 1, 0), row("c", 2, 5, column="done", category="done")]),
        "d": intervals_of([row("d", 1, 0)]),  # still open
    }
    assert throughput_by_type(cards, histories, PERIOD) == {"bug": 1, "feature": 1,
                                                           "request": 1}
