"""Every model the duplex core uses, as the interface it uses it through: the one place to read what a
backend must provide. Backends live with their kind (speech in ``audio``, language, vision and the embedder
in ``assistant``) and satisfy these structurally; none of them imports this module.

All calls are blocking (they run a model): the core calls them from worker threads, never the event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from audio.asr import Transcript
from audio.frames import AudioFrame
from duplex.decision import SegmentEvidence, StateDecision

# --- listening -------------------------------------------------------------------------------------------

class VoiceActivityDetector(Protocol):
    name: str
    frame_samples: int  # samples per frame at 16 kHz

    def speech_probability(self, frame: np.ndarray) -> float:
        """Probability that this frame (``frame_samples`` int16 samples) holds speech."""

    def reset(self) -> None:
        """Forget the stream's state (start of a new stream)."""


class SpeechRecognizer(Protocol):
    name: str

    def transcribe(self, audio_16k: np.ndarray) -> Transcript:
        """Transcribe 16 kHz mono float32 audio. Blocking: call it from a worker thread."""


class StateDecider(Protocol):
    def decide(self, evidence: SegmentEvidence) -> StateDecision:
        """Blocking (may run a model): call it from a worker thread."""


@runtime_checkable
class TextEmbedder(Protocol):
    """The LLM's view of a transcript: a fixed-size hidden state (e.g. the last token's, after a chat prompt)."""

    name: str  # identifies model + prompt + pooling; the shipped head only fits the embedder it was trained on

    def embed(self, text: str) -> np.ndarray:
        """1-D float vector. Blocking: runs the model."""


# --- speaking --------------------------------------------------------------------------------------------

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class GenerationOptions:
    max_tokens: int = 160
    temperature: float = 0.0  # greedy by default: replays and tests stay reproducible
    top_p: float = 1.0
    stop: tuple[str, ...] = field(default_factory=tuple)
    repeat_penalty: float = 1.0  # > 1 makes tokens already in the text less likely (1.0: off)


def approximate_tokens(text: str) -> int:
    """A token count for models whose tokenizer is not at hand: ~4 characters a token in English BPE."""
    return len(text) // 4 + 1


class LanguageModel(Protocol):
    name: str

    def stream_chat(self, messages: Sequence[ChatMessage], options: GenerationOptions,
                    cancel: threading.Event | None = None) -> Iterator[str]:
        """Yield text pieces of the assistant's reply. Blocking: run it in a worker thread.

        An empty piece means "still working" (a long prompt being read, a turn in the queue behind a request
        that is moving): the caller's stall watch counts it as progress. Generation (and prompt reading)
        stops promptly once ``cancel`` is set.
        """

    def count_tokens(self, text: str) -> int:
        """How many of this model's tokens ``text`` takes (an estimate where the model is remote)."""

    def prepare(self, messages: Sequence[ChatMessage], cancel: threading.Event | None = None) -> None:
        """Idle time: read the prompt of ``messages`` ahead, so that a later chat starting with it answers
        sooner. Best effort (a no-op for models that keep no prompt cache); gives way to real requests and
        returns once ``cancel`` is set. Blocking: run it in a worker thread."""


class SpeechSynthesizer(Protocol):
    name: str
    sample_rate: int

    def synthesize(self, text: str) -> Iterator[AudioFrame]:
        """Yield mono int16 chunks of ``text`` spoken. Blocking: run it in a worker thread."""


# --- seeing ----------------------------------------------------------------------------------------------

class FrameDescriber(Protocol):
    """Turns one RGB frame into a short text the language model can use (experts, a VLM, ...)."""

    name: str

    def describe(self, frame: np.ndarray) -> str:
        """Blocking (runs a model): called from the vision thread with an RGB uint8 HxWx3 array."""


class PausableDescriber(Protocol):
    """Optional: a describer that can stop its CPU work on request (e.g. a child process it can suspend)."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...


# --- a worker's set --------------------------------------------------------------------------------------

@dataclass
class WorkerModels:
    """The models a worker uses, through their interfaces only."""

    recognizer: SpeechRecognizer
    language_model: LanguageModel
    synthesizer: SpeechSynthesizer
