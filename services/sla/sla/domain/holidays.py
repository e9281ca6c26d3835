"""A holiday list an admin imports into a business calendar: plain dates or an iCalendar file."""

from __future__ import annotations

import re
from datetime import date

MAX_HOLIDAYS = 1000
# an iCalendar all-day event: DTSTART;VALUE=DATE:20270101 (or DTSTART:20270101)
ICS_START = re.compile(r"^DTSTART(?:;[^:]*)?:(\d{8})", re.MULTILINE)
PLAIN_DATE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\b")


class HolidayListInvalid(ValueError):
    """The text is neither one date per line nor an iCalendar file; `line` says where."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def parse_holidays(text: str) -> list[date]:
    """Dates in `text`, sorted and unique.

    Either an iCalendar file (each event's DTSTART day) or one `YYYY-MM-DD` per line,
    optionally followed by a name ("2027-01-07 Christmas"); blank lines and lines
    starting with # are skipped.
    """
    if "BEGIN:VCALENDAR" in text:
        days = set()
        for raw in ICS_START.findall(text.replace("\r\n", "\n")):
            try:
                days.add(date(int(raw[:4]), int(raw[4:6]), int(raw[6:])))
            except ValueError:
                raise HolidayListInvalid(f"not a date: {raw}") from None
    else:
        days = set()
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            found = PLAIN_DATE.match(line)
            try:
                days.add(date.fromisoformat(found.group(1)) if found else date.fromisoformat(
                    line.strip()))
            except ValueError:
                raise HolidayListInvalid(f"line {number}: not a date (YYYY-MM-DD): "
                                         f"{line.strip()[:40]!r}", line=number) from None
    if len(days) > MAX_HOLIDAYS:
        raise HolidayListInvalid(f"more than {MAX_HOLIDAYS} holidays")
    return sorted(days)
