"""How a scripted timeline's time passes: in real time, or on a virtual clock as fast as the machine allows.

``run_timeline`` asks its pacer to wait before each 20 ms block and to let the session settle after it.

- ``ClockPacer`` (the default) sleeps on the session's clock: with a ``RealClock`` that is real time.
- ``VirtualPacer`` drives a ``ManualClock``. The session's model work (ASR, state decision, LLM, TTS) runs in
  threads and takes real time, so the virtual clock cannot simply jump: a ``WorkMeter`` counts the model calls
  in flight. While none is, time skips ahead without sleeping (silence, a user talking, the assistant's voice
  playing out of its queue). While one is, blocks are paced in real time, so every model call is charged its
  measured wall time. Latencies on the virtual clock are therefore "the session's own processing time plus
  its timers"; what they do not contain is CPU contention from work the virtual run skipped (a live
  microphone thread, a transport), and a thread's result reaching the event loop a millisecond or two after
  the call returned may be stamped up to one block (20 ms) late.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

from duplex.clock import Clock, ManualClock


class Pacer(Protocol):
    async def wait_until(self, clock: Clock, target: float) -> None:
        """Return when the session clock reads ``target`` (the start of the next block)."""

    async def after_block(self, samples_pushed: int) -> None:
        """Called after each block is pushed; ``samples_pushed`` counts 16 kHz microphone samples so far."""


class ClockPacer:
    """Real time (or whatever the clock's ``sleep`` does)."""

    async def wait_until(self, clock: Clock, target: float) -> None:
        await clock.sleep(target - clock.now())

    async def after_block(self, samples_pushed: int) -> None:
        return None


class WorkMeter:
    """Counts model calls in flight across threads, and the microphone samples the VAD has scored."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = 0
        self.calls_finished = 0  # changes whenever a call ends: its result may still be on its way to the loop
        self.busy_wall_s = 0.0
        self.vad_samples = 0
        self._busy_since: float | None = None

    @property
    def busy(self) -> bool:
        return self.in_flight > 0

    def begin(self) -> None:
        with self._lock:
            if self.in_flight == 0:
                self._busy_since = time.perf_counter()
            self.in_flight += 1

    def end(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self.calls_finished += 1
            if self.in_flight == 0 and self._busy_since is not None:
                self.busy_wall_s += time.perf_counter() - self._busy_since
                self._busy_since = None

    def call(self, function, *args, **kwargs):
        self.begin()
        try:
            return function(*args, **kwargs)
        finally:
            self.end()

    def stream(self, iterator: Iterator[Any]) -> Iterator[Any]:
        """A generator that counts as in flight from its first item until it is exhausted or closed."""
        self.begin()
        try:
            yield from iterator
        finally:
            self.end()


class _Metered:
    """Delegates everything to ``inner``; the named methods are counted by the meter."""

    def __init__(self, inner: Any, meter: WorkMeter) -> None:
        self._inner, self._meter = inner, meter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class MeteredRecognizer(_Metered):
    def transcribe(self, *args, **kwargs):
        return self._meter.call(self._inner.transcribe, *args, **kwargs)


class MeteredLanguageModel(_Metered):
    def stream_chat(self, *args, **kwargs):
        return self._meter.stream(self._inner.stream_chat(*args, **kwargs))

    def prepare(self, *args, **kwargs):  # reading ahead in idle time is model work too
        return self._meter.call(self._inner.prepare, *args, **kwargs)


class MeteredSynthesizer(_Metered):
    def synthesize(self, *args, **kwargs):
        return self._meter.stream(self._inner.synthesize(*args, **kwargs))


class MeteredDecider(_Metered):
    def decide(self, *args, **kwargs):
        return self._meter.call(self._inner.decide, *args, **kwargs)


class MeteredDescriber(_Metered):
    def describe(self, *args, **kwargs):
        return self._meter.call(self._inner.describe, *args, **kwargs)


class CountingVad(_Metered):
    """Counts the samples scored, so the pacer knows when the VAD thread has caught up with the microphone."""

    def speech_probability(self, frame):
        probability = self._inner.speech_probability(frame)
        self._meter.vad_samples += len(frame)
        return probability


def meter_session(session, meter: WorkMeter) -> None:
    """Count ``session``'s model calls with ``meter``; the session's own code path is unchanged."""
    from duplex.models import WorkerModels

    wrapped: dict[int, WorkerModels] = {}
    for worker in session.workers:
        models = worker.models
        if id(models) not in wrapped:
            wrapped[id(models)] = WorkerModels(MeteredRecognizer(models.recognizer, meter),
                                               MeteredLanguageModel(models.language_model, meter),
                                               MeteredSynthesizer(models.synthesizer, meter))
        worker.models = wrapped[id(models)]
    session.hearing.decider = MeteredDecider(session.hearing.decider, meter)
    if session.vision.describer is not None:  # the camera's analysis is model work too
        session.vision.describer = MeteredDescriber(session.vision.describer, meter)
    session.input.vad = CountingVad(session.input.vad, meter)


class VirtualPacer:
    """Drive a ``ManualClock``: skip ahead while no model call is in flight, real time while one is."""

    SETTLE_ROUNDS = 20  # event-loop turns for a woken task and what it triggers to run before time moves on

    def __init__(self, clock: ManualClock, meter: WorkMeter, block_s: float = 0.02,
                 vad_frame_samples: int = 512, vad_wait_limit_s: float = 2.0) -> None:
        self.clock, self.meter, self.block_s = clock, meter, block_s
        self.vad_frame_samples = vad_frame_samples
        self.vad_wait_limit_s = vad_wait_limit_s
        self.charged_s = 0.0  # virtual seconds that followed the wall clock because a model call was in flight
        self.skipped_s = 0.0  # virtual seconds that passed without waiting
        self._last_wall = time.perf_counter()
        self._seen_finished = 0

    async def wait_until(self, clock: Clock, target: float) -> None:
        now = self.clock.now()
        if self.meter.busy:
            # Model work is running: the clock follows the wall clock, as a real one would. When the driver
            # lags (a loaded machine), the clock runs ahead of the blocks and the next ones catch up unpaced,
            # exactly as they do in real time.
            follow = now + (time.perf_counter() - self._last_wall)
            if follow < target:
                await asyncio.sleep(target - follow)
                follow = target
            step = follow - now
            self.charged_s += step
        else:
            step = max(0.0, target - now)
            self.skipped_s += step
        self._last_wall = time.perf_counter()
        if step > 0:
            await self.clock.advance(step)
        await self._settle()

    async def after_block(self, samples_pushed: int) -> None:
        # The VAD thread scores complete 32 ms frames: wait until it has scored everything pushed so far.
        expected = samples_pushed // self.vad_frame_samples * self.vad_frame_samples
        deadline = time.perf_counter() + self.vad_wait_limit_s
        while self.meter.vad_samples < expected and time.perf_counter() < deadline:
            await asyncio.sleep(0.0005)
        await asyncio.sleep(0.0005)  # its result hops onto the loop just after the last frame is scored
        await self._settle()

    async def _settle(self) -> None:
        if self.meter.calls_finished != self._seen_finished:
            self._seen_finished = self.meter.calls_finished
            await asyncio.sleep(0.002)  # a call just ended: let its result reach the loop before time moves
        for _ in range(self.SETTLE_ROUNDS):
            await asyncio.sleep(0)
