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
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from duplex.clock import Clock
from duplex.events import ErrorEvent, Event, VisionDescribed, VisionFrame, VisionStale
from duplex.options import DuplexOptions

log = logging.getLogger("duplex.vision")

THUMBNAIL_SIDE = 32  # change detection compares frames at this size


class FrameDescriber(Protocol):
    """Turns one RGB frame into a short text the language model can use (experts, a VLM, ...)."""

    name: str

    def describe(self, frame: np.ndarray) -> str:
        """Blocking (runs a model): called from the vision thread with an RGB uint8 HxWx3 array."""


class BadFrame(ValueError):
    """A frame that cannot be used; the message says why, for the log."""


def check_frame(image: object, max_pixels: int) -> None:
    """Cheap checks done on the event loop before a frame is taken (no pixel is touched)."""
    if not isinstance(image, np.ndarray):
        raise BadFrame(f"a frame must be a numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise BadFrame(f"a frame must be HxW, HxWx3 or HxWx4, got shape {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise BadFrame(f"a frame of {image.shape[1]}x{image.shape[0]} pixels is empty")
    if image.shape[0] * image.shape[1] > max_pixels:
        raise BadFrame(f"a frame of {image.shape[1]}x{image.shape[0]} pixels is larger than the "
                       f"{max_pixels / 1e6:g} MP limit (vision_max_input_pixels)")
    if not (image.dtype == np.uint8 or image.dtype == np.bool_ or np.issubdtype(image.dtype, np.floating)
            or image.dtype == np.uint16):
        raise BadFrame(f"a frame must be uint8 (or uint16, float in 0-1), got {image.dtype}")


def to_rgb(image: np.ndarray, max_side: int) -> np.ndarray:
    """Any accepted frame as RGB uint8 HxWx3, downscaled so its longer side is at most ``max_side``."""
    step = int(np.ceil(max(image.shape[:2]) / max_side))
    if step > 1:  # striding first keeps the conversion of an enormous frame cheap
        image = image[::step, ::step]
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif image.dtype != np.uint8:
        floats = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        image = (np.clip(floats, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]  # the alpha channel says nothing about the scene
    return np.ascontiguousarray(image)


def thumbnail(frame: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """A small grey version for change detection (block means, float 0-1)."""
    grey = frame.astype(np.float32).mean(axis=2) / 255.0
    rows = np.array_split(np.arange(grey.shape[0]), min(side, grey.shape[0]))
    cols = np.array_split(np.arange(grey.shape[1]), min(side, grey.shape[1]))
    row_means = np.stack([grey[r].mean(axis=0) for r in rows])
    return np.stack([row_means[:, c].mean(axis=1) for c in cols], axis=1)


def frame_change(previous: np.ndarray | None, current: np.ndarray) -> float:
    """Mean absolute difference of two thumbnails (0 same, 1 opposite); 1.0 when there is nothing to compare."""
    if previous is None or previous.shape != current.shape:
        return 1.0
    return float(np.mean(np.abs(previous - current)))


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

    def between(self, start: float, end: float) -> list[SeenFrame]:
        return [f for f in self._frames if start <= f.time <= end]

    def __len__(self) -> int:
        return len(self._frames)

    def __iter__(self):
        return iter(list(self._frames))


def _lower_priority() -> None:
    """Vision thread initialiser: let audio, ASR and the LLM have the CPU first (Linux: per-thread nice)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass


class VisionInput:
    """Samples, analyses and remembers camera frames for one session."""

    def __init__(self, describer: FrameDescriber | None, publish: Callable[[Event], None], clock: Clock,
                 options: DuplexOptions, user_speaking: Callable[[], bool]) -> None:
        self.describer = describer
        self.publish, self.clock, self.options = publish, clock, options
        self.user_speaking = user_speaking
        self.frames = RecentFrames(options.vision_recent_frames)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vision", initializer=_lower_priority)
        self._waiting: tuple[int, np.ndarray, float] | None = None  # the one frame waiting for the thread
        self._busy = False
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
        self.closed = False

    # --- input (event loop) ----------------------------------------------------------------------

    def push(self, image: np.ndarray, timestamp: float | None = None) -> None:
        if self.closed:
            return
        now = self.clock.now()
        self.received += 1
        if self._stale_reported:
            log.info("camera frames arrive again")
        self._last_received_at, self._stale_reported = now, False
        self._ensure_watch()
        try:
            check_frame(image, self.options.vision_max_input_pixels)
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
        self.publish(VisionFrame(time=now, frame_id=self._frame_counter, width=int(image.shape[1]),
                                 height=int(image.shape[0])))
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

    def _start(self, frame_id: int, image: np.ndarray, captured: float) -> None:
        self._busy = True
        if self._idle is not None:
            self._idle.clear()
        task = asyncio.get_running_loop().create_task(self._analyse(frame_id, image, captured))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _analyse(self, frame_id: int, image: np.ndarray, captured: float) -> None:
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

    def _analyse_in_thread(self, frame_id: int, image: np.ndarray, captured: float,
                           previous: SeenFrame | None) -> tuple[SeenFrame, float]:
        started = time.perf_counter()
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

    # --- what a query gets -----------------------------------------------------------------------

    async def settle(self, timeout: float) -> None:
        """Wait (at most ``timeout``) for the frame being analysed, so a query sees the newest view."""
        if not self._busy or timeout <= 0:
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
            return f"{texts[0]} (a moment before: {texts[1]})"
        return texts[0] if texts else ""

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
        tasks = [*self._tasks, *([self._watch] if self._watch else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)
