"""The desktop app's device recovery with a sound driver that hangs (fakes; the real devices are in
tests/test_desktop_pulse.py).

PortAudio on a vanished PulseAudio server can block inside a call. The app must give up on such a call
and still exit: ``asyncio.run`` joins its default executor's threads on the way out, so a stuck call
there would hang the app forever (seen in CI: the app printed nothing more and never exited).
"""

from __future__ import annotations

import asyncio
import threading
import time

from ui.desktop import DesktopApp
from ui.desktop_options import DesktopOptions
from ui.sound_card import DeviceChoice, DeviceError

DEVICES = DeviceChoice(1, 1, 48000, 48000, "fake mic", "fake speakers")


class FakeCard:
    def __init__(self) -> None:
        self.closed = threading.Event()

    def close(self, timeout_s: float = 3.0) -> bool:
        self.closed.set()
        return True


def no_session(**_):
    raise AssertionError("these tests drive the device recovery alone: no session is made")


def quick_app(lines: list[str]) -> DesktopApp:
    options = DesktopOptions(reopen_for_s=3.0, reopen_every_s=0.05, open_timeout_s=0.3, close_timeout_s=0.2)
    return DesktopApp(no_session, options=options, write=lines.append)


def test_a_driver_call_that_never_returns_is_given_up_and_the_app_still_exits():
    lines: list[str] = []
    app = quick_app(lines)
    release = threading.Event()
    calls = []

    def stuck_reopen(devices):
        calls.append(devices)
        release.wait()  # the driver never answers (until the test ends)

    app._reopen_blocking = stuck_reopen
    outcome = {}

    def run_like_the_cli() -> None:
        outcome["reopened"] = asyncio.run(app._reopen(asyncio.Event(), DEVICES))  # asyncio.run, as run_desktop

    runner = threading.Thread(target=run_like_the_cli, daemon=True)
    began = time.monotonic()
    runner.start()
    runner.join(10.0)
    try:
        assert not runner.is_alive(), "asyncio.run did not return: a stuck driver call hangs the app's exit"
        assert outcome["reopened"] is False
        assert time.monotonic() - began < 3.0  # gave up after open_timeout_s, without waiting out reopen_for_s
        assert len(calls) == 1  # no second call racing the stuck one inside PortAudio
        assert app.report.abandoned_streams  # so run_desktop leaves with os._exit
        assert lines == ["reopening failed: the sound driver did not answer within 0.3 s"]
    finally:
        release.set()


def test_a_card_opened_after_giving_up_is_closed_not_left_playing():
    lines: list[str] = []
    app = quick_app(lines)
    release = threading.Event()
    card = FakeCard()

    def slow_reopen(devices):
        release.wait(5.0)
        return card

    app._reopen_blocking = slow_reopen

    async def scenario() -> None:
        assert await app._reopen(asyncio.Event(), DEVICES) is False
        assert not card.closed.is_set()
        release.set()
        deadline = time.monotonic() + 5.0
        while not card.closed.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert card.closed.is_set()
    assert app.card is None


def test_device_errors_are_retried_until_the_deadline_and_then_reported():
    lines: list[str] = []
    app = quick_app(lines)
    app.options.reopen_for_s = 0.5
    attempts = []

    def no_device(devices):
        attempts.append(time.monotonic())
        raise DeviceError("there is no default input device")

    app._reopen_blocking = no_device
    assert asyncio.run(app._reopen(asyncio.Event(), DEVICES)) is False
    assert len(attempts) >= 3  # kept trying every reopen_every_s
    assert not app.report.abandoned_streams
    assert lines == ["reopening failed: there is no default input device"]


def test_a_card_that_will_not_close_is_abandoned_with_a_warning():
    lines: list[str] = []
    app = quick_app(lines)
    release = threading.Event()

    class StuckCard(FakeCard):
        def close(self, timeout_s: float = 3.0) -> bool:
            release.wait()
            return True

    try:
        asyncio.run(app._close(StuckCard()))
        assert app.report.abandoned_streams
        assert lines == ["warning: the sound card did not close within 0.2 s; abandoned it"]
    finally:
        release.set()
