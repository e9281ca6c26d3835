"""A scripted month of a service desk (November 2026) as bus events, with its known figures.

Board "support": columns new (queued), doing (in_progress), waiting (waiting_for_customer),
done (done); lanes std and expedite. Business times (`spent_seconds`) differ from wall-clock
(`elapsed_seconds`) as sla computes them in the policy's calendar: the statistics must use
the business figures.
"""

from __future__ import annotations

from datetime import UTC, datetime

from desk_contracts.events import (
    Author,
    CardAssigned,
    CardCreated,
    CardLinked,
    CardMoved,
    CardSnapshot,
    CommentAdded,
    EventPayload,
    Person,
    RequestRated,
    SlaBreached,
    SlaMet,
    SlaTargetCompleted,
)

COLUMNS = {"new": "queued", "doing": "in_progress", "waiting": "waiting_for_customer",
           "done": "done"}


def at(text: str) -> datetime:
    """`11-02 09:00` → 2026-11-02T09:00Z (`10-28 …` is October)."""
    return datetime.strptime(f"2026-{text}", "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


class Card:
    """Builds one card's events with increasing versions, like boards would publish them."""

    def __init__(self, n: int, service: str, channel: str, lane: str, created: str,
                 assignee: str | None = None, follow_up_of: str | None = None):
        self.id = f"00000000-0000-4000-8000-{n:012d}"
        self.number = f"SD-{n}"
        self.service, self.channel, self.lane = service, channel, lane
        self.created = at(created)
        self.column = "new"
        self.assignee = assignee
        self.version = 1
        self.events: list[EventPayload] = [CardCreated(card=self.snap(self.created),
                                                       follow_up_of=follow_up_of)]

    def snap(self, when: datetime) -> CardSnapshot:
        return CardSnapshot(
            card_id=self.id, number=self.number, version=self.version,
            title=f"Request {self.number}",
            service_id=self.service, board_id="support", column_id=self.column,
            lane_id=self.lane, status_category=COLUMNS[self.column],
            customer_status=COLUMNS[self.column], priority="medium",
            requester=Person(email=f"c{self.number}@acme.example"), channel=self.channel,
            assignee_id=self.assignee, created_at=self.created, updated_at=when)

    def move(self, column: str, when: str) -> Card:
        prev = self.column
        self.version += 1
        self.column = column
        self.events.append(CardMoved(card=self.snap(at(when)), from_column_id=prev,
                                     from_lane_id=self.lane, from_category=COLUMNS[prev]))
        return self

    def assign(self, agent: str, when: str) -> Card:
        self.version += 1
        prev, self.assignee = self.assignee, agent
        self.events.append(CardAssigned(card=self.snap(at(when)), previous_assignee_id=prev))
        return self

    def reply(self, when: str, agent: str = "alice", n: int = 1) -> Card:
        self.events.append(CommentAdded(
            comment_id=f"{self.id}-c{n}", card_id=self.id, number=self.number,
            visibility="public", author=Author(kind="agent", id=agent), text="Hello",
            created_at=at(when)))
        return self

    def target(self, target: str, started: str, completed: str, spent: float, met: bool,
               cycle: int = 1, paused: float = 0) -> Card:
        s, c = at(started), at(completed)
        self.events.append(SlaTargetCompleted(
            card_id=self.id, number=self.number, target=target, met=met, started_at=s,
            completed_at=c, spent_seconds=spent, elapsed_seconds=(c - s).total_seconds(),
            paused_seconds=paused, cycle=cycle, policy="standard", calendar="moscow-office",
            service_id=self.service))
        if met:
            self.events.append(SlaMet(card_id=self.id, number=self.number, target=target,
                                      deadline=None, at=c, policy="standard",
                                      service_id=self.service))
        return self

    def breach(self, target: str, when: str) -> Card:
        self.events.append(SlaBreached(card_id=self.id, number=self.number, target=target,
                                       deadline=at(when), at=at(when), policy="standard",
                                       service_id=self.service))
        return self

    def rate(self, rating: int, when: str, comment: str | None = None) -> Card:
        self.events.append(RequestRated(card_id=self.id, rating=rating, comment=comment,
                                        rated_at=at(when)))
        return self


def month() -> list[Card]:
    c0 = (Card(100, "hardware", "portal", "std", "10-28 10:00", assignee="bob")
          .target("first_response", "10-28 10:00", "10-28 11:00", 3600, True)
          .move("doing", "10-29 10:00")
          .breach("resolution", "11-10 10:00")
          .move("done", "11-18 10:00")
          .target("resolution", "10-28 10:00", "11-18 10:00", 50000, False))
    c1 = (Card(1, "access", "email", "std", "11-02 09:00")
          .assign("alice", "11-02 09:10").move("doing", "11-02 10:00").reply("11-02 09:30")
          .target("first_response", "11-02 09:00", "11-02 09:30", 1800, True)
          .move("done", "11-03 12:00")
          .target("resolution", "11-02 09:00", "11-03 12:00", 32400, True)
          .rate(5, "11-03 13:00", "great"))
    c2 = (Card(2, "access", "portal", "std", "11-04 10:00", assignee="bob")
          .move("doing", "11-04 14:00").reply("11-04 14:00", "bob")
          .target("first_response", "11-04 10:00", "11-04 14:00", 3600, True)
          .move("waiting", "11-05 10:00").move("doing", "11-06 10:00")
          .move("done", "11-06 16:00")
          .target("resolution", "11-04 10:00", "11-06 16:00", 20000, True, paused=86400)
          .rate(4, "11-06 17:00")
          .move("doing", "11-09 09:00")
          .breach("resolution", "11-09 11:00")
          .move("done", "11-09 12:00")
          .target("resolution", "11-04 10:00", "11-09 12:00", 30000, False, cycle=2,
                  paused=86400)
          .rate(2, "11-09 13:00", "slow"))
    c3 = (Card(3, "hardware", "telegram", "expedite", "11-10 08:00")
          .assign("alice", "11-10 08:05").move("doing", "11-10 09:00")
          .breach("first_response", "11-10 10:00").reply("11-10 11:00")
          .target("first_response", "11-10 08:00", "11-10 11:00", 7200, False)
          .move("done", "11-12 09:00")
          .target("resolution", "11-10 08:00", "11-12 09:00", 36000, True))
    c4 = (Card(4, "hardware", "email", "std", "11-16 12:00")
          .breach("first_response", "11-17 12:00"))
    c5 = (Card(5, "access", "email", "std", "11-23 09:00", assignee="bob")
          .move("doing", "11-23 11:00").reply("11-23 09:10", "bob")
          .target("first_response", "11-23 09:00", "11-23 09:10", 600, True)
          .move("done", "11-25 11:00")
          .target("resolution", "11-23 09:00", "11-25 11:00", 14400, True)
          .rate(4, "11-25 12:00", '=HYPERLINK("http://evil.example","click")'))
    c6 = (Card(6, "access", "email", "std", "11-26 09:00", assignee="alice",
               follow_up_of=c1.id)
          .move("doing", "11-26 10:00").reply("11-26 09:20")
          .target("first_response", "11-26 09:00", "11-26 09:20", 1200, True))
    c6.events.append(CardLinked(parent_id=c1.id, child_id=c6.id, parent_number=c1.number,
                                child_number=c6.number))
    # closed in October: no part in November's flow, but a late rating still counts
    c50 = Card(50, "hardware", "email", "std", "10-05 10:00").move("doing", "10-05 11:00")
    c50.move("done", "10-06 10:00")
    c51 = Card(51, "hardware", "email", "std", "10-12 10:00").move("done", "10-13 10:00")
    c51.rate(3, "11-20 10:00")
    return [c0, c1, c2, c3, c4, c5, c6, c50, c51]


PERIOD = {"from": "2026-11-01", "to": "2026-11-30"}

# ---------------------------------------------------------------- the known figures

EXPECTED_SUMMARY = {
    "received": 6,
    "closed": 5,
    "first_response": {"count": 5, "median": 1800.0, "p90": 5760.0, "mean": 2880.0},
    "resolution": {"count": 5, "median": 32400.0, "p90": 44400.0, "mean": 32560.0},
    "sla": {
        "first_response": {"met": 4, "breached": 2, "total": 6, "met_share": 4 / 6,
                           "breached_share": 2 / 6},
        "resolution": {"met": 4, "breached": 2, "total": 6, "met_share": 4 / 6,
                       "breached_share": 2 / 6},
    },
    "reopen": {"closed": 5, "reopened": 2, "rate": 0.4},
}
EXPECTED_CSAT = {"count": 4, "average": 3.5,  # SD-51, closed in October, rated in November
                 "distribution": {"1": 0, "2": 1, "3": 1, "4": 1, "5": 1},
                 "response_rate": 0.6}
EXPECTED_COMMENTS = [("SD-1", 5, "great"), ("SD-2", 2, "slow"),
                     ("SD-5", 4, '=HYPERLINK("http://evil.example","click")')]

# open cards at the end of each day of November (day → count; unchanged days carry over)
BACKLOG_CHANGES = {1: 1, 2: 2, 3: 1, 4: 2, 6: 1, 10: 2, 12: 1, 16: 2, 18: 1, 23: 2, 25: 1,
                   26: 2}


def expected_backlog() -> list[int]:
    out, current = [], 0
    for day in range(1, 31):
        current = BACKLOG_CHANGES.get(day, current)
        out.append(current)
    return out


EXPECTED_CYCLE = {"SD-100": 1_728_000.0, "SD-1": 93_600.0, "SD-2": 424_800.0,
                  "SD-3": 172_800.0, "SD-5": 172_800.0}
EXPECTED_CYCLE_PERCENTILES = {"p50": 172_800.0, "p85": 946_080.0, "p95": 1_467_360.0}
EXPECTED_THROUGHPUT = [{"week": "2026-10-26", "closed": 0}, {"week": "2026-11-02", "closed": 1},
                       {"week": "2026-11-09", "closed": 2}, {"week": "2026-11-16", "closed": 1},
                       {"week": "2026-11-23", "closed": 1}, {"week": "2026-11-30", "closed": 0}]
EXPECTED_SD2_COLUMNS = {"new": 14_400.0, "doing": 104_400.0, "waiting": 86_400.0,
                        "done": 2_091_600.0}
EXPECTED_NEW_COLUMN_MEAN = 214_200.0
