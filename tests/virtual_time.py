"""Deterministic time for tests of the duplex core: a virtual clock that moves only while the session waits on
it, and fake models that charge a declared cost on it instead of sleeping.

The session runs model calls (and its VAD) in threads through ``loop.run_in_executor``. ``VirtualTime``
follows each such job from its submission until its result is back on the event loop, and counts every
thread-to-loop hop (``call_soon_threadsafe``: streamed tokens, audio chunks). A fake model calls ``spend(s)``:
its thread parks until the clock reads the job's start plus everything the job has spent so far. Time moves
only when every job is parked (or done) and every hop has landed, so an event's time is the sum of declared
costs and the session's own timers: the same on a loaded 2-core machine as on an idle one. Real compute in a
fake (an FFT, a beep) costs no virtual time; a job that never parks (a hung model) holds the clock still.

Outside ``VirtualTime`` (real-clock sessions, ``duplex.pacing.VirtualPacer``) ``spend`` sleeps for real, so
the same fakes serve every test.

``duplex.clock.ManualClock`` wakes all the sleepers of one ``advance`` in a row; ``VirtualClock`` lets the
pacer stop at each deadline and let the threads that deadline set off finish first.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from duplex.clock import ManualClock

_current = threading.local()  # the job the calling executor thread is running, if VirtualTime tracks it


def spend(seconds: float) -> None:
    """A fake model's cost for one call or item: virtual under ``VirtualTime``, a real sleep otherwise."""
    job = getattr(_current, "job", None)
    if job is not None:
        job.owner.park(job, seconds)
    elif seconds > 0:
        time.sleep(seconds)


class VirtualClock(ManualClock):
    """The session's clock (``duplex.clock.Clock``): reads what the pacer set; sleepers wake as it passes them.
    Unlike ``ManualClock.advance``, the pacer moves it one deadline at a time (``next_deadline``, ``move_to``)."""

    def next_deadline(self) -> float | None:
        while self._sleepers and self._sleepers[0][2].done():  # a cancelled sleeper
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def move_to(self, target: float) -> None:
        self._now = max(self._now, target)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            future = heapq.heappop(self._sleepers)[2]
            if not future.done():
                future.set_result(None)


@dataclass(eq=False)
class _Job:
    owner: VirtualTime
    name: str
    cursor: float  # virtual time this job has reached: its submission plus what it has spent
    order: int  # submission order
    started: bool = False
    thread_done: bool = False
    delivered: bool = False  # its future is settled on the loop (result, error or cancelled)
    parked: bool = False

    @property
    def holds_time(self) -> bool:
        """Running in its thread, or its result not yet on the loop."""
        return not self.parked and ((self.started and not self.thread_done) or not self.delivered)


class SettleTimeout(AssertionError):
    """Model work did not finish or park within the guard: a hang, not a latency."""


class VirtualTime:
    """A ``duplex.pacing.Pacer`` for ``run_timeline`` that moves a ``VirtualClock`` deterministically."""

    SETTLE_ROUNDS = 50  # event-loop turns without any thread activity before the session counts as settled

    def __init__(self, clock: VirtualClock, guard_s: float = 10.0) -> None:
        self.clock = clock
        self.guard_s = guard_s  # wall seconds one settling may take before it is called a hang
        self._jobs: list[_Job] = []
        self._hops = 0
        self._activity = 0
        self._cond = threading.Condition()
        self._closed = False
        self._order = itertools.count()

    @asynccontextmanager
    async def attached(self) -> AsyncIterator[VirtualTime]:
        """Follow the running loop's thread jobs and hops while inside (start the session inside it)."""
        loop = asyncio.get_running_loop()
        run_in_executor, call_soon_threadsafe = loop.run_in_executor, loop.call_soon_threadsafe

        def tracked_run_in_executor(executor, func, *args):
            job = _Job(self, getattr(func, "__qualname__", repr(func)), self.clock.now(), next(self._order))
            with self._cond:
                self._jobs.append(job)
                self._activity += 1

            def run():
                _current.job = job
                job.started = True
                try:
                    return func(*args)
                finally:
                    job.thread_done = True
                    _current.job = None

            future = run_in_executor(executor, run)
            future.add_done_callback(lambda _: self._delivered(job))
            return future

        def tracked_call_soon_threadsafe(callback, *args, context=None):
            with self._cond:
                self._hops += 1
                self._activity += 1

            def land():
                with self._cond:
                    self._hops -= 1
                    self._activity += 1
                callback(*args)

            return call_soon_threadsafe(land, context=context)

        # setattr: patching this loop object's methods on purpose (the del below restores the class's)
        setattr(loop, "run_in_executor", tracked_run_in_executor)
        setattr(loop, "call_soon_threadsafe", tracked_call_soon_threadsafe)
        try:
            yield self
        finally:
            del loop.run_in_executor, loop.call_soon_threadsafe
            with self._cond:  # threads still parked (a cancelled answer) go on at once: none waits for ever
                self._closed = True
                for job in self._jobs:
                    job.parked = False
                self._cond.notify_all()

    # --- thread side ---------------------------------------------------------------------------------

    def park(self, job: _Job, seconds: float) -> None:
        with self._cond:
            job.cursor += max(0.0, seconds)
            if self._closed or job.cursor <= self.clock.now():
                return
            job.parked = True
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: not job.parked, timeout=4 * self.guard_s):
                job.parked = False
                raise SettleTimeout(f"{job.name} parked at {job.cursor:.3f} s; the clock never got there")

    # --- loop side -----------------------------------------------------------------------------------

    def _delivered(self, job: _Job) -> None:
        with self._cond:
            job.delivered = True
            self._activity += 1
            self._jobs = [j for j in self._jobs if not (j.delivered and (j.thread_done or not j.started))]

    def _holding(self) -> list[_Job]:
        with self._cond:
            return [job for job in self._jobs if job.holds_time]

    def _settled(self) -> bool:
        return not self._hops and not self._holding()

    async def settle(self) -> None:
        """Return once no thread job runs, every result is on the loop and the loop has run dry of them."""
        give_up = time.perf_counter() + self.guard_s
        while True:
            while not self._settled():
                if time.perf_counter() > give_up:
                    raise SettleTimeout(f"still running after {self.guard_s:g} s of wall time: "
                                        f"{[job.name for job in self._holding()]}, {self._hops} hop(s) in flight")
                await asyncio.sleep(0.0005)
            seen = self._activity
            for _ in range(self.SETTLE_ROUNDS):
                await asyncio.sleep(0)
            if seen == self._activity and self._settled():
                return

    def _release_one(self) -> bool:
        """Wake the parked job that is due first (the earliest submitted among equals): one at a time, so
        that two threads due at the same instant never race to the loop."""
        with self._cond:
            due = [job for job in self._jobs if job.parked and job.cursor <= self.clock.now() + 1e-9]
            if not due:
                return False
            min(due, key=lambda job: (job.cursor, job.order)).parked = False
            self._cond.notify_all()
        return True

    def _next_due(self) -> float | None:
        with self._cond:
            due = [job.cursor for job in self._jobs if job.parked]
        deadline = self.clock.next_deadline()
        if deadline is not None:
            due.append(deadline)
        return min(due) if due else None

    # --- the Pacer protocol --------------------------------------------------------------------------

    async def wait_until(self, clock, target: float) -> None:
        """Move to ``target``, stopping at every sleeper's deadline and parked job's end on the way."""
        await self.settle()
        while (due := self._next_due()) is not None and due <= target + 1e-9:
            self.clock.move_to(due)  # the sleepers due wake in their order
            await self.settle()
            while self._release_one():
                await self.settle()
        self.clock.move_to(target)
        await self.settle()

    async def after_block(self, samples_pushed: int) -> None:
        await self.settle()
