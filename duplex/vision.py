"""The camera side of a session: sample frames, analyse them off the event loop, attach them to queries.

Transports hand frames to ``DuplexSession.push_image``; this module samples them (often while the user
speaks, rarely when idle), describes them one at a time with a ``FrameDescriber`` on a low-priority
thread, and keeps the last few in ``RecentFrames``. When the listener judges a segment, the descriptions of
the frames around it become the segment's visual context: the state decision and the answer both see it.

A frame that arrives while another is being analysed waits in a single slot; a newer one replaces it (the
latest frame wins), so a busy machine drops frames instead of queueing them, and the audio path never
waits for the camera.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from duplex.camera_frames import (
    ENCODED_TYPES,
    BadFrame,
    check_frame,
    decode_image,
    frame_change,
    thumbnail,
    to_rgb,
)
from duplex.clock import Clock
from duplex.events import ErrorEvent, Event, VisionDescribed, VisionFrame, VisionStale
from duplex.models import FrameDescriber
from duplex.options import DuplexOptions
from duplex.view_reference import MOMENT_BEFORE

RawFrame = np.ndarray | bytes  # pixels, or an encoded image decoded on the vision thread

log = logging.getLogger("duplex.vision")

MAX_CAPTURE_DELAY_S = 5.0  # a frame "captured" longer ago than this was stamped on another clock


@dataclass
class SeenFrame:
    frame_id: int
    time: float  # when it was captured, on the session clock
    frame: np.ndarray  # RGB uint8, downscaled to vision_max_side
    thumbnail: np.ndarray
    description: str = ""
    changed: bool = True


class RecentFrames:
    """The last few analysed frames, oldest first."""

    def __init__(self, size: int) -> None:
        self._frames: deque[SeenFrame] = deque(maxlen=max(1, size))

    def add(self, frame: SeenFrame) -> None:
        self._frames.append(frame)

    def latest(self) -> SeenFrame | None:
        return self._frames[-1] if self._frames else None

    def __len__(self) -> int:
        return len(self._frames)

    def __iter__(self):
        return iter(list(self._frames))


class VisionInput:
    """Samples, analyses and remembers camera frames for one session."""

    def __init__(self, describer: FrameDescriber | None, publish: Callable[[Event], None], clock: Clock,
                 options: DuplexOptions, user_speaking: Callable[[], bool],
                 audio_busy: Callable[[], bool] = lambda: False) -> None:
        self.describer = describer
        self.publish, self.clock, self.options = publish, clock, options
        self.user_speaking, self.audio_busy = user_speaking, audio_busy
        self.frames = RecentFrames(options.vision_recent_frames)
        # One thread at normal priority: a low-priority thread that holds the GIL would stall the event loop.
        # A describer that needs the CPU for long should do its work in a process of its own (as the
        # assistant's experts do, at idle priority: assistant/vision/process.py).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vision")
        self._waiting: tuple[int, RawFrame, float] | None = None  # the one frame waiting for the thread
        self._busy = False
        self._analysing_captured = 0.0  # capture time of the frame being analysed
        self._idle: asyncio.Event | None = None
        self._frame_counter = 0
        self._last_taken_at: float | None = None
        self._last_received_at: float | None = None
        self._stale_reported = False
        self._tasks: set[asyncio.Task] = set()
        self._watch: asyncio.Task | None = None
        self.received = 0  # every push
        self.sampled_out = 0  # arrived sooner than the sampling interval
        self.dropped = 0  # taken, then replaced by a newer frame before the thread was free
        self.rejected = 0  # bad input
        self._last_rejection: tuple[str, float] = ("", 0.0)
        self._describer_paused = False
        self._timestamp_warned = False
        self.closed = False

    # --- input (event loop) ----------------------------------------------------------------------

    def push(self, image: RawFrame, timestamp: float | None = None) -> None:
        if self.closed:
            return
        now = self.clock.now()
        self.received += 1
        if self._stale_reported:
            log.info("camera frames arrive again")
        self._last_received_at, self._stale_reported = now, False
        self._ensure_watch()
        try:
            width, height = check_frame(image, self.options.vision_max_input_pixels)
        except BadFrame as error:
            self._reject(str(error))
            return
        opts = self.options
        interval = opts.vision_speech_interval_s if self.user_speaking() else opts.vision_idle_interval_s
        if self._last_taken_at is not None and now - self._last_taken_at < interval:
            self.sampled_out += 1
            return
        self._last_taken_at = now
        self._frame_counter += 1
        captured = now if timestamp is None else min(float(timestamp), now)
        if now - captured > MAX_CAPTURE_DELAY_S:  # another time base (media time, epoch): arrival time it is
            if not self._timestamp_warned:
                self._timestamp_warned = True
                log.warning("camera timestamps (%.1f) are not on the session clock (%.1f); using arrival times",
                            captured, now)
            captured = now
        self.publish(VisionFrame(time=now, frame_id=self._frame_counter, width=width, height=height))
        if self._busy:
            if self._waiting is not None:
                self.dropped += 1
            self._waiting = (self._frame_counter, image, captured)
            return
        self._start(self._frame_counter, image, captured)

    def _reject(self, reason: str) -> None:
        self.rejected += 1
        now = self.clock.now()
        if reason == self._last_rejection[0] and now - self._last_rejection[1] < 5.0:
            return  # a broken source sends the same bad frame many times a second: say it once in a while
        self._last_rejection = (reason, now)
        log.warning("camera frame dropped: %s", reason)
        self.publish(ErrorEvent(time=self.clock.now(), worker="vision", message=f"camera frame dropped: {reason}",
                                recovered=True))

    def _start(self, frame_id: int, image: RawFrame, captured: float) -> None:
        self._busy, self._analysing_captured = True, captured
        if self._idle is not None:
            self._idle.clear()
        task = asyncio.get_running_loop().create_task(self._analyse(frame_id, image, captured))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _analyse(self, frame_id: int, image: RawFrame, captured: float) -> None:
        waited = 0.0
        while self.audio_busy() and waited < self.options.vision_yield_to_audio_s:
            await self.clock.sleep(0.05)  # the ASR and the decision first: they decide when the answer starts
            waited += 0.05
        if self._waiting is not None:  # a newer frame came meanwhile: the latest wins
            (frame_id, image, captured), self._waiting = self._waiting, None
            self.dropped += 1
            self._analysing_captured = captured
        previous = self.frames.latest()
        try:
            seen, analyse_ms = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._analyse_in_thread, frame_id, image, captured, previous)
        except BadFrame as error:
            self._reject(str(error))
        except Exception as error:  # a describer that fails on one frame must not end the session
            log.warning("describing camera frame %d failed: %s: %s", frame_id, type(error).__name__, error)
            self.publish(ErrorEvent(time=self.clock.now(), worker="vision",
                                    message=f"describing a camera frame failed: {type(error).__name__}: {error}",
                                    recovered=True))
        else:
            self.frames.add(seen)
            if self.describer is not None:
                self.publish(VisionDescribed(time=self.clock.now(), frame_id=frame_id, text=seen.description,
                                             analyse_ms=analyse_ms, changed=seen.changed))
        finally:
            self._busy = False
            if self._waiting is not None and not self.closed:
                waiting, self._waiting = self._waiting, None
                self._start(*waiting)
            elif self._idle is not None:
                self._idle.set()

    def _analyse_in_thread(self, frame_id: int, image: RawFrame, captured: float,
                           previous: SeenFrame | None) -> tuple[SeenFrame, float]:
        started = time.perf_counter()
        if isinstance(image, ENCODED_TYPES):
            image = decode_image(image, self.options.vision_max_input_pixels)
        try:
            frame = to_rgb(image, self.options.vision_max_side)
        except (ValueError, TypeError, MemoryError) as error:
            raise BadFrame(f"frame {frame_id} could not be converted: {error}") from error
        small = thumbnail(frame)
        changed = frame_change(previous.thumbnail if previous else None, small) >= self.options.vision_change_threshold
        if self.describer is None:
            description = ""
        elif not changed and previous is not None and previous.description:
            description = previous.description  # the same view: describing it again would only cost CPU
        else:
            description = self.describer.describe(frame).strip()
        seen = SeenFrame(frame_id, captured, frame, small, description, changed)
        return seen, (time.perf_counter() - started) * 1000

    def audio_busy_changed(self, busy: bool) -> None:
        """The listener started (or finished) transcribing or deciding: a describer that can pause does,
        so the camera takes no CPU from the step that decides when the answer starts."""
        if busy == self._describer_paused:
            return
        action = getattr(self.describer, "pause" if busy else "resume", None)
        self._describer_paused = busy
        if callable(action):
            try:
                action()
            except Exception as error:  # noqa: BLE001 - pausing is an optimisation, never a failure
                log.warning("could not %s the describer: %s", "pause" if busy else "resume", error)

    # --- what a query gets -----------------------------------------------------------------------

    async def settle(self, start: float, end: float, timeout: float) -> None:
        """Wait (at most ``timeout``) for a frame of a query spoken from ``start`` to ``end`` that is still
        being analysed, but only when no view of that query is described yet: a busy describer must not
        delay every answer."""
        if not self._busy or timeout <= 0:
            return
        earliest = start - self.options.vision_context_s
        if any(earliest <= f.time <= end and f.description for f in self.frames):
            return
        pending = [self._analysing_captured] + ([self._waiting[2]] if self._waiting else [])
        if not any(earliest <= captured <= end for captured in pending):
            return
        if self._idle is None:
            self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def context(self, start: float, end: float) -> str:
        """What the camera showed around a query spoken from ``start`` to ``end`` ("" when nothing)."""
        opts = self.options
        described = [f for f in self.frames if f.description]
        window = [f for f in described if start - opts.vision_context_s <= f.time <= end]
        if not window:
            recent = [f for f in described if end - opts.vision_context_max_age_s <= f.time <= end]
            window = recent[-1:]
        texts: list[str] = []
        for seen in reversed(window):  # newest first, each distinct view once, at most two
            if seen.description not in texts:
                texts.append(seen.description)
            if len(texts) == 2:
                break
        if len(texts) == 2:
            return f"{texts[0]}{MOMENT_BEFORE}{texts[1]})"
        return texts[0] if texts else ""

    def newly_shown(self, start: float, end: float) -> bool:
        """The view changed around a query spoken from ``start`` to ``end``: a frame from ``vision_shown_s``
        before it began to its end is described otherwise than the frame before it (the user showed
        something, or moved it into view). The camera's first view is not a change."""
        described = [f for f in self.frames if f.description]
        earliest = start - self.options.vision_shown_s
        return any(earliest <= later.time <= end and later.description != earlier.description
                   for earlier, later in zip(described, described[1:]))

    # --- a camera that stops ---------------------------------------------------------------------

    def _ensure_watch(self) -> None:
        if self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(self._watch_stale(), name="vision-watch")

    async def _watch_stale(self) -> None:
        stale_s = self.options.vision_stale_s
        while True:
            await self.clock.sleep(max(0.2, stale_s / 4))
            last = self._last_received_at
            silent = self.clock.now() - last if last is not None else 0.0
            if last is not None and silent >= stale_s and not self._stale_reported:
                self._stale_reported = True
                log.warning("the camera sent no frame for %.1f s (last at %.1f s)", silent, last)
                self.publish(VisionStale(time=self.clock.now(), last_frame_time=last, silent_s=silent))

    async def close(self) -> None:
        self.closed = True
        self.audio_busy_changed(False)  # the describer may be shared: never leave it paused
        tasks = [*self._tasks, *([self._watch] if self._watch else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)
