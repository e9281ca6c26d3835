"""Loads one slice of the read model and turns it into the figures the API and page show."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from boards.stats import domain
from boards.stats.domain import Interval, Period
from boards.stats.repository import CardFilter, StatsRepository


@dataclass
class Dataset:
    """Every row the figures of one filter need, grouped by card."""

    cards: list[dict]
    histories: dict[str, list[Interval]]
    targets: list[dict]
    signals: list[dict]
    ratings: list[dict]
    comments: list[dict]
    followed_up: set[str] = field(default_factory=set)
    blocked: dict[str, list[tuple]] = field(default_factory=dict)

    def subset(self, ids: set[str]) -> Dataset:
        return Dataset(
            cards=[c for c in self.cards if c["_id"] in ids],
            histories={k: v for k, v in self.histories.items() if k in ids},
            targets=[r for r in self.targets if r["card_id"] in ids],
            signals=[r for r in self.signals if r["card_id"] in ids],
            ratings=[r for r in self.ratings if r["card_id"] in ids],
            comments=[r for r in self.comments if r["card_id"] in ids],
            followed_up=self.followed_up & ids,
            blocked={k: v for k, v in self.blocked.items() if k in ids},
        )


async def load(repo: StatsRepository, flt: CardFilter,
               active_from: datetime | None = None) -> Dataset:
    cards = await repo.cards(flt, active_from)
    ids = [c["_id"] for c in cards]
    by_card: dict[str, list[dict]] = defaultdict(list)
    active = [c["_id"] for c in cards if not c.get("rated_only")]
    for v in await repo.versions(active):
        by_card[v["card_id"]].append(v)
    histories = {cid: domain.intervals_of(rows) for cid, rows in by_card.items()}
    blocked = {cid: spans for cid, rows in by_card.items()
               if (spans := domain.blocked_spans(rows))}
    return Dataset(cards=cards, histories=histories, targets=await repo.targets(ids),
                   signals=await repo.signals(ids), ratings=await repo.ratings(ids),
                   comments=await repo.comments(ids),
                   followed_up=await repo.followed_up() & set(ids), blocked=blocked)


def summary(data: Dataset, period: Period, now: datetime | None = None) -> dict:
    """The headline figures; a blocker still open counts until `now` (default: this instant)."""
    now = now or datetime.now(UTC)
    return domain.summary(data.cards, data.histories, data.targets, data.signals,
                          data.ratings, data.followed_up, period) | {
        "blocked": domain.blocked_time(data.blocked, period, now),
        "closed_by_type": domain.throughput_by_type(data.cards, data.histories, period)}


def blocked_cards(data: Dataset, period: Period, now: datetime | None = None) -> list[dict]:
    """Each card blocked inside the period: its blocked seconds (as `summary` counts them)
    and whether it is still blocked at the period's end; longest first."""
    now = now or datetime.now(UTC)
    numbers = {c["_id"]: c.get("number") for c in data.cards}
    rows = []
    for cid, spans in data.blocked.items():
        seconds, still = domain.blocked_in_period(spans, period, now)
        if seconds > 0 or still:
            rows.append({"card_id": cid, "number": numbers.get(cid), "seconds": seconds,
                         "blocked_at_end": still})
    return sorted(rows, key=lambda r: (-r["seconds"], r["number"] or r["card_id"]))


def grouped(data: Dataset, period: Period, dimension: str) -> list[dict]:
    """The summary per value of one dimension (service, lane, agent, channel, account…)."""
    key = domain.DIMENSIONS[dimension]
    groups: dict[str | None, set[str]] = defaultdict(set)
    for c in data.cards:
        groups[c.get(key)].add(c["_id"])
    return [{"key": k, **summary(data.subset(ids), period)}
            for k, ids in sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))]


def flow(data: Dataset, period: Period, now: datetime | None = None) -> dict:
    numbers = {c["_id"]: c.get("number") for c in data.cards}
    columns = domain.time_in_columns(data.histories, period, now or datetime.now(UTC))
    cycle = domain.cycle_times(data.histories, period)
    for p in cycle["points"]:
        p["number"] = numbers.get(p["card_id"])
    return {
        "backlog": domain.backlog(data.histories, period),
        "cumulative_flow": domain.cumulative_flow(data.histories, period),
        "time_in_column": {
            "columns": columns["columns"],
            "cards": [{"card_id": cid, "number": numbers.get(cid), "columns": cols}
                      for cid, cols in sorted(columns["cards"].items(),
                                              key=lambda kv: numbers.get(kv[0]) or kv[0])],
        },
        "cycle_time": cycle,
        "throughput": domain.throughput(data.histories, period),
        "throughput_by_type": domain.throughput_by_type(data.cards, data.histories, period),
    }
