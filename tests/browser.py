"""Debian's chromium driven by Playwright, with fake media devices, for tests of the browser chat.

The fake microphone plays a WAV file once (``%noloop``), starting at getUserMedia; the fake camera shows
Chromium's moving test pattern. The file must be 16-bit PCM: a 24-bit one silently yields silence.
"""

from __future__ import annotations

import shutil
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def write_microphone_wav(path: Path, pieces: list[tuple[float, np.ndarray]], duration: float,
                         rate: int = 16000) -> Path:
    """Place float32 mono ``pieces`` (start second, samples at ``rate``) on a silent track of ``duration``."""
    signal = np.zeros(int(duration * rate), dtype=np.float32)
    for start, samples in pieces:
        a = int(start * rate)
        b = min(len(signal), a + len(samples))
        signal[a:b] += samples[: b - a]
    soundfile.write(path, np.clip(signal, -1, 1), rate, subtype="PCM_16")
    return path


@asynccontextmanager
async def chromium(microphone_wav: Path | None = None):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/setup.sh installs Debian's package)")
    from playwright.async_api import async_playwright

    args = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            "--autoplay-policy=no-user-gesture-required", "--allow-loopback-in-peer-connection"]
    if microphone_wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={microphone_wav.resolve()}%noloop")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield browser
        finally:
            await browser.close()


async def open_call(browser, url: str, **query: str):
    """A page that starts the call at once, with raw audio (no voice processing) and a level history."""
    page = await browser.new_page()
    params = {"raw": "1", "meter": "1", "autostart": "1", **query}
    await page.goto(url + "".join(f"&{k}={v}" for k, v in params.items()))
    await page.wait_for_function("() => window.assistantCall && window.assistantCall.state === 'connected'",
                                 timeout=15000)
    return page


async def wait_for_event(page, predicate_js: str, timeout_s: float) -> dict:
    """Wait until an event the page received satisfies ``predicate_js`` (a JS expression over ``e``)."""
    await page.wait_for_function(f"() => window.assistantCall.events.some(e => {predicate_js})",
                                 timeout=timeout_s * 1000)
    return await page.evaluate(f"() => window.assistantCall.events.find(e => {predicate_js})")


async def page_events(page) -> list[dict]:
    return await page.evaluate("() => window.assistantCall.events")


async def levels(page, side: str) -> list[tuple[float, float]]:
    """[(page time ms, dBFS)] every ~10 ms of the microphone ('local') or the assistant's voice ('remote')."""
    return [tuple(x) for x in await page.evaluate(f"() => window.assistantCall.meter.{side}")]


def first_time_above(history: list[tuple[float, float]], after_ms: float, threshold_db: float = -50.0):
    return next((t for t, db in history if t >= after_ms and db > threshold_db), None)


def speech_spans(history: list[tuple[float, float]], threshold_db: float = -50.0, min_gap_ms: float = 400.0):
    """[(start ms, end ms)] of stretches above ``threshold_db``, bridging gaps shorter than ``min_gap_ms``."""
    spans: list[list[float]] = []
    for t, db in history:
        if db > threshold_db:
            if spans and t - spans[-1][1] < min_gap_ms:
                spans[-1][1] = t
            else:
                spans.append([t, t])
    return [tuple(s) for s in spans]
