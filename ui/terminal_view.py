"""A terminal view of a live session: the transcript, the state decisions and who is speaking, one line each.

Built on ``ui.live_events.LiveEvents`` (the same messages the browser page shows), formatted as text; plain
lines rather than a full-screen interface so the view also reads well in a log or a test's captured output.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ui.live_events import LiveEvents

TOKEN_NAMES = {"<1>": "query", "<2>": "not for me", "<3>": "typed"}


def format_message(message: dict[str, Any], start_time: float = 0.0) -> str | None:
    """One display line for a LiveEvents message, or None for the ones not worth a line."""
    if message.get("type") == "workers":
        roles = ", ".join(f"{name} {role}" for name, role in sorted(message["workers"].items()))
        return f"[{message['time'] - start_time:7.2f}] workers   {roles}"
    kind = message.get("kind")
    at = f"[{message.get('time', start_time) - start_time:7.2f}]"
    if kind == "SpeechStarted":
        return f"{at} you       ● speaking"
    if kind == "UserTranscript":
        return f"{at} you       {'said' if message['final'] else 'so far'}: {message['text']!r}"
    if kind == "TextMessage":
        return f"{at} you       typed: {message['text']!r}"
    if kind == "StateDecided":
        name = TOKEN_NAMES.get(message["token"], message["token"])
        interim = " (interim)" if message.get("interim") else ""
        return (f"{at} decision  {message['token']} {name}{interim}  p(query)={message['query_probability']:.2f} "
                f"worker {message['worker']}: {message['reason']}")
    if kind == "TurnStarted":
        return f"{at} assistant worker {message['worker']} answers {message['question']!r}"
    if kind == "PlaybackStarted":
        latency = f" ({message['latency_ms']} ms after you stopped)" if "latency_ms" in message else ""
        return f"{at} assistant ● speaking{latency}"
    if kind == "Duck":
        if message.get("gain"):
            return f"{at} assistant lowers its voice: {message['reason']}"
        return f"{at} assistant paused: {message['reason']}"
    if kind == "Resume":
        return f"{at} assistant goes on: {message['reason']}"
    if kind == "Interrupt":
        return f"{at} assistant interrupted after {message['played_s']:.1f} s of speech ({message['reason']})"
    if kind == "TurnEnded":
        said = message["spoken"] or "(nothing)"
        return f"{at} assistant {message['status']}: {said!r}"
    if kind == "HandOff":
        return f"{at} roles     worker {message['speaker']} answers, worker {message['listener']} listens"
    if kind == "ErrorEvent":
        recovered = "recovered" if message["recovered"] else "not recovered"
        return f"{at} error     worker {message['worker']}: {message['message']} ({recovered})"
    return None


class TerminalView:
    """Follows ``session.bus`` and writes a line per event worth showing."""

    def __init__(self, session, write: Callable[[str], None], show_workers: bool = False) -> None:
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
                    if message.get("type") == "workers" and not self.show_workers:
                        continue
                    line = format_message(message, self.start_time)
                    if line is not None:
                        self.write(line)
        except asyncio.CancelledError:
            pass
        finally:
            subscription.close()
