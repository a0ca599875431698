"""A token bucket: at most ``burst`` events at once, ``rate_per_s`` on average after that.

Each typed message interrupts the answer and starts a new one; 300 in a burst kept the shared model busy
evaluating prompts that were cancelled at once, and another call's answer waited 11-15 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self._last = clock()

    def take(self) -> bool:
        """True (and one token used) when an event may go ahead now."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate_per_s)
        self._last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
