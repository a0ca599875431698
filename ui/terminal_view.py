"""A terminal view of a live session: the transcript, the state decisions and who is speaking, one line each.

Built on ``ui.live_events.LiveEvents`` (the same messages the browser page shows), formatted as text; plain
lines rather than a full-screen interface so the view also reads well in a log or a test's captured output.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from duplex.decision import StateToken
from duplex.events import (
    Duck,
    ErrorEvent,
    HandOff,
    Interrupt,
    PlaybackStarted,
    Resume,
    SpeechStarted,
    StateDecided,
    TextMessage,
    TurnEnded,
    TurnStarted,
    UserTranscript,
)
from duplex.session import DuplexSession
from ui.live_events import LiveEvents, LiveMessage, WorkerRoles

TOKEN_NAMES = {StateToken.QUERY: "query", StateToken.IGNORE: "not for me", StateToken.TEXT_QUERY: "typed"}


def format_message(message: LiveMessage, start_time: float = 0.0) -> str | None:
    """One display line for a LiveEvents message, or None for the ones not worth a line."""
    if isinstance(message, WorkerRoles):
        roles = ", ".join(f"{name} {role}" for name, role in sorted(message.roles.items()))
        return f"[{message.time - start_time:7.2f}] workers   {roles}"
    event = message.event
    at = f"[{event.time - start_time:7.2f}]"
    if isinstance(event, SpeechStarted):
        return f"{at} you       ● speaking"
    if isinstance(event, UserTranscript):
        return f"{at} you       {'said' if event.final else 'so far'}: {event.text!r}"
    if isinstance(event, TextMessage):
        return f"{at} you       typed: {event.text!r}"
    if isinstance(event, StateDecided):
        interim = " (interim)" if event.interim else ""
        return (f"{at} decision  {event.token.value} {TOKEN_NAMES[event.token]}{interim}  "
                f"p(query)={event.query_probability:.2f} worker {event.worker}: {event.reason}")
    if isinstance(event, TurnStarted):
        return f"{at} assistant worker {event.worker} answers {event.question!r}"
    if isinstance(event, PlaybackStarted):
        latency = f" ({message.latency_ms} ms after you stopped)" if message.latency_ms is not None else ""
        return f"{at} assistant ● speaking{latency}"
    if isinstance(event, Duck):
        if event.gain:
            return f"{at} assistant lowers its voice: {event.reason}"
        return f"{at} assistant paused: {event.reason}"
    if isinstance(event, Resume):
        return f"{at} assistant goes on: {event.reason}"
    if isinstance(event, Interrupt):
        return f"{at} assistant interrupted after {event.played_s:.1f} s of speech ({event.reason})"
    if isinstance(event, TurnEnded):
        said = event.spoken or "(nothing)"
        return f"{at} assistant {event.status.value}: {said!r}"
    if isinstance(event, HandOff):
        return f"{at} roles     worker {event.speaker} answers, worker {event.listener} listens"
    if isinstance(event, ErrorEvent):
        recovered = "recovered" if event.recovered else "not recovered"
        return f"{at} error     worker {event.worker}: {event.message} ({recovered})"
    return None


class TerminalView:
    """Follows ``session.bus`` and writes a line per event worth showing."""

    def __init__(self, session: DuplexSession, write: Callable[[str], None], show_workers: bool = False) -> None:
        self.session = session
        self.write = write
        self.show_workers = show_workers
        self.live = LiveEvents(session)
        self.start_time = session.clock.now()

    async def run(self) -> None:
        subscription = self.session.bus.subscribe("terminal-view", max_data=2000)
        try:
            async for event in subscription:
                for message in self.live.messages(event):
                    if isinstance(message, WorkerRoles) and not self.show_workers:
                        continue
                    line = format_message(message, self.start_time)
                    if line is not None:
                        self.write(line)
        except asyncio.CancelledError:
            pass
        finally:
            subscription.close()
