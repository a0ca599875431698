"""Input analysis: microphone audio in, scored 16 kHz VAD frames out. Signal only, no turns.

Each frame is resampled to the VAD's rate, scored for speech, measured for level, and compared with what
the loudspeaker just played: a frame mostly explained by the assistant's own voice scores as silence.
Runs on the session's VAD thread (``analyse`` is blocking).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from audio.echo import EchoReference, echo_share
from audio.frames import AudioFrame, StreamResampler, rms_dbfs, to_int16
from audio.vad import VAD_SAMPLE_RATE
from duplex.models import VoiceActivityDetector
from duplex.options import DuplexOptions


class ScoredFrame(NamedTuple):
    """One VAD frame as the analysis scored it."""

    samples: np.ndarray  # int16, 16 kHz
    probability: float  # of speech; 0 when the frame is the assistant's own voice coming back
    echo_share: float | None  # how much of a voiced frame the recent output explains (None: not measured)
    level_dbfs: float
    echo: bool  # mostly the assistant's own voice


class InputAnalysis:
    def __init__(self, vad: VoiceActivityDetector, echo_reference: EchoReference, options: DuplexOptions) -> None:
        self.vad = vad
        self.echo_reference = echo_reference
        self.options = options
        self.frame_s = vad.frame_samples / VAD_SAMPLE_RATE
        self._pending = np.zeros(0, dtype=np.int16)
        self._resamplers: dict[int, StreamResampler] = {}

    def analyse(self, frame: AudioFrame) -> list[ScoredFrame]:
        """(VAD thread) resample to 16 kHz mono and score each complete VAD frame."""
        mono = frame.mono_float32()
        if frame.sample_rate != VAD_SAMPLE_RATE:
            resampler = self._resamplers.setdefault(frame.sample_rate,
                                                    StreamResampler(frame.sample_rate, VAD_SAMPLE_RATE))
            mono = resampler.process(mono)
        self._pending = np.concatenate([self._pending, to_int16(mono)])
        size = self.vad.frame_samples
        options = self.options
        out = []
        while len(self._pending) >= size:
            chunk, self._pending = self._pending[:size], self._pending[size:]
            probability = self.vad.speech_probability(chunk)
            level = rms_dbfs(chunk)
            voiced, share, echo = probability >= options.vad_end_threshold, None, False
            loud = options.quick_duck_gain is not None and level >= options.quick_duck_min_dbfs
            if self.echo_reference.level > 1e-6 and (voiced or loud):
                explained = echo_share(chunk, self.echo_reference.recent())
                echo = explained >= options.echo_share_threshold
                if echo:
                    probability = 0.0  # the assistant's own voice coming back is not the user talking
                share = explained if voiced else None  # the own-voice rule averages voiced frames only
            out.append(ScoredFrame(chunk, probability, share, level, echo))
        return out
