"""Everything that flows through a session is a small typed event with a timestamp.

Two classes of event: *data* (audio, tokens, transcripts) flows in order through bounded queues, and
*control* (``control = True``: duck, resume, interrupt) overtakes queued data, the way pipecat's system
frames do, so an interruption never waits behind audio.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from audio.frames import AudioFrame
from duplex.decision import StateToken


class TurnStatus(str, enum.Enum):
    COMPLETED = "completed"  # the whole answer was played
    INTERRUPTED = "interrupted"  # the user took the floor; the history keeps what was heard
    FAILED = "failed"  # a model failed or hung; the question leaves the history, the user hears an apology
    CLOSED = "closed"  # the session ended during the answer


class PlaybackReason(str, enum.Enum):
    FINISHED = "finished"  # the turn's last audio was played
    INTERRUPTED = "interrupted"  # its queued audio was dropped


@dataclass(frozen=True, kw_only=True)
class Event:
    time: float  # seconds on the session's clock when the event was created
    control: ClassVar[bool] = False

    @property
    def kind(self) -> str:
        return type(self).__name__

    def to_log(self) -> dict[str, Any]:
        """A JSON-ready summary: audio becomes its duration, everything else is kept as is."""
        record: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, AudioFrame):
                record[f.name + "_s"] = round(value.duration, 4)
            elif isinstance(value, float):
                record[f.name] = round(value, 4)
            elif isinstance(value, tuple):
                record[f.name] = list(value)
            else:
                record[f.name] = value.value if hasattr(value, "value") else value
        return record


# --- user side -------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class SpeechStarted(Event):
    onset: float  # when the voice began (earlier than ``time``, when the VAD was sure)
    segment_id: int
    overlaps_assistant: bool = False  # the assistant was speaking (or about to): its voice gives way


@dataclass(frozen=True, kw_only=True)
class SpeechEnded(Event):
    onset: float
    end: float  # the last voiced sample
    segment_id: int


@dataclass(frozen=True, kw_only=True)
class UserTranscript(Event):
    segment_id: int
    text: str
    final: bool
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0


@dataclass(frozen=True, kw_only=True)
class TextMessage(Event):
    text: str  # typed by the user


@dataclass(frozen=True, kw_only=True)
class StateDecided(Event):
    worker: str
    segment_id: int  # -1 for typed text
    token: StateToken
    query_probability: float
    reason: str
    text: str
    interim: bool = False  # decided on the first part of a segment that is still going on
    assistant_speaking: bool = False
    decide_ms: float = 0.0
    echo_share: float = 0.0  # how much of the segment's voiced audio was the assistant's own output


# --- decisions: the floor and the voice act on these --------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class QueryHeard(Event):
    """A query for the assistant: the floor interrupts whatever is said and ``worker`` answers ``text``.
    An interim one (decided while the user still speaks, over the assistant's voice) only cuts the answer."""

    control: ClassVar[bool] = True
    worker: str  # the listener that heard it
    segment_id: int  # -1 for typed text
    text: str
    from_time: float  # the end of the speech (or the time of the typed message)
    typed: bool = False
    interim: bool = False
    visual_context: str = ""  # what the camera showed around the question
    view_just_shown: bool = False  # the view changed just before or while it was asked (something shown)
    avg_logprob: float | None = None  # whisper's confidence in the words (None: typed, or not known)


@dataclass(frozen=True, kw_only=True)
class SpeechDismissed(Event):
    """Speech judged not for the assistant (noise, a backchannel, side talk): its voice may come back."""

    control: ClassVar[bool] = True
    segment_id: int
    reason: str
    interim: bool = False


# --- camera side -----------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class VisionFrame(Event):
    """A camera frame the vision input kept (after sampling); analysed off the event loop."""

    frame_id: int
    width: int
    height: int


@dataclass(frozen=True, kw_only=True)
class VisionDescribed(Event):
    frame_id: int
    text: str  # the short description the answer and the state decision see
    analyse_ms: float
    changed: bool = True  # False: the view looked the same as before, so the previous description was kept


@dataclass(frozen=True, kw_only=True)
class VisionStale(Event):
    """The camera sent frames and then stopped: what it showed last is getting old."""

    last_frame_time: float
    silent_s: float


# --- assistant side --------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class TurnStarted(Event):
    worker: str
    turn_id: int
    question: str
    from_time: float  # end of the user's speech (or time of the typed message) being answered
    view_in_prompt: bool = False  # the camera's view went into the prompt (the question was about it)
    asks_to_repeat: str = ""  # why the words were asked again instead of answered ("": answered)


@dataclass(frozen=True, kw_only=True)
class LLMToken(Event):
    worker: str
    turn_id: int
    text: str


@dataclass(frozen=True, kw_only=True)
class AssistantAudio(Event):
    worker: str
    turn_id: int
    frame: AudioFrame  # mono int16 at the synthesizer's rate
    text: str  # the clause this audio speaks


@dataclass(frozen=True, kw_only=True)
class PlaybackStarted(Event):
    turn_id: int


@dataclass(frozen=True, kw_only=True)
class PlaybackStopped(Event):
    turn_id: int
    played_s: float
    reason: PlaybackReason


@dataclass(frozen=True, kw_only=True)
class TurnEnded(Event):
    worker: str
    turn_id: int
    status: TurnStatus
    answer: str  # the whole answer the model wrote
    spoken: str  # the part the user actually heard


@dataclass(frozen=True, kw_only=True)
class AnswerReplaced(Event):
    """The echo guard stopped an answer that only said the question back; ``said`` was spoken instead."""

    worker: str
    turn_id: int
    written: str  # what the model had written
    said: str


@dataclass(frozen=True, kw_only=True)
class AnswerTruncated(Event):
    """A transport said how much of an answer its user heard (less than was sent): the history keeps that."""

    turn_id: int
    heard_s: float
    spoken: str  # what the history keeps now


@dataclass(frozen=True, kw_only=True)
class HandOff(Event):
    speaker: str  # the worker that now answers
    listener: str  # the worker that now listens
    reason: str


@dataclass(frozen=True, kw_only=True)
class ErrorEvent(Event):
    worker: str
    message: str
    recovered: bool


@dataclass(frozen=True, kw_only=True)
class Metric(Event):
    name: str  # e.g. "loop_lag_ms"
    value: float


# --- control: these overtake queued data ----------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Duck(Event):
    control: ClassVar[bool] = True
    turn_id: int
    reason: str
    gain: float = 0.0  # the voice's level now: 0 paused, between 0 and 1 lowered


@dataclass(frozen=True, kw_only=True)
class Resume(Event):
    control: ClassVar[bool] = True
    turn_id: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class Interrupt(Event):
    control: ClassVar[bool] = True
    turn_id: int
    reason: str
    played_s: float = 0.0
