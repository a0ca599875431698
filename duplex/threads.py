"""Run blocking model code off the event loop, including generators that stream results."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import Executor
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


async def iterate_in_thread(make_iterator: Callable[[], Iterator[T]], executor: Executor | None = None,
                            cancel: threading.Event | None = None) -> AsyncGenerator[T, None]:
    """Drive a blocking iterator in ``executor`` and yield its items on the event loop.

    Leaving the ``async for`` early (or cancelling the task) stops the producer at its next item, as does
    setting ``cancel`` (which the caller may share with other work: it is only read here, never set); an
    exception in the producer is raised here. Items are small (tokens, audio chunks), so the
    hand-over queue is unbounded and the producer never waits on the loop.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in make_iterator():
                if stop.is_set() or (cancel is not None and cancel.is_set()):
                    break
                loop.call_soon_threadsafe(queue.put_nowait, item)
        except BaseException as error:  # handed to the consumer
            loop.call_soon_threadsafe(queue.put_nowait, error)
            return
        loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    future = loop.run_in_executor(executor, produce)
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        if not future.done():
            # never "exception was never retrieved"; a cancelled future has no exception to fetch (it would raise)
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
