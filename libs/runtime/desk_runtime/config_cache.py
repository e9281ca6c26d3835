"""Read-mostly configuration (services, boards, policies, calendars) held briefly in memory.

Every event a service handles used to read the same few configuration documents again —
the request's service, its board, its SLA policy: about a fifth of a ticket's store
operations. They change when an admin edits them, a few times a day. A process keeps
each one it read for `TTL_SECONDS`; a write through this process drops its entry at
once, and another replica's edit is seen within `TTL_SECONDS`.

Values are returned as they were loaded: cache only immutable values (frozen models),
or use `copy=True` for plain documents a caller might change.
"""

from __future__ import annotations

import copy as copying
import time
from collections.abc import Awaitable, Callable
from typing import Any

TTL_SECONDS = 5.0
_MISSING = object()


class ConfigCache:
    def __init__(self, ttl: float = TTL_SECONDS):
        self.ttl = ttl
        self._entries: dict[tuple, tuple[float, Any]] = {}

    async def get(self, key: tuple, load: Callable[[], Awaitable[Any]], *,
                  copy: bool = False) -> Any:
        entry = self._entries.get(key, _MISSING)
        if entry is not _MISSING and entry[0] > time.monotonic():
            value = entry[1]
        else:
            value = await load()
            if value is not None:  # something just created must be seen at once
                self._entries[key] = (time.monotonic() + self.ttl, value)
        return copying.deepcopy(value) if copy else value

    def forget(self, key: tuple | None = None) -> None:
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)


_CACHES: dict[str, ConfigCache] = {}


def config_cache(db_name: str) -> ConfigCache:
    """The process's cache for one database (repositories are made per call; this is not)."""
    cache = _CACHES.get(db_name)
    if cache is None:
        cache = _CACHES[db_name] = ConfigCache()
    return cache
