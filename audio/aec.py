"""Acoustic echo cancellation: remove what the loudspeaker played from what the microphone heard.

On open speakers the microphone hears the assistant. ``EchoCanceller.process(mic, played)`` takes a block
of microphone audio and the blocks played since the previous call (the exact samples handed to the sound
card, as the reference) and returns the microphone audio with the echo removed. Both are int16 mono at
the canceller's ``sample_rate``; any block length is accepted (the WebRTC module works on 10 ms frames,
so up to one frame is held back until it is complete).

- ``WebRtcEchoCanceller``: WebRTC's AEC3 through the livekit SDK's ``AudioProcessingModule``. It estimates
  the echo delay and path itself (measured here: 32-37 dB removed on a synthetic room, more in the live
  PulseAudio loop; see docs/benchmarks.md). While both talk it chops the user's voice somewhat.
- ``PassthroughEchoCanceller``: headphones, nothing to cancel.

This module knows sound only; the duplex core's own-voice check (``audio/echo.py``) stays a second guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from audio.frames import AudioFormatError, to_int16

APM_SAMPLE_RATES = (8000, 16000, 32000, 48000)  # the rates WebRTC's audio processing module accepts
FRAME_S = 0.01  # it processes exactly 10 ms at a time
CONVERGE_S = 2.0  # AEC3 needs about this much of the loudspeaker's sound to lock on (measured figures skip it)
ECHO_FLOOR_MEAN_SQUARE = (32768 * 10 ** (-70 / 20)) ** 2  # below -70 dBFS the mic heard no echo to measure


class EchoCanceller(Protocol):
    sample_rate: int

    def process(self, mic: np.ndarray, played: np.ndarray) -> np.ndarray:
        """``mic``: new microphone samples; ``played``: what the loudspeaker played since the last call."""
        ...


@dataclass
class EchoStats:
    """Energy in and out while the loudspeaker was active: how much echo the canceller removed.

    The first ``converge_samples`` of loudspeaker activity are left out: AEC3 spends them finding the echo's
    delay and path, and that one-off start would otherwise dominate the figure."""
    converge_samples: int = 0
    mic_energy: float = 0.0  # sum of squares, int16 units
    cleaned_energy: float = 0.0
    samples: int = 0
    skipped: int = 0

    @property
    def suppression_db(self) -> float | None:
        """Echo removed, in dB; None when the microphone heard (next to) nothing while the speakers played."""
        if self.samples == 0 or self.mic_energy / self.samples < ECHO_FLOOR_MEAN_SQUARE:
            return None
        return float(10.0 * np.log10(self.mic_energy / max(self.cleaned_energy, 1.0)))


class PassthroughEchoCanceller:
    """Headphones: the microphone hears no loudspeaker."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate

    def process(self, mic: np.ndarray, played: np.ndarray) -> np.ndarray:
        return to_int16(np.asarray(mic))


class WebRtcEchoCanceller:
    """WebRTC AEC3 (livekit's ``rtc.AudioProcessingModule``); noise suppression and AGC stay off so the
    user's voice reaches the VAD and ASR as spoken."""

    def __init__(self, sample_rate: int = 48000, stream_delay_ms: int = 0, high_pass_filter: bool = True) -> None:
        if sample_rate not in APM_SAMPLE_RATES:
            raise AudioFormatError(f"the WebRTC echo canceller runs at {APM_SAMPLE_RATES} Hz, not {sample_rate}; "
                                   "resample first")
        try:
            from livekit import rtc
        except ImportError as error:  # pragma: no cover - a dependency of the project
            raise ImportError("the echo canceller needs the livekit package (pip install livekit); "
                              "use headphones mode to run without it") from error
        self._rtc = rtc
        self.sample_rate = sample_rate
        self.frame_samples = int(sample_rate * FRAME_S)
        self.stream_delay_ms = stream_delay_ms  # a hint only: AEC3 estimates the delay itself
        self._apm = rtc.AudioProcessingModule(echo_cancellation=True, high_pass_filter=high_pass_filter)
        self._mic_pending = np.zeros(0, dtype=np.int16)
        self._played_pending = np.zeros(0, dtype=np.int16)
        self.stats = EchoStats(converge_samples=int(CONVERGE_S * sample_rate))  # while the speakers play

    def _frame(self, samples: np.ndarray):
        return self._rtc.AudioFrame(samples.tobytes(), self.sample_rate, 1, self.frame_samples)

    def process(self, mic: np.ndarray, played: np.ndarray) -> np.ndarray:
        size = self.frame_samples
        self._played_pending = np.concatenate([self._played_pending, to_int16(np.asarray(played))])
        # The reference goes in first: the echo in this microphone block was played before it was heard.
        far_active = bool(len(self._played_pending) >= size and np.any(self._played_pending))
        while len(self._played_pending) >= size:
            block, self._played_pending = self._played_pending[:size], self._played_pending[size:]
            self._apm.process_reverse_stream(self._frame(block))
        self._mic_pending = np.concatenate([self._mic_pending, to_int16(np.asarray(mic))])
        count = len(self._mic_pending) // size
        if count == 0:
            return np.zeros(0, dtype=np.int16)
        out = np.empty(count * size, dtype=np.int16)
        for k in range(count):
            block = self._mic_pending[k * size:(k + 1) * size]
            frame = self._frame(block)
            self._apm.set_stream_delay_ms(self.stream_delay_ms)
            self._apm.process_stream(frame)
            cleaned = np.frombuffer(frame.data, dtype=np.int16)
            out[k * size:(k + 1) * size] = cleaned
            if far_active and self.stats.skipped < self.stats.converge_samples:
                self.stats.skipped += size
            elif far_active:
                self.stats.mic_energy += float(np.sum(block.astype(np.float64) ** 2))
                self.stats.cleaned_energy += float(np.sum(cleaned.astype(np.float64) ** 2))
                self.stats.samples += size
        self._mic_pending = self._mic_pending[count * size:]
        return out


class PlayedTimeline:
    """Lines the loudspeaker's blocks up with the microphone's by the sound card's own timestamps.

    Off by default in the desktop app (``SoundCard(align_by_timestamps=False)``): through ALSA's pulse plugin
    it measured worse than handing AEC3 the blocks in the order played (see docs/benchmarks.md). Kept for
    sound servers whose timestamps track underruns exactly, and for the benchmark's comparison.

    A callback that runs late makes the speaker play a gap of silence (an underrun) that the list of
    played blocks does not show; every such gap would shift the echo's delay and the canceller would have
    to find it again (measured: 60 dB of suppression fell to 11-20 dB on a busy CPU). Here each played block
    is placed at the time PortAudio says it reaches the speaker (``outputBufferDacTime``), gaps filled with
    silence, and each microphone block (``inputBufferAdcTime``) gets exactly the reference that was playing
    while it was recorded. Jitter below ``tolerance_s`` is ignored: the sample counts are exact, the
    timestamps only say where the streams jumped.
    """

    def __init__(self, output_rate: int, input_rate: int, tolerance_s: float = 0.02, keep_s: float = 2.0) -> None:
        self.output_rate, self.input_rate, self.tolerance_s = output_rate, input_rate, tolerance_s
        self._samples = np.zeros(0, dtype=np.int16)  # written, not yet handed out; index ``_base`` first
        self._base = 0  # speaker-sample index of ``_samples[0]``
        self._out_anchor: tuple[float, int] | None = None  # (time, speaker-sample index) at that time
        self._in_anchor: tuple[float, int] | None = None  # (time, microphone-sample count) at that time
        self._in_count = 0
        self._keep = int(keep_s * output_rate)
        self.gaps = 0  # underruns seen (the speaker played silence we did not write)

    def played(self, block: np.ndarray, dac_time: float) -> None:
        """A block handed to the speakers, and when its first sample will sound."""
        end = self._base + len(self._samples)
        if self._out_anchor is None:
            self._out_anchor = (dac_time, end)
        else:
            anchor_time, anchor_index = self._out_anchor
            predicted = anchor_time + (end - anchor_index) / self.output_rate
            if dac_time - predicted > self.tolerance_s:  # the speaker ran dry: it played silence meanwhile
                gap = int(round((dac_time - predicted) * self.output_rate))
                self._samples = np.concatenate([self._samples, np.zeros(gap, dtype=np.int16)])
                self.gaps += 1
                self._out_anchor = (dac_time, end + gap)
            elif predicted - dac_time > self.tolerance_s:
                self._out_anchor = (dac_time, end)
        self._samples = np.concatenate([self._samples, to_int16(np.asarray(block))])
        if len(self._samples) > self._keep:  # the microphone stalled: forget what it can no longer need
            drop = len(self._samples) - self._keep
            self._samples, self._base = self._samples[drop:], self._base + drop

    def reference_for(self, frames: int, adc_time: float) -> np.ndarray:
        """The speaker's samples (output rate) that played while these ``frames`` of microphone were recorded."""
        if self._in_anchor is None:
            self._in_anchor = (adc_time, self._in_count)
        else:
            anchor_time, anchor_count = self._in_anchor
            predicted = anchor_time + (self._in_count - anchor_count) / self.input_rate
            if abs(adc_time - predicted) > self.tolerance_s:  # an overrun (lost microphone audio) or a restart
                self._in_anchor = (adc_time, self._in_count)
        self._in_count += frames
        if self._out_anchor is None:
            return np.zeros(0, dtype=np.int16)
        anchor_time, anchor_count = self._in_anchor
        end_time = anchor_time + (self._in_count - anchor_count) / self.input_rate
        out_time, out_index = self._out_anchor
        until = out_index + int(round((end_time - out_time) * self.output_rate))
        if until <= self._base:
            return np.zeros(0, dtype=np.int16)
        take = until - self._base
        chunk = self._samples[:take]
        if len(chunk) < take:  # not written yet (cannot happen while the speakers keep up): silence
            chunk = np.concatenate([chunk, np.zeros(take - len(chunk), dtype=np.int16)])
        self._samples, self._base = self._samples[take:], until
        return chunk


def make_echo_canceller(headphones: bool, sample_rate: int) -> EchoCanceller:
    return PassthroughEchoCanceller(sample_rate) if headphones else WebRtcEchoCanceller(sample_rate)
