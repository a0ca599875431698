"""A chat server on fast fake models, for the transport tests (a real aiortc peer calls it; the real
models in a real browser: test_webrtc_browser.py). The ``make_server`` fixture (conftest.py) starts them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from duplex.bus import EventLog
from duplex.models import WorkerModels
from duplex.options import DuplexOptions
from duplex.session import DuplexSession
from tests.fakes import (
    BeepSynthesizer,
    EnergyVad,
    KeywordDecider,
    PitchRecognizer,
    ScriptedLLM,
)
from ui.webrtc.server import ChatServer


class FakeSessionFactory:
    """A ``ui.session_factory.SessionFactory`` on fake models; keeps every session it made."""

    def __init__(self, answer_words: int = 12) -> None:
        self.answer_words = answer_words
        self.sessions: list[DuplexSession] = []

    def __call__(self, *, output_sample_rate: int, event_log_path: Path | None = None,
                 keep_event_records: bool = True) -> DuplexSession:
        models = WorkerModels(PitchRecognizer(), ScriptedLLM(extra_words=self.answer_words, delay_s=0.01),
                              BeepSynthesizer())
        session = DuplexSession(models, KeywordDecider(), EnergyVad,
                                DuplexOptions(output_sample_rate=output_sample_rate),
                                event_log=EventLog(event_log_path, keep=keep_event_records))
        self.sessions.append(session)
        return session


def base(server: ChatServer) -> str:
    return f"http://127.0.0.1:{server.port}"


async def wait_until(condition, timeout: float = 10.0, describe=None) -> None:
    """Poll ``condition``; on timeout the error carries ``describe()``, what was still left."""
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met in time: {describe() if describe else ''}")


SESSION_THREAD_PREFIXES = ("worker-", "vad", "vision")  # the workers', the VAD's and the camera's pools


def threads_started_from_now(prefixes: tuple[str, ...] = SESSION_THREAD_PREFIXES) -> Callable[[], list[str]]:
    """A probe naming the live threads with these prefixes that were started after this call: an earlier
    test's pools, still winding down, are not this test's."""
    earlier = {t.ident for t in threading.enumerate()}

    def started() -> list[str]:
        return [t.name for t in threading.enumerate() if t.ident not in earlier and t.name.startswith(prefixes)]
    return started
