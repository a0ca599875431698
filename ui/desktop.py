"""``assistant desktop``: talk to the assistant through this computer's microphone and speakers.

Full duplex: the microphone stays open while the assistant speaks, so the user interrupts by talking.
On open speakers the microphone also hears the assistant: WebRTC's echo canceller (``audio/aec.py``), fed
the exact blocks sent to the speakers, removes it before the session hears the microphone; the duplex
core's own-voice check stays behind it as a second guard. ``--headphones`` skips the canceller.

A device that goes away mid-session (unplugged, the audio server restarted) is noticed within
``stall_s``; the app keeps trying to reopen it for ``reopen_for_s`` and then stops with a message. Ctrl-C
closes both streams and the session before exiting.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from audio.frames import AudioFrame
from duplex.session import DuplexSession
from ui.desktop_options import DesktopOptions
from ui.session_factory import SessionFactory
from ui.sound_card import DeviceChoice, DeviceError, SoundCard, choose_devices
from ui.terminal_view import TerminalView

T = TypeVar("T")
PUSH_BLOCK_S = 0.02  # the session's input queue is sized for 20 ms frames


@dataclass
class DesktopReport:
    """What a run did, for the exit message and for tests."""
    exit_code: int = 0
    stop_reason: str = ""
    devices: DeviceChoice | None = None
    reopened: int = 0
    echo_suppression_db: float | None = None  # while the assistant spoke; None in headphones mode
    overflows: int = 0
    underflows: int = 0
    longest_output_gap_s: float = 0.0
    abandoned_streams: bool = False  # a stream or driver call given up on: its thread may still be running
    lines: list[str] = field(default_factory=list)


class _MicForwarder:
    """PortAudio's input thread -> the session: batches cleaned 10 ms blocks into 20 ms frames and hands
    them to the event loop with ``call_soon_threadsafe`` (asyncio objects are not thread-safe)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, push: Callable[[AudioFrame], None]) -> None:
        self.loop, self.push = loop, push
        self._pending: list[np.ndarray] = []
        self._count = 0
        self.sent_s = 0.0
        self.listeners: list[Callable[[np.ndarray, np.ndarray, int], None]] = []  # tests, benchmarks

    def __call__(self, raw: np.ndarray, cleaned: np.ndarray, rate: int) -> None:
        for listener in self.listeners:
            listener(raw, cleaned, rate)
        self._pending.append(cleaned)
        self._count += len(cleaned)
        if self._count < int(rate * PUSH_BLOCK_S):
            return
        samples = np.concatenate(self._pending)
        self._pending, self._count = [], 0
        frame = AudioFrame(samples, rate, timestamp=self.sent_s)
        self.sent_s += len(samples) / rate
        try:
            self.loop.call_soon_threadsafe(self.push, frame)
        except RuntimeError:  # the loop closed while the stream was stopping
            pass


class DesktopApp:
    def __init__(self, new_session: SessionFactory, options: DesktopOptions | None = None,
                 write: Callable[[str], None] | None = None) -> None:
        """``new_session``: called once per run, at the speakers' rate."""
        self.new_session = new_session
        self.options = options or DesktopOptions()
        self.report = DesktopReport()
        self._write = write or (lambda line: print(line, flush=True))
        self.session: DuplexSession | None = None
        self.card: SoundCard | None = None
        self.forwarder: _MicForwarder | None = None
        self.card_rate = 0
        self.ready = asyncio.Event()  # set once the streams run (tests wait on it)

    def say(self, line: str) -> None:
        self.report.lines.append(line)
        self._write(line)

    async def run(self, stop: asyncio.Event) -> DesktopReport:
        """Run until ``stop`` is set or the devices are gone for good."""
        options = self.options
        loop = asyncio.get_running_loop()
        devices = choose_devices(options.input_device, options.output_device, options.sample_rate)
        self.report.devices = devices
        self.session = self.new_session(output_sample_rate=devices.output_rate)
        view = TerminalView(self.session, self.say, show_workers=options.show_workers)
        view_task = asyncio.create_task(view.run(), name="terminal-view")
        await self.session.start()
        self.forwarder = _MicForwarder(loop, self.session.push_audio)
        try:
            self.card = self._open(devices)
            self.card_rate = self.card.rate  # what the session and ``forwarder.listeners`` receive
            mode = "headphones, no echo canceller" if options.headphones else "open speakers, echo canceller on"
            self.say(f"listening: {devices.describe()} ({mode}). Speak; Ctrl-C quits.")
            self.ready.set()
            await self._watch(stop, devices)
        finally:
            await self._shutdown(view_task)
        return self.report

    def _open(self, devices: DeviceChoice) -> SoundCard:
        assert self.session is not None and self.forwarder is not None  # run() makes both before any card
        card = SoundCard(devices, self.session.output.read, self.forwarder, headphones=self.options.headphones,
                         block_s=self.options.block_s, latency=self.options.latency)
        card.start()
        return card

    async def _watch(self, stop: asyncio.Event, devices: DeviceChoice) -> None:
        """Poll the streams' health; on a failure, reopen (same devices and rates) or give up cleanly."""
        options = self.options
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=0.25)
                break
            except asyncio.TimeoutError:
                pass
            problem = self.card.problem(options.stall_s) if self.card is not None else "no sound card"
            if problem is None:
                continue
            self.say(f"audio device problem: {problem}; trying to reopen for {options.reopen_for_s:.0f} s")
            await self._close_card()
            if not await self._reopen(stop, devices):
                if not stop.is_set():
                    self.report.exit_code = 1
                    self.report.stop_reason = f"the sound device did not come back: {problem}"
                    self.say(f"stopping: {self.report.stop_reason}")
                return

    async def _reopen(self, stop: asyncio.Event, devices: DeviceChoice) -> bool:
        deadline = time.monotonic() + self.options.reopen_for_s
        last_error = ""
        while time.monotonic() < deadline and not stop.is_set():
            try:
                # Re-list the devices (PortAudio lists them once) and open the same ones at the same rates;
                # a card that opens after the timeout is closed (timeout 0: close starts its thread and returns).
                card = await self._device_call(self._reopen_blocking, devices, timeout_s=self.options.open_timeout_s,
                                               discard=lambda late_card: late_card.close(timeout_s=0))
                # A stream can open on a dead server and never deliver: trust it once audio flows.
                await asyncio.sleep(min(1.0, self.options.stall_s))
                problem = card.problem(self.options.stall_s / 2)
                if problem is None and card.input_blocks > 0 and card.output_blocks > 0:
                    self.card = card
                    self.report.reopened += 1
                    self.say("audio device back: listening again")
                    return True
                last_error = problem or "no audio flowing"
                await self._close(card)
            except DeviceError as error:
                last_error = str(error)
            except asyncio.TimeoutError:
                # PortAudio is not thread-safe: while that call is stuck in it, another one would race it.
                last_error = f"the sound driver did not answer within {self.options.open_timeout_s:g} s"
                break
            await asyncio.sleep(self.options.reopen_every_s)
        if last_error:
            self.say(f"reopening failed: {last_error}")
        return False

    async def _device_call(self, work: Callable[..., T], *args, timeout_s: float,
                           discard: Callable[[T], object] | None = None) -> T:
        """Run a blocking sound-driver call off the loop; give up on it after ``timeout_s``.

        A daemon thread, not the loop's default executor: ``asyncio.run`` joins the executor's threads on
        the way out, so one call stuck in the driver (PortAudio on a vanished server can block) would hang
        the app's exit. A call given up on marks the report, and the app then leaves with ``os._exit``; what
        it returns after all goes to ``discard`` (a sound card opened too late is closed, not left playing)."""
        finished: concurrent.futures.Future = concurrent.futures.Future()

        def call() -> None:
            try:
                finished.set_result(work(*args))
            except BaseException as error:  # handed to the awaiting task
                finished.set_exception(error)

        threading.Thread(target=call, name="sound-driver-call", daemon=True).start()
        result = asyncio.wrap_future(finished)  # settled on the loop; dropped if the loop has closed meanwhile
        try:
            return await asyncio.wait_for(asyncio.shield(result), timeout_s)
        except asyncio.TimeoutError:
            self.report.abandoned_streams = True

            def late(future: asyncio.Future) -> None:
                if future.exception() is None and discard is not None:  # a late error is not news
                    discard(future.result())

            result.add_done_callback(late)
            raise

    def _reopen_blocking(self, devices: DeviceChoice) -> SoundCard:
        from ui.sound_card import _sd

        sd = _sd()
        sd._terminate()  # re-list: a device that came back may have a new index
        sd._initialize()
        again = choose_devices(self.options.input_device, self.options.output_device, devices.output_rate)
        if again.output_rate != devices.output_rate:
            raise DeviceError(f"the speakers came back at {again.output_rate} Hz, not {devices.output_rate} Hz")
        return self._open(again)

    def _keep_stats(self, card: SoundCard | None) -> None:
        if card is None:
            return
        self.report.overflows += card.overflows
        self.report.underflows += card.underflows
        self.report.longest_output_gap_s = max(self.report.longest_output_gap_s, card.longest_output_gap_s)
        stats = getattr(card.canceller, "stats", None)
        if stats is not None and stats.suppression_db is not None:
            self.report.echo_suppression_db = stats.suppression_db

    async def _close_card(self) -> None:
        card, self.card = self.card, None
        if card is None:
            return
        self._keep_stats(card)
        await self._close(card)

    async def _close(self, card: SoundCard) -> None:
        timeout_s = self.options.close_timeout_s
        try:
            closed = await self._device_call(card.close, timeout_s, timeout_s=timeout_s + 1.0)
        except asyncio.TimeoutError:
            closed = False
        if not closed:
            self.report.abandoned_streams = True
            self.say(f"warning: the sound card did not close within {timeout_s:g} s; abandoned it")

    async def _shutdown(self, view_task: asyncio.Task) -> None:
        await self._close_card()
        if self.session is not None:
            await self.session.close()
        await asyncio.sleep(0)  # let the view print the last events
        view_task.cancel()
        await asyncio.gather(view_task, return_exceptions=True)
        if self.report.echo_suppression_db is not None:
            self.say(f"echo canceller: {self.report.echo_suppression_db:.1f} dB removed while the assistant spoke "
                     "(after its first 2 s of adapting)")
        if self.report.underflows or self.report.overflows:
            self.say(f"sound card: {self.report.underflows} output underruns, {self.report.overflows} input "
                     f"overruns, callbacks up to {1000 * self.report.longest_output_gap_s:.0f} ms apart (a busy CPU)")
        self.say("stopped: sound devices closed")


def list_devices() -> str:
    from ui.sound_card import describe_devices

    return describe_devices()


def run_desktop(new_session: SessionFactory, options: DesktopOptions) -> int:
    """Run the app until Ctrl-C (SIGINT) or SIGTERM; returns the exit status."""

    async def main() -> DesktopReport:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        app = DesktopApp(new_session, options)
        return await app.run(stop)

    report = asyncio.run(main())
    if report.abandoned_streams:
        # A driver thread that would not stop (PortAudio on a vanished PulseAudio server can spin) would also
        # hang sounddevice's exit handler: leave now, the streams and the session are already closed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(report.exit_code)
    return report.exit_code

