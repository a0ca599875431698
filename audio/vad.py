"""Voice activity detection: webrtcvad and Silero (ONNX) behind one interface.

A VAD consumes fixed-size 16 kHz mono int16 frames and returns a speech probability per frame.
``trim_to_speech`` cuts the silence around a recorded question; ``SpeechSegmenter`` turns a live stream of
probabilities into speech-start / speech-end decisions with hangover, which the duplex core uses.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from audio.frames import AudioFrame, to_float32, to_int16

VAD_SAMPLE_RATE = 16000


class WebRtcVad:
    """Google's WebRTC VAD: a GMM, ~2 us per 30 ms frame, returns only 0 or 1."""

    name = "webrtcvad"

    def __init__(self, aggressiveness: int = 2, frame_ms: int = 30) -> None:
        import webrtcvad

        if frame_ms not in (10, 20, 30):
            raise ValueError("webrtcvad frames must be 10, 20 or 30 ms")
        self._vad = webrtcvad.Vad(aggressiveness)
        self.frame_samples = VAD_SAMPLE_RATE * frame_ms // 1000

    def speech_probability(self, frame: np.ndarray) -> float:
        return 1.0 if self._vad.is_speech(to_int16(frame).tobytes(), VAD_SAMPLE_RATE) else 0.0

    def reset(self) -> None:
        pass


def silero_model_path() -> Path:
    """The Silero VAD ONNX file that ships inside faster-whisper."""
    from importlib.util import find_spec

    spec = find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("Silero VAD needs faster-whisper: pip install faster-whisper")
    assets = Path(next(iter(spec.submodule_search_locations))) / "assets"
    candidates = sorted(assets.glob("silero_vad*.onnx"), reverse=True)
    if not candidates:
        raise FileNotFoundError(f"no silero_vad*.onnx in {assets}; reinstall faster-whisper")
    return candidates[0]


class SileroVad:
    """Silero VAD v6 (ONNX, bundled with faster-whisper): a small LSTM, ~50 us per 32 ms frame.

    The model takes 512 new samples plus the last 64 samples of the previous frame as context, and
    carries an LSTM state (h, c) from frame to frame.
    """

    name = "silero"
    frame_samples = 512
    _context_samples = 64

    def __init__(self, model_path: str | Path | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1  # tiny model: threads only add overhead
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(model_path or silero_model_path()), providers=["CPUExecutionProvider"], sess_options=options)
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(self._context_samples, dtype=np.float32)

    def speech_probability(self, frame: np.ndarray) -> float:
        samples = to_float32(np.asarray(frame)).reshape(-1)
        if samples.shape[0] != self.frame_samples:
            raise ValueError(f"Silero VAD takes {self.frame_samples} samples per frame, got {samples.shape[0]}")
        window = np.concatenate([self._context, samples])[None, :]
        output, self._h, self._c = self._session.run(None, {"input": window, "h": self._h, "c": self._c})
        self._context = samples[-self._context_samples:]
        return float(np.asarray(output).reshape(-1)[0])


def make_vad(kind: str = "silero", **options) -> WebRtcVad | SileroVad:
    kinds = {"silero": SileroVad, "webrtcvad": WebRtcVad}
    if kind not in kinds:
        raise ValueError(f"unknown VAD {kind!r}; choose one of {', '.join(kinds)}")
    return kinds[kind](**options)


class FrameScorer(Protocol):
    """What the helpers below need of a VAD (any of ours, or one the duplex core was given)."""

    frame_samples: int

    def speech_probability(self, frame: np.ndarray) -> float: ...

    def reset(self) -> None: ...


def frame_probabilities(vad: FrameScorer, samples_16k: np.ndarray) -> np.ndarray:
    """Speech probability for each whole VAD frame of a 16 kHz mono signal."""
    vad.reset()
    size = vad.frame_samples
    count = len(samples_16k) // size
    return np.array([vad.speech_probability(samples_16k[i * size:(i + 1) * size]) for i in range(count)],
                    dtype=np.float32)


def trim_to_speech(frame: AudioFrame, vad: FrameScorer, threshold: float = 0.5,
                   padding_s: float = 0.25) -> AudioFrame | None:
    """Cut leading and trailing non-speech; ``None`` when no frame reaches ``threshold``.

    Returns 16 kHz mono int16 audio, ``padding_s`` of context kept on each side so word edges survive.
    """
    mono = frame.convert(sample_rate=VAD_SAMPLE_RATE, channels=1, dtype=np.int16).samples[:, 0]
    probabilities = frame_probabilities(vad, mono)
    voiced = np.flatnonzero(probabilities >= threshold)
    if voiced.size == 0:
        return None
    pad = int(padding_s * VAD_SAMPLE_RATE)
    start = max(0, int(voiced[0]) * vad.frame_samples - pad)
    end = min(len(mono), (int(voiced[-1]) + 1) * vad.frame_samples + pad)
    return AudioFrame(mono[start:end], VAD_SAMPLE_RATE, frame.timestamp + start / VAD_SAMPLE_RATE)


class SegmenterEventKind(enum.Enum):
    SPEECH_START = "speech_start"
    SILENCE_START = "silence_start"  # a pause began; speech may go on
    SPEECH_END = "speech_end"  # the pause lasted ``end_silence_s``


@dataclass
class SegmenterEvent:
    kind: SegmenterEventKind
    time: float  # stream time of the decision's evidence (onset or last voiced sample)


class SpeechSegmenter:
    """Hysteresis over per-frame speech probabilities.

    Speech starts after ``start_frames`` consecutive frames above ``start_threshold``, and ends after
    ``end_silence_s`` below ``end_threshold``; ``early_silence_frames`` into a pause a ``silence_start``
    event comes first, so the caller can begin transcribing while it waits to see if the pause lasts. The
    start time reported is the first voiced frame's, so latency figures measure from the real onset, not from
    when the decision was made.
    """

    def __init__(self, frame_seconds: float, start_threshold: float = 0.5, end_threshold: float = 0.35,
                 start_frames: int = 3, end_silence_s: float = 0.4, early_silence_frames: int = 4) -> None:
        self.frame_seconds = frame_seconds
        self.start_threshold, self.end_threshold = start_threshold, end_threshold
        self.start_frames = start_frames
        self.end_frames = max(1, int(round(end_silence_s / frame_seconds)))
        self.early_silence_frames = early_silence_frames
        self.in_speech = False
        self._run = 0
        self._run_start = 0.0
        self._last_voiced_end = 0.0

    def push(self, probability: float, frame_time: float) -> SegmenterEvent | None:
        if not self.in_speech:
            if probability >= self.start_threshold:
                if self._run == 0:
                    self._run_start = frame_time
                self._run += 1
                if self._run >= self.start_frames:
                    self.in_speech, self._run = True, 0
                    self._last_voiced_end = frame_time + self.frame_seconds
                    return SegmenterEvent(SegmenterEventKind.SPEECH_START, self._run_start)
            else:
                self._run = 0
            return None
        if probability >= self.end_threshold:
            self._run = 0
            self._last_voiced_end = frame_time + self.frame_seconds
            return None
        self._run += 1
        if self._run >= self.end_frames:
            self.in_speech, self._run = False, 0
            return SegmenterEvent(SegmenterEventKind.SPEECH_END, self._last_voiced_end)
        if self._run == self.early_silence_frames:  # lets a caller start work that the end will need
            return SegmenterEvent(SegmenterEventKind.SILENCE_START, self._last_voiced_end)
        return None
