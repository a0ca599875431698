"""One stretch of the user's speech, as the segmentation follows it: its audio, and an explicit state.

A segment's life, every transition in ``_TRANSITIONS``:

    SPEAKING --pause begins--> PAUSED --the user goes on--> SPEAKING
    SPEAKING / PAUSED --the pause lasts, or too long, or too short--> JUDGING
    JUDGING --the decision--> QUERY | IGNORED | NOISE
    JUDGING / IGNORED --the user goes on after the pause--> ABSORBED (the next segment carries its words)

Decisions taken while a long segment overlaps the assistant's voice (interim) have their own small state,
``Interim``: at most one runs at a time, and after one released the voice or cut the answer, none follows.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from audio.asr import Transcript
from duplex.decision import StateDecision
from duplex.worker import Worker


class SegmentState(enum.Enum):
    SPEAKING = "speaking"
    PAUSED = "paused"  # silent after speaking: the pause is being timed
    JUDGING = "judging"  # closed: transcription and decision under way
    QUERY = "query"
    IGNORED = "ignored"  # speech, but not for the assistant
    NOISE = "noise"
    ABSORBED = "absorbed"


_TRANSITIONS: dict[SegmentState, frozenset[SegmentState]] = {
    SegmentState.SPEAKING: frozenset({SegmentState.PAUSED, SegmentState.JUDGING}),
    SegmentState.PAUSED: frozenset({SegmentState.SPEAKING, SegmentState.JUDGING}),
    SegmentState.JUDGING: frozenset({SegmentState.QUERY, SegmentState.IGNORED, SegmentState.NOISE,
                                     SegmentState.ABSORBED}),
    SegmentState.IGNORED: frozenset({SegmentState.ABSORBED}),
    SegmentState.QUERY: frozenset(),
    SegmentState.NOISE: frozenset(),
    SegmentState.ABSORBED: frozenset(),
}

OPEN_STATES = frozenset({SegmentState.SPEAKING, SegmentState.PAUSED})
MERGEABLE_STATES = frozenset({SegmentState.JUDGING, SegmentState.IGNORED})  # the next segment may carry these


class Interim(enum.Enum):
    IDLE = "idle"  # none running; another may start
    RUNNING = "running"
    RELEASED = "released"  # judged not a query: the assistant's voice went on
    INTERRUPTED = "interrupted"  # a confident query: the answer was cut before the segment ended


class Heard(NamedTuple):
    """How much of a segment a piece of work listens to: its first ``audio_frames`` audio frames and
    ``vad_frames`` speech probabilities. Fixed when the work begins, so that a busy machine (trailing silence
    piling up meanwhile) does not change the evidence."""

    audio_frames: int
    vad_frames: int


@dataclass
class Speculation:
    """Transcription (and a decision, when the words read finished) begun at a pause's start, used only if
    that same pause lasts."""

    pause_start: float
    heard: Heard
    task: asyncio.Task[tuple[Transcript | None, tuple[StateDecision, float] | None]]


class SegmentTransitionError(RuntimeError):
    pass


@dataclass
class Segment:
    id: int
    onset: float
    listener: Worker  # the worker that transcribes and judges it
    audio: list[np.ndarray]  # int16 16 kHz VAD frames, the pre-roll first
    probabilities: list[float]
    overlapped_assistant: bool  # the assistant spoke (or was about to) during it
    state: SegmentState = SegmentState.SPEAKING
    echo_shares: list[float] = field(default_factory=list)  # of the voiced frames heard while output played
    visual_context: str = ""  # what the camera showed around this segment, as the decision saw it
    view_just_shown: bool = False  # the view changed just before or while it was spoken
    pause_at: float | None = None  # when the current pause began (identifies it)
    heard_at_pause: Heard | None = None  # what the decision listens to: the segment as it was at the pause
    end: float | None = None
    speculation: Speculation | None = None
    interim: Interim = Interim.IDLE
    interim_at: float = 0.0  # the segment's length when the last interim decision began

    def move(self, to: SegmentState) -> None:
        if to not in _TRANSITIONS[self.state]:
            raise SegmentTransitionError(f"segment {self.id}: {self.state.value} -> {to.value} is not a transition")
        self.state = to

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES

    def heard_now(self) -> Heard:
        return Heard(len(self.audio), len(self.probabilities))

    def speculation_for(self, pause_start: float) -> Speculation | None:
        """The work begun at this pause's start, if any (not an earlier pause's)."""
        early = self.speculation
        return early if early is not None and early.pause_start == pause_start else None

    def samples(self, frames: int | None = None) -> np.ndarray:
        audio = self.audio[:frames] if frames is not None else self.audio
        return np.concatenate(audio).astype(np.float32) / 32768.0 if audio else np.zeros(0, np.float32)

    def mean_echo_share(self) -> float:
        return float(np.mean(self.echo_shares)) if self.echo_shares else 0.0
