"""The asyncio tasks one call or socket runs: named after it, kept until done, cancelled together at its end.

A task nobody holds can be garbage collected mid-run, and one that fails unseen hides a bug; a call's pumps
and watchdogs are therefore spawned here, and a failure is logged with the task's name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class OwnedTasks:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix  # e.g. "call-3": task names become "call-3-microphone"
        self.closed = False
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str, after_close: bool = False) -> None:
        """Run ``coroutine`` as a task; once closed, it is dropped unless ``after_close`` (a close step)."""
        if self.closed and not after_close:
            coroutine.close()
            return
        task = asyncio.create_task(coroutine, name=f"{self.prefix}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    async def cancel_all(self) -> None:
        """Spawn nothing more; cancel every task but the one calling, and wait for them to end."""
        self.closed = True
        current = asyncio.current_task()
        pending = [t for t in self._tasks if t is not current and not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
