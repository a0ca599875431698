"""duplex.threads: blocking iterators driven off the event loop."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from duplex.threads import iterate_in_thread


async def test_items_arrive_in_order_and_a_producer_error_is_raised_here():
    assert [item async for item in iterate_in_thread(lambda: iter(range(5)))] == [0, 1, 2, 3, 4]

    def failing():
        yield 1
        raise ValueError("model broke")

    seen = []
    try:
        async for item in iterate_in_thread(failing):
            seen.append(item)
    except ValueError as error:
        assert str(error) == "model broke"
    else:
        raise AssertionError("the producer's error was not raised")
    assert seen == [1]


async def test_a_consumer_cancelled_before_its_job_ran_leaves_no_loop_error():
    """The job still queued behind a busy executor is cancelled when the executor shuts down; the clean-up
    callback must not raise on the cancelled future (it used to: "Exception in callback ... CancelledError")."""
    loop = asyncio.get_running_loop()
    errors = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    executor = ThreadPoolExecutor(max_workers=1)
    release = threading.Event()
    executor.submit(release.wait)  # occupies the only thread
    consumer = asyncio.create_task(anext(iterate_in_thread(lambda: iter([1]), executor)))
    await asyncio.sleep(0.05)
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    executor.shutdown(wait=False, cancel_futures=True)  # cancels the queued job, so its asyncio future too
    release.set()
    for _ in range(5):
        await asyncio.sleep(0.01)
    loop.set_exception_handler(None)
    assert errors == []
