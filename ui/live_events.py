"""What a live display (the browser page, a terminal, gradio) shows of a session's events.

``LiveEvents`` follows one session's bus and keeps what a person watching wants to see, typed: transcripts,
state decisions (query / noise / text), who is speaking, both workers' roles, and latencies (first answer
audio after the end of the user's turn; the assistant going quiet after the user's onset). Audio,
tokens-as-audio and per-frame camera events are left out: they would flood a display. ``to_json`` is for
where a message leaves the process (the data channel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from duplex.decision import StateToken
from duplex.events import (
    AssistantAudio,
    Duck,
    Event,
    HandOff,
    Interrupt,
    Metric,
    PlaybackStarted,
    PlaybackStopped,
    SpeechStarted,
    StateDecided,
    TurnEnded,
    TurnStarted,
    VisionFrame,
)
from duplex.session import DuplexSession

QUIET_EVENTS = (AssistantAudio, Metric, VisionFrame)
TOKEN_LABELS = {StateToken.QUERY: "query", StateToken.IGNORE: "noise", StateToken.TEXT_QUERY: "text"}


@dataclass(frozen=True)
class EventShown:
    """An event worth showing, with the latency the display adds to it."""

    event: Event
    latency_ms: int | None = None  # PlaybackStarted: since the end of the user's turn it answers
    after_onset_ms: int | None = None  # Duck to silence: since the user's onset

    def to_json(self) -> dict[str, Any]:
        record = self.event.to_log()
        record["type"] = "event"
        if isinstance(self.event, StateDecided):
            record["label"] = TOKEN_LABELS[self.event.token]
        if self.latency_ms is not None:
            record["latency_ms"] = self.latency_ms
        if self.after_onset_ms is not None:
            record["after_onset_ms"] = self.after_onset_ms
        return record


@dataclass(frozen=True)
class WorkerRoles:
    """Both workers' roles, whenever they change: 'answering', 'listening' or 'idle' by worker name."""

    time: float
    roles: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"type": "workers", "time": round(self.time, 4), "workers": dict(self.roles)}


LiveMessage = EventShown | WorkerRoles


class LiveEvents:
    def __init__(self, session: DuplexSession) -> None:
        self.session = session
        self._turn_from: dict[int, float] = {}
        self._last_onset: float | None = None
        self._workers: dict[str, str] = {}

    def messages(self, event: Event) -> list[LiveMessage]:
        """The display messages ``event`` causes (often none)."""
        if isinstance(event, QUIET_EVENTS):
            return []
        shown = EventShown(event)
        if isinstance(event, SpeechStarted):
            self._last_onset = event.onset
        elif isinstance(event, TurnStarted):
            self._turn_from[event.turn_id] = event.from_time
        elif isinstance(event, PlaybackStarted) and event.turn_id in self._turn_from:
            shown = EventShown(event, latency_ms=round(1000 * (event.time - self._turn_from.pop(event.turn_id))))
        elif isinstance(event, Duck) and event.gain == 0.0 and self._last_onset is not None:
            # the voice pausing for the user's onset (a lowering at a mere level rise precedes the onset)
            shown = EventShown(event, after_onset_ms=round(1000 * (event.time - self._last_onset)))
            self._last_onset = None
        out: list[LiveMessage] = [shown]
        if isinstance(event, (TurnStarted, TurnEnded, HandOff, Interrupt, PlaybackStarted, PlaybackStopped)):
            workers = self.worker_roles()
            if workers != self._workers:
                self._workers = workers
                out.append(WorkerRoles(event.time, workers))
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
