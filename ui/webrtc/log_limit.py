"""A logging filter that lets the same message through at most ``limit`` times per ``window_s``.

Under a flood of bad connections asyncio and aiohttp log one record per failure: 347,580 lines (152 MB)
in ~75 s. Records are "the same" when logger and message template match (the arguments may differ). The
first record after a window in which some were held back says how many.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

WINDOW_S = 10.0
MAX_KEYS = 1000  # distinct templates remembered; beyond that the table starts afresh


class RateLimitFilter(logging.Filter):
    def __init__(self, limit: int = 10, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._seen: dict[tuple[str, str], list] = {}  # key -> [window start, passed, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self.clock()
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= self.window_s:
            if len(self._seen) >= MAX_KEYS:
                self._seen.clear()
            suppressed = entry[2] if entry is not None else 0
            self._seen[key] = [now, 1, 0]
            if suppressed:
                record.msg = f"{record.getMessage()} (suppressed {suppressed} similar messages in the last " \
                             f"{self.window_s:.0f} s)"
                record.args = None
            return True
        if entry[1] < self.limit:
            entry[1] += 1
            return True
        entry[2] += 1
        return False


def install(limit: int) -> Callable[[], None]:
    """Put a ``RateLimitFilter`` on every root handler (on logging's last resort when there is none; one
    filter each, as a record passes every handler's filter); returns the function that takes them off."""
    handlers = list(logging.getLogger().handlers)
    if not handlers and logging.lastResort is not None:
        handlers = [logging.lastResort]
    filters = [RateLimitFilter(limit) for _ in handlers]
    for handler, limiter in zip(handlers, filters):
        handler.addFilter(limiter)

    def uninstall() -> None:
        for handler, limiter in zip(handlers, filters):
            handler.removeFilter(limiter)

    return uninstall
