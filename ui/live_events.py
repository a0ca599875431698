"""Session events as small JSON messages for a live display (the browser page, a terminal, gradio).

``LiveEvents`` follows one session's bus and turns what a person watching wants to see into dicts:
transcripts, state decisions (query / noise / text), who is speaking, both workers' roles, and latencies
(first answer audio after the end of the user's turn; the assistant going quiet after the user's onset).
Audio, tokens-as-audio and per-frame camera events are left out: they would flood a display.
"""

from __future__ import annotations

from typing import Any

from duplex.events import (
    Duck, Event, HandOff, Interrupt, PlaybackStarted, PlaybackStopped, SpeechStarted, StateDecided, TurnEnded,
    TurnStarted,
)

QUIET_KINDS = {"AssistantAudio", "Metric", "VisionFrame"}
TOKEN_LABELS = {"<1>": "query", "<2>": "noise", "<3>": "text"}


class LiveEvents:
    def __init__(self, session) -> None:
        self.session = session
        self._turn_from: dict[int, float] = {}
        self._last_onset: float | None = None
        self._workers: dict[str, str] = {}

    def messages(self, event: Event) -> list[dict[str, Any]]:
        """The display messages ``event`` causes (often none)."""
        if event.kind in QUIET_KINDS:
            return []
        record = event.to_log()
        record["type"] = "event"
        if isinstance(event, StateDecided):
            record["label"] = TOKEN_LABELS.get(event.token, event.token)
        elif isinstance(event, SpeechStarted):
            self._last_onset = event.onset
        elif isinstance(event, TurnStarted):
            self._turn_from[event.turn_id] = event.from_time
        elif isinstance(event, PlaybackStarted) and event.turn_id in self._turn_from:
            record["latency_ms"] = round(1000 * (event.time - self._turn_from.pop(event.turn_id)))
        elif isinstance(event, Duck) and event.gain == 0.0 and self._last_onset is not None:
            # the voice pausing for the user's onset (a lowering at a mere level rise precedes the onset)
            record["after_onset_ms"] = round(1000 * (event.time - self._last_onset))
            self._last_onset = None
        out = [record]
        if isinstance(event, (TurnStarted, TurnEnded, HandOff, Interrupt, PlaybackStarted, PlaybackStopped)):
            workers = self.worker_roles()
            if workers != self._workers:
                self._workers = workers
                out.append({"type": "workers", "time": round(event.time, 4), "workers": workers})
        return out

    def worker_roles(self) -> dict[str, str]:
        """Each worker's role now: 'answering' (generating or speaking), 'listening' or 'idle'."""
        session = self.session
        roles = {}
        for worker in session.workers:
            if worker is session.speaker and (session.output.speaking or worker.answering):
                roles[worker.name] = "answering"
            elif worker is session.listener:
                roles[worker.name] = "listening"
            else:
                roles[worker.name] = "idle"
        return roles
