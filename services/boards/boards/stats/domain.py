"""Pure statistics arithmetic over the read model's rows: no I/O, so every figure is unit-tested.

Rows are plain dicts as stored by the stats repository (datetimes UTC-aware). Periods are
half-open `[start, end)`. Durations are seconds. Business-time figures (first response,
resolution) come ready-made from sla's `sla.target_completed` (`spent_seconds` in the
policy's calendar), so calendar arithmetic exists only in sla.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

DONE = "done"
CATEGORIES = ("queued", "in_progress", "waiting_for_customer", "paused", "done")
DIMENSIONS = {"account": "account_id", "service": "service_id", "lane": "lane_id",
              "agent": "assignee_id", "channel": "channel", "board": "board_id",
              "priority": "priority", "type": "card_type"}


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    def __contains__(self, at: datetime | None) -> bool:
        return at is not None and self.start <= at < self.end

    def elapsed_end(self, now: datetime | None) -> datetime:
        """Where time spent inside the period stops counting: its end, or `now` when it
        reaches past now (a period ending tomorrow has no hours spent tomorrow yet)."""
        return min(self.end, now) if now is not None else self.end


@dataclass(frozen=True)
class Interval:
    """A stretch of time a card spent in one column (end None: still there)."""

    card_id: str
    column_id: str
    lane_id: str
    category: str
    start: datetime
    end: datetime | None

    def seconds(self, lo: datetime, hi: datetime) -> float:
        """Seconds of this interval inside [lo, hi)."""
        a = max(self.start, lo)
        b = min(self.end or hi, hi)
        return max(0.0, (b - a).total_seconds())

    def covers(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


# ---------------------------------------------------------------- percentiles and summaries

def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default): p50 of [1,2,3,4] = 2.5."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    if lo == hi:
        return float(data[lo])
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def describe(values: Sequence[float]) -> dict:
    """count, median, p90 and mean of durations (None when there are none)."""
    return {"count": len(values), "median": percentile(values, 0.5),
            "p90": percentile(values, 0.9),
            "mean": (sum(values) / len(values)) if values else None}


# ---------------------------------------------------------------- card histories

def intervals_of(versions: Iterable[dict]) -> list[Interval]:
    """Column intervals of one card from its snapshots keyed by version.

    Snapshots are sorted by version, not by arrival, so a duplicated or reordered event
    gives the same intervals; consecutive snapshots in the same column merge.
    """
    rows = sorted(versions, key=lambda v: v["version"])
    out: list[Interval] = []
    for row in rows:
        if out and out[-1].column_id == row["column_id"]:
            # same column (an edit, an assignment, a lane change): time keeps accruing
            continue
        if out:
            prev = out[-1]
            out[-1] = Interval(prev.card_id, prev.column_id, prev.lane_id, prev.category,
                               prev.start, max(prev.start, row["at"]))
        out.append(Interval(row["card_id"], row["column_id"], row["lane_id"], row["category"],
                            row["at"], None))
    return out


def closings(intervals: Sequence[Interval]) -> list[datetime]:
    """Instants the card entered a done column from a not-done one (or was created done)."""
    out = []
    prev_cat = None
    for iv in intervals:
        if iv.category == DONE and prev_cat != DONE:
            out.append(iv.start)
        prev_cat = iv.category
    return out


def reopenings(intervals: Sequence[Interval]) -> list[datetime]:
    """Instants the card left a done column for a not-done one."""
    out = []
    for a, b in itertools.pairwise(intervals):
        if a.category == DONE and b.category != DONE:
            out.append(b.start)
    return out


def category_at(intervals: Sequence[Interval], at: datetime) -> str | None:
    for iv in intervals:
        if iv.covers(at):
            return iv.category
    return None


def work_started(intervals: Sequence[Interval]) -> datetime | None:
    """When work started: first entry into an in-progress column, else creation."""
    for iv in intervals:
        if iv.category == "in_progress":
            return iv.start
    return intervals[0].start if intervals else None


# ---------------------------------------------------------------- figures

def received(cards: Iterable[dict], period: Period) -> int:
    return sum(1 for c in cards if c.get("created_at") in period)


def closed_cards(histories: dict[str, list[Interval]], period: Period) -> set[str]:
    """Cards that were closed (entered done) at least once inside the period."""
    return {cid for cid, ivs in histories.items() if any(t in period for t in closings(ivs))}


def reopen_rate(histories: dict[str, list[Interval]], period: Period,
                followed_up: set[str]) -> dict:
    """Of the cards closed in the period, how many were reopened afterwards.

    Reopened = moved out of done after that closing, or a follow-up request was opened
    for it (`card.created.follow_up_of`).
    """
    closed = closed_cards(histories, period)
    reopened = set()
    for cid in closed:
        ivs = histories[cid]
        first_close = min(t for t in closings(ivs) if t in period)
        if cid in followed_up or any(t > first_close for t in reopenings(ivs)):
            reopened.add(cid)
    return {"closed": len(closed), "reopened": len(reopened),
            "rate": (len(reopened) / len(closed)) if closed else None}


def latest_per_card_target(sla_rows: Iterable[dict]) -> dict[tuple[str, str], dict]:
    """The highest cycle of each (card, target): a reopened request's final resolution."""
    best: dict[tuple[str, str], dict] = {}
    for row in sla_rows:
        key = (row["card_id"], row["target"])
        if key not in best or row["cycle"] > best[key]["cycle"]:
            best[key] = row
    return best


def response_times(sla_rows: Iterable[dict], period: Period, target: str) -> dict:
    """Business seconds of a target completed in the period (last cycle per card)."""
    rows = [r for (cid, t), r in latest_per_card_target(sla_rows).items()
            if t == target and r["completed_at"] in period]
    return describe([r["spent_seconds"] for r in rows])


def sla_shares(sla_rows: Iterable[dict], signals: Iterable[dict], period: Period) -> dict:
    """Per target: met, breached and their shares among targets decided in the period.

    A completed target counts by its `met` flag; a target that breached and is still
    open (no completion after the breach) counts as breached at its breach time.
    """
    sla_rows = list(sla_rows)
    out: dict[str, dict] = {}

    def bucket(target: str) -> dict:
        return out.setdefault(target, {"met": 0, "breached": 0})

    completed_after: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for r in sla_rows:
        completed_after[(r["card_id"], r["target"])].append(r["completed_at"])
        if r["completed_at"] in period:
            bucket(r["target"])["met" if r["met"] else "breached"] += 1
    seen: set[tuple[str, str, datetime | None]] = set()
    for s in signals:
        if s["kind"] != "breached" or s["at"] not in period:
            continue
        key = (s["card_id"], s["target"], s.get("deadline"))
        if key in seen:
            continue
        seen.add(key)
        if not any(done >= s["at"] for done in completed_after[(s["card_id"], s["target"])]):
            bucket(s["target"])["breached"] += 1
    for b in out.values():
        total = b["met"] + b["breached"]
        b["total"] = total
        b["met_share"] = b["met"] / total if total else None
        b["breached_share"] = b["breached"] / total if total else None
    return dict(sorted(out.items()))


def latest_ratings(ratings: Iterable[dict]) -> dict[str, dict]:
    """A customer may rate again: the latest rating of each card counts."""
    best: dict[str, dict] = {}
    for r in ratings:
        if r["card_id"] not in best or r["rated_at"] > best[r["card_id"]]["rated_at"]:
            best[r["card_id"]] = r
    return best


def csat(ratings: Iterable[dict], closed: set[str], period: Period,
         numbers: dict[str, str] | None = None) -> dict:
    """Average, distribution (1..5), response rate and comments of ratings given in the period.

    Response rate = cards closed in the period that carry a rating / cards closed in the
    period.
    """
    latest = latest_ratings(ratings)
    given = [r for r in latest.values() if r["rated_at"] in period]
    dist = Counter(r["rating"] for r in given)
    rated_closed = sum(1 for cid in closed if cid in latest)
    comments = [{"card_id": r["card_id"], "number": (numbers or {}).get(r["card_id"]),
                 "rating": r["rating"], "comment": r["comment"],
                 "rated_at": r["rated_at"].isoformat()}
                for r in sorted(given, key=lambda r: r["rated_at"]) if r.get("comment")]
    return {"count": len(given),
            "average": (sum(r["rating"] for r in given) / len(given)) if given else None,
            "distribution": {str(k): dist.get(k, 0) for k in range(1, 6)},
            "response_rate": (rated_closed / len(closed)) if closed else None,
            "comments": comments}


def summary(cards: Sequence[dict], histories: dict[str, list[Interval]], sla_rows: list[dict],
            signals: list[dict], ratings: list[dict], followed_up: set[str],
            period: Period) -> dict:
    """The headline figures for one slice of cards (all inputs already restricted to it)."""
    closed = closed_cards(histories, period)
    numbers = {c["_id"]: c.get("number") for c in cards}
    return {
        "received": received(cards, period),
        "closed": len(closed),
        "first_response": response_times(sla_rows, period, "first_response"),
        "resolution": response_times(sla_rows, period, "resolution"),
        "sla": sla_shares(sla_rows, signals, period),
        "reopen": reopen_rate(histories, period, followed_up),
        "csat": csat(ratings, closed, period, numbers),
    }


# ---------------------------------------------------------------- flow

def day_ends(period: Period) -> list[datetime]:
    """The instant at the end of each day of the period (the next midnight, capped at end)."""
    out = []
    day = period.start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < period.end:
        day = day + timedelta(days=1)
        out.append(min(day, period.end))
    return out


def categories_per_day(histories: dict[str, list[Interval]],
                       period: Period) -> list[tuple[datetime, dict[str, int]]]:
    """Cards per status category at the end of each day of the period.

    One pass over the intervals with a difference array per category (each interval adds
    1 to the day-ends it covers), so the cost grows with intervals, not intervals × days.
    """
    ends = day_ends(period)
    probes = [at - timedelta(microseconds=1) for at in ends]
    n = len(probes)
    diff: dict[str, list[int]] = {c: [0] * (n + 1) for c in CATEGORIES}
    for ivs in histories.values():
        for iv in ivs:
            i = bisect.bisect_left(probes, iv.start)
            j = n if iv.end is None else bisect.bisect_left(probes, iv.end)
            if i < j:
                row = diff.setdefault(iv.category, [0] * (n + 1))
                row[i] += 1
                row[j] -= 1
    out = []
    running = dict.fromkeys(diff, 0)
    for k, at in enumerate(ends):
        for cat, row in diff.items():
            running[cat] += row[k]
        out.append((at, dict(running)))
    return out


def backlog(histories: dict[str, list[Interval]], period: Period) -> list[dict]:
    """Open (not done) cards at the end of each day."""
    return [{"at": at.isoformat(), "open": sum(v for k, v in counts.items() if k != DONE)}
            for at, counts in categories_per_day(histories, period)]


def cumulative_flow(histories: dict[str, list[Interval]], period: Period) -> list[dict]:
    """Cards per status category at the end of each day (done accumulates: a CFD)."""
    return [{"at": at.isoformat(), **counts}
            for at, counts in categories_per_day(histories, period)]


def time_in_columns(histories: dict[str, list[Interval]], period: Period,
                    now: datetime | None = None) -> dict:
    """Wall-clock seconds each card spent in each column inside the period (up to `now`
    when the period reaches past it), and aggregates."""
    until = period.elapsed_end(now)
    per_card: dict[str, dict[str, float]] = {}
    per_column: dict[str, list[float]] = defaultdict(list)
    category: dict[str, str] = {}
    for cid, ivs in histories.items():
        acc: dict[str, float] = defaultdict(float)
        for iv in ivs:
            s = iv.seconds(period.start, until)
            if s > 0 or iv.covers(period.start) or iv.start in period:
                acc[iv.column_id] += s
                category.setdefault(iv.column_id, iv.category)
        if acc:
            per_card[cid] = dict(acc)
            for col, s in acc.items():
                per_column[col].append(s)
    aggregate = {col: {**describe(vals), "total": sum(vals), "category": category[col]}
                 for col, vals in sorted(per_column.items())}
    return {"cards": per_card, "columns": aggregate}


def cycle_times(histories: dict[str, list[Interval]], period: Period) -> dict:
    """Cycle time (work started → closed) of each card closed in the period, with percentiles.

    The last closing inside the period counts (a reopened card's final delivery).
    """
    points = []
    for cid, ivs in histories.items():
        closes = [t for t in closings(ivs) if t in period]
        if not closes:
            continue
        done_at = max(closes)
        started = work_started(ivs)
        points.append({"card_id": cid, "closed_at": done_at,
                       "seconds": max(0.0, (done_at - started).total_seconds())})
    points.sort(key=lambda p: (p["closed_at"], p["card_id"]))
    secs = [p["seconds"] for p in points]
    return {"points": [{**p, "closed_at": p["closed_at"].isoformat()} for p in points],
            "percentiles": {"p50": percentile(secs, 0.5), "p85": percentile(secs, 0.85),
                            "p95": percentile(secs, 0.95)}}


def week_start(at: datetime) -> datetime:
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def throughput(histories: dict[str, list[Interval]], period: Period) -> list[dict]:
    """Cards closed per ISO week (Monday 00:00 UTC), every week of the period listed."""
    counts: Counter[datetime] = Counter()
    for ivs in histories.values():
        closes = [t for t in closings(ivs) if t in period]
        if closes:
            counts[week_start(max(closes))] += 1
    out = []
    week = week_start(period.start)
    while week < period.end:
        out.append({"week": week.date().isoformat(), "closed": counts.get(week, 0)})
        week += timedelta(days=7)
    return out


# ---------------------------------------------------------------- blockers and types

def blocked_spans(versions: Iterable[dict]) -> list[tuple[datetime, datetime | None]]:
    """When one card was blocked, from its snapshots by version (end None: still blocked).

    Snapshots recorded before blockers existed carry no flag and count as not blocked.
    """
    spans: list[tuple[datetime, datetime | None]] = []
    start: datetime | None = None
    for row in sorted(versions, key=lambda v: v["version"]):
        if row.get("blocked") and start is None:
            start = row["at"]
        elif not row.get("blocked") and start is not None:
            spans.append((start, max(start, row["at"])))
            start = None
    if start is not None:
        spans.append((start, None))
    return spans


def blocked_in_period(card_spans: Sequence[tuple[datetime, datetime | None]], period: Period,
                      now: datetime | None = None) -> tuple[float, bool]:
    """Seconds one card was blocked inside the period, and whether it is blocked at its end.

    A blocker still open counts until `now` when the period reaches past it: a period
    ending tomorrow must not count tomorrow's hours as blocked already.
    """
    until = period.elapsed_end(now)
    seconds = sum(max(0.0, (min(end or until, until) - max(start, period.start)).total_seconds())
                  for start, end in card_spans)
    still = any(start < period.end and (end is None or end >= period.end)
                for start, end in card_spans)
    return seconds, still


def blocked_time(spans: dict[str, list[tuple[datetime, datetime | None]]], period: Period,
                 now: datetime | None = None) -> dict:
    """Time cards spent blocked inside the period: per blocked card (median, p90, mean),
    the total, and how many are blocked at the period's end."""
    per_card = []
    blocked_at_end = 0
    for card_spans in spans.values():
        seconds, still = blocked_in_period(card_spans, period, now)
        if seconds > 0:
            per_card.append(seconds)
        if still:
            blocked_at_end += 1
    return {**describe(per_card), "total_seconds": sum(per_card),
            "blocked_at_end": blocked_at_end}


def throughput_by_type(cards: Iterable[dict], histories: dict[str, list[Interval]],
                       period: Period) -> dict[str, int]:
    """Cards closed in the period per card type (requests from before types count as
    "request")."""
    types = {c["_id"]: c.get("card_type") or "request" for c in cards}
    counts: Counter[str] = Counter()
    for card_id in closed_cards(histories, period):
        counts[types.get(card_id, "request")] += 1
    return dict(sorted(counts.items()))
