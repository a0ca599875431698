"""What the state decision measures in one segment: whisper's confidence, the VAD's, the words, and the
conversation around it (``segment_features``, in ``FEATURE_NAMES`` order: the trained heads' inputs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from duplex.decision import SegmentEvidence
from duplex.models import ChatMessage
from duplex.state.lexicon import (
    FIRST_PERSON,
    IMPERATIVE_VERBS,
    QUESTION_WORDS,
    VOCATIVES,
    is_backchannel,
    is_filler_only,
    is_short_reply,
    words_of,
)

FEATURE_NAMES: tuple[str, ...] = (
    "no_speech_prob", "avg_logprob", "compression_ratio", "looks_like_noise",
    "vad_fraction", "vad_max", "vad_mean", "log_duration", "words_per_second",
    "log_words", "question_mark", "question_word_start", "imperative_start", "please",
    "second_person", "first_person_start", "vocative", "backchannel", "filler_only",
    "assistant_speaking", "echo_overlap", "assistant_asked", "short_reply_after_question",
)


@dataclass(frozen=True)
class SegmentFeatures:
    values: np.ndarray  # in FEATURE_NAMES order
    text: str
    word_count: int
    vad_fraction: float
    vad_max: float
    has_vad: bool

    def __getitem__(self, name: str) -> float:
        return float(self.values[FEATURE_NAMES.index(name)])

    def as_dict(self) -> dict[str, float]:
        return {name: float(v) for name, v in zip(FEATURE_NAMES, self.values)}


def last_assistant_asked(conversation_tail: Sequence[ChatMessage]) -> bool:
    """Whether the tail's last message is the assistant's and ends with a question."""
    if not conversation_tail:
        return False
    last = conversation_tail[-1]
    return last.role == "assistant" and last.content.strip().endswith("?")


def echo_overlap(transcript: str, assistant_text: str) -> float:
    """Share of the transcript's words that repeat the assistant's text in order (bigram matches).

    A one-word transcript counts as covered when the word occurs in the assistant's text. Plain word
    overlap would call "what is the capital of Spain?" an echo of "The capital of France is Paris";
    bigrams need the same words in the same order.
    """
    heard, said = words_of(transcript), words_of(assistant_text)
    if not heard or not said:
        return 0.0
    if len(heard) == 1:
        return 1.0 if heard[0] in set(said) else 0.0
    said_bigrams = set(zip(said, said[1:]))
    covered = [False] * len(heard)
    for i, pair in enumerate(zip(heard, heard[1:])):
        if pair in said_bigrams:
            covered[i] = covered[i + 1] = True
    return sum(covered) / len(heard)


def segment_features(evidence: SegmentEvidence, vad_threshold: float = 0.5) -> SegmentFeatures:
    transcript = evidence.transcript
    text = transcript.text.strip()
    words = words_of(text)
    probs = np.asarray(evidence.speech_probabilities, dtype=np.float64).reshape(-1)
    has_vad = probs.size > 0
    if has_vad:
        vad_fraction = float(np.mean(probs >= vad_threshold))
        vad_max, vad_mean = float(probs.max()), float(probs.mean())
    else:  # no VAD given: a proxy from whisper's no-speech probability; the VAD-based hard rule is skipped
        proxy = 1.0 - float(transcript.no_speech_prob)
        vad_fraction, vad_max, vad_mean = 0.8 * proxy, proxy, 0.75 * proxy
    audio_seconds = transcript.audio_seconds or (len(evidence.audio_16k) / 16000.0)
    duration = max(float(audio_seconds), 0.05)
    first = words[0] if words else ""
    asked = last_assistant_asked(evidence.conversation_tail)
    echo = echo_overlap(text, evidence.assistant_text) if evidence.assistant_speaking else 0.0
    values = np.array([
        transcript.no_speech_prob,
        float(np.clip(transcript.avg_logprob, -3.0, 0.0)),
        float(np.clip(transcript.compression_ratio, 0.0, 3.0)),
        float(transcript.looks_like_noise),
        vad_fraction, vad_max, vad_mean,
        float(np.log1p(duration)),
        float(min(len(words) / duration, 6.0)),
        float(np.log1p(len(words))),
        float(text.endswith("?") or "?" in text),
        float(first in QUESTION_WORDS),
        float(first in IMPERATIVE_VERBS or (first == "please" and len(words) > 1 and words[1] in IMPERATIVE_VERBS)),
        float("please" in words),
        float(any(w in ("you", "your", "yourself") for w in words)),
        float(first in FIRST_PERSON),
        float(first in VOCATIVES or (len(words) > 1 and words[-1] in VOCATIVES and len(words) > 2)),
        float(is_backchannel(text)),
        float(is_filler_only(text)),
        float(evidence.assistant_speaking),
        echo,
        float(asked),
        float(asked and is_short_reply(text)),
    ], dtype=np.float64)
    return SegmentFeatures(values, text, len(words), vad_fraction, vad_max, has_vad)
