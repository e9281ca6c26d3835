"""Per-key send pacing (Telegram chat, Slack webhook) that never blocks a worker.

`reserve` either grants a slot now or says how long until one is free; the dispatcher
then puts the delivery back for that long instead of sleeping on it, so one limited
chat or webhook cannot hold up anything else. `block` records a channel's own
"retry after N seconds" answer. Limits are per process: with several notify replicas
each paces itself (set the per-second figures accordingly).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.clock = clock
        self._next_free: dict[str, float] = {}
        self._reservations = 0

    def reserve(self, key: str) -> float:
        """0.0 when the caller may send now (the slot is taken), else seconds to wait."""
        now = self.clock()
        free_at = self._next_free.get(key, 0.0)
        if free_at > now:
            return free_at - now
        self._next_free[key] = now + self.interval
        self._reservations += 1
        if self._reservations % 1000 == 0:
            self._prune(now)
        return 0.0

    def block(self, key: str, seconds: float) -> None:
        """The channel told us to wait: nothing goes to `key` for `seconds`."""
        until = self.clock() + max(seconds, 0.0)
        self._next_free[key] = max(self._next_free.get(key, 0.0), until)

    def _prune(self, now: float) -> None:
        for key in [k for k, t in self._next_free.items() if t < now]:
            del self._next_free[key]
