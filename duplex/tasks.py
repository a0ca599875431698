"""The session's background tasks: kept (so none is garbage-collected mid-flight), reported when they fail,
cancelled together when the session closes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from duplex.clock import Clock
from duplex.events import ErrorEvent, Event


class BackgroundTasks:
    def __init__(self, publish: Callable[[Event], None], clock: Clock) -> None:
        self.publish, self.clock = publish, clock
        self._tasks: set[asyncio.Task] = set()
        self.closed = False

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if task.cancelled() or self.closed:
            return
        error = task.exception()
        if error is not None:  # a bug in the session's own logic: logged, the session stays up
            self.publish(ErrorEvent(time=self.clock.now(), worker="session",
                                    message=f"{type(error).__name__}: {error}", recovered=True))

    def cancel_all(self) -> list[asyncio.Task]:
        """Cancel every task (the session is closing: their failures are no longer news); await the result."""
        self.closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        return tasks
