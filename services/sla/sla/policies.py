"""The demo SLA policies and calendars `make run` and the tests start with."""

from __future__ import annotations

DEMO_CALENDARS: list[dict] = [
    {
        "name": "moscow-office",
        "timezone": "Europe/Moscow",
        "hours": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": ["2026-12-31", "2027-01-01", "2027-01-02", "2027-01-07"],
    },
]

DEMO_POLICIES: list[dict] = [
    {
        "name": "standard",
        "calendar": "24x7",
        "targets": {"first_response": 240, "next_response": 480, "resolution": 2880},
        "priority_overrides": {"high": {"first_response": 60, "resolution": 480},
                               "critical": {"first_response": 15, "resolution": 240}},
    },
    {
        "name": "access",
        "calendar": "24x7",
        "targets": {"first_response": 120, "resolution": 1440},
        "priority_overrides": {"high": {"first_response": 40}},
    },
    {
        "name": "consultation",
        "calendar": "moscow-office",
        "targets": {"first_response": 480, "next_response": 480, "resolution": 2400},
    },
]
