"""How late the event loop wakes up: the figure that says whether model work blocks it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from duplex.clock import Clock
from duplex.events import Event, Metric

MAX_KEPT = 30000


async def watch_loop_lag(samples: list[float], publish: Callable[[Event], None], clock: Clock,
                         interval: float = 0.02, report_every_s: float = 5.0) -> None:
    """Append each wake-up's lateness (ms) to ``samples``; publish the recent p99 every ``report_every_s``."""
    report_at = time.perf_counter() + report_every_s
    while True:
        start = time.perf_counter()
        await asyncio.sleep(interval)
        samples.append((time.perf_counter() - start - interval) * 1000)
        if len(samples) > MAX_KEPT:
            del samples[:MAX_KEPT // 3]
        if time.perf_counter() >= report_at:
            report_at += report_every_s
            recent = sorted(samples[-250:])
            publish(Metric(time=clock.now(), name="loop_lag_p99_ms", value=recent[int(0.99 * (len(recent) - 1))]))
