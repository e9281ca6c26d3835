"""Business calendars: which instants count towards an SLA clock.

A calendar is either 24x7 (every second counts) or working hours per weekday in a
time zone, minus holidays. All arithmetic takes and returns aware UTC datetimes;
working hours are applied in the calendar's own zone, so a DST change moves the
UTC instants of "09:00" but never the number of working hours in a day.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A calendar with working hours on no day would make "add 8 hours" loop forever;
# we refuse to look further ahead than this instead.
MAX_LOOKAHEAD_DAYS = 3 * 366


class CalendarError(ValueError):
    pass


def _parse_time(value: str) -> time:
    if value == "24:00":
        return time.max
    try:
        hh, mm = value.split(":")
        return time(int(hh), int(mm))
    except (ValueError, TypeError):
        raise CalendarError(f"not a time of day (HH:MM): {value!r}") from None


@dataclass(frozen=True)
class BusinessCalendar:
    name: str
    timezone: str | None = None  # None: 24x7
    hours: dict[int, tuple[tuple[time, time], ...]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()

    @property
    def always_open(self) -> bool:
        return self.timezone is None

    @classmethod
    def always(cls) -> BusinessCalendar:
        return cls("24x7")

    @classmethod
    def from_doc(cls, doc: dict) -> BusinessCalendar:
        """Build from the stored/configured shape (see sla.policies.DEMO_CALENDARS)."""
        name = doc["name"]
        if name == "24x7" or not doc.get("timezone"):
            return cls.always()
        try:
            ZoneInfo(doc["timezone"])
        except Exception:
            raise CalendarError(f"unknown time zone {doc['timezone']!r}") from None
        hours: dict[int, tuple[tuple[time, time], ...]] = {}
        for day, windows in (doc.get("hours") or {}).items():
            if day not in WEEKDAYS:
                raise CalendarError(f"unknown weekday {day!r} (use {', '.join(WEEKDAYS)})")
            parsed = []
            for start, end in windows:
                s, e = _parse_time(start), _parse_time(end)
                if s >= e:
                    raise CalendarError(f"{day}: window {start}-{end} ends before it starts")
                parsed.append((s, e))
            parsed.sort()
            for (_, e1), (s2, _) in zip(parsed, parsed[1:], strict=False):
                if s2 < e1:
                    raise CalendarError(f"{day}: working windows overlap")
            hours[WEEKDAYS.index(day)] = tuple(parsed)
        if not any(hours.values()):
            raise CalendarError(f"calendar {name!r} has no working hours")
        holidays = frozenset(date.fromisoformat(d) for d in doc.get("holidays") or ())
        return cls(name, doc["timezone"], hours, holidays)

    # -- windows -------------------------------------------------------------------------

    def _windows_on(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        if day in self.holidays:
            return
        tz = ZoneInfo(self.timezone)  # type: ignore[arg-type]
        for start, end in self.hours.get(day.weekday(), ()):
            s = datetime.combine(day, start, tzinfo=tz).astimezone(UTC)
            if end == time.max:
                e = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
            else:
                e = datetime.combine(day, end, tzinfo=tz).astimezone(UTC)
            if e > s:
                yield s, e

    def windows(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals (UTC) from `start` on, the first one clipped to begin at `start`."""
        _aware(start)
        if self.always_open:
            yield start, datetime.max.replace(tzinfo=UTC)
            return
        tz = ZoneInfo(self.timezone)  # type: ignore[arg-type]
        day = start.astimezone(tz).date() - timedelta(days=1)
        last = day + timedelta(days=MAX_LOOKAHEAD_DAYS)
        while day <= last:
            for s, e in self._windows_on(day):
                if e <= start:
                    continue
                yield max(s, start), e
            day += timedelta(days=1)
        raise CalendarError(f"calendar {self.name!r}: no working time within "
                            f"{MAX_LOOKAHEAD_DAYS} days of {start.isoformat()}")

    # -- arithmetic ----------------------------------------------------------------------

    def seconds_between(self, start: datetime, end: datetime) -> float:
        """Working seconds in [start, end); 0 when end <= start."""
        _aware(start), _aware(end)
        if end <= start:
            return 0.0
        if self.always_open:
            return (end - start).total_seconds()
        total = 0.0
        for s, e in self.windows(start):
            if s >= end:
                break
            total += (min(e, end) - s).total_seconds()
        return total

    def add_seconds(self, start: datetime, seconds: float) -> datetime:
        """The instant at which `seconds` of working time after `start` have passed.

        Zero working seconds from outside working hours is `start` itself: nothing is
        left to spend, so the clock is already due.
        """
        _aware(start)
        if seconds <= 0:
            return start
        if self.always_open:
            return start + timedelta(seconds=seconds)
        left = seconds
        for s, e in self.windows(start):
            span = (e - s).total_seconds()
            if span >= left:
                return s + timedelta(seconds=left)
            left -= span
        raise AssertionError("unreachable: windows() raises when it runs out")

    def is_working(self, instant: datetime) -> bool:
        if self.always_open:
            return True
        first = next(self.windows(instant))
        return first[0] == instant


def _aware(dt: datetime) -> None:
    if dt.tzinfo is None:
        raise ValueError("SLA arithmetic takes aware datetimes (UTC inside)")
