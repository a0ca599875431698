"""The listener's verdict on one stretch of incoming speech: VITA's state tokens.

``<1>`` a spoken query for the assistant, ``<2>`` noise or talk not meant for it (coughs, music,
backchannels, the assistant's own echo, speech to someone else), ``<3>`` a typed query.
A ``StateDecider`` looks at the evidence of one segment and returns a ``StateDecision``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from audio.asr import Transcript

if TYPE_CHECKING:  # duplex.models imports this module for the decider's interface
    from duplex.models import ChatMessage


class StateToken(str, enum.Enum):
    QUERY = "<1>"
    IGNORE = "<2>"
    TEXT_QUERY = "<3>"


@dataclass(frozen=True)
class SegmentEvidence:
    """Everything known about one speech segment when the decision is made."""

    audio_16k: np.ndarray  # float32 mono, the segment as heard (after echo cancellation, if any)
    transcript: Transcript
    speech_probabilities: np.ndarray  # Silero/webrtcvad per-frame probabilities over the segment
    assistant_speaking: bool  # the assistant's voice was playing during the segment
    assistant_text: str = ""  # what the assistant was saying around then (for the own-voice check)
    conversation_tail: tuple[ChatMessage, ...] = field(default_factory=tuple)  # last few messages, oldest first
    visual_context: str = ""  # a short description of what the camera sees, if anything
    echo_share: float = 0.0  # mean share of the voiced frames explained by the assistant's own output (0-1)


@dataclass(frozen=True)
class StateDecision:
    token: StateToken
    query_probability: float  # calibrated P(query); 1.0 for typed text
    reason: str  # short, human-readable: shown in the UI and the event log
