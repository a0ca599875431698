"""One PCM frame type for everything that carries sound.

An ``AudioFrame`` holds samples shaped ``(n_samples, channels)`` as int16 or float32, its sample rate
and the timestamp (seconds, from the session's clock) of its first sample. Every conversion returns a new
frame; frames are never mutated, so one frame can be shared by several consumers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SUPPORTED_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
INT16_SCALE = 32768.0


class AudioFormatError(ValueError):
    """Audio that cannot be used as given; the message says what was wrong and what is accepted."""


def _as_2d(samples: np.ndarray) -> np.ndarray:
    if samples.ndim == 1:
        return samples.reshape(-1, 1)
    if samples.ndim != 2:
        raise AudioFormatError(f"audio samples must be 1-D or 2-D (samples, channels), got shape {samples.shape}")
    return samples


def to_float32(samples: np.ndarray) -> np.ndarray:
    """int16 or float PCM -> float32 in [-1, 1]."""
    if samples.dtype == np.int16:
        return samples.astype(np.float32) / INT16_SCALE
    if samples.dtype in (np.float32, np.float64):
        return samples.astype(np.float32, copy=False)
    if samples.dtype == np.int32:
        return (samples.astype(np.float64) / 2147483648.0).astype(np.float32)
    if samples.dtype == np.uint8:  # 8-bit WAV is unsigned
        return (samples.astype(np.float32) - 128.0) / 128.0
    raise AudioFormatError(f"unsupported sample type {samples.dtype}; use int16 or float32")


def to_int16(samples: np.ndarray) -> np.ndarray:
    """float (clipped to [-1, 1]) or int16 PCM -> int16."""
    if samples.dtype == np.int16:
        return samples
    floats = np.clip(to_float32(samples), -1.0, 32767.0 / INT16_SCALE)
    return np.round(floats * INT16_SCALE).astype(np.int16)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a whole signal (1-D or (n, channels)); returns float32.

    soxr's high-quality mode is used because whisper and the VADs are sensitive to aliasing that a
    naive linear interpolation leaves behind.
    """
    floats = to_float32(samples)
    if from_rate == to_rate or floats.shape[0] == 0:
        return floats
    import soxr

    return soxr.resample(floats, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


@dataclass(frozen=True)
class AudioFrame:
    samples: np.ndarray
    sample_rate: int
    timestamp: float = 0.0
    channels: int = field(init=False)

    def __post_init__(self) -> None:
        samples = _as_2d(np.asarray(self.samples))
        if samples.dtype not in (np.int16, np.float32):
            samples = to_float32(samples)
        if self.sample_rate <= 0:
            raise AudioFormatError(f"sample rate must be positive, got {self.sample_rate}")
        object.__setattr__(self, "samples", samples)
        object.__setattr__(self, "channels", samples.shape[1])

    @property
    def num_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate

    def mono_float32(self) -> np.ndarray:
        """1-D float32 mono samples: the form the models take."""
        floats = to_float32(self.samples)
        return floats.mean(axis=1) if self.channels > 1 else floats[:, 0]

    def mono_int16(self) -> np.ndarray:
        return to_int16(self.mono_float32()) if self.channels > 1 else to_int16(self.samples[:, 0])

    def convert(self, sample_rate: int | None = None, channels: int | None = None,
                dtype: type | None = None) -> AudioFrame:
        """Return this audio at another rate, channel count (1 or 2) and/or sample type."""
        sample_rate = sample_rate or self.sample_rate
        channels = channels or self.channels
        sample_type = np.dtype(dtype or self.samples.dtype)
        if channels not in (1, 2):
            raise AudioFormatError(f"only mono and stereo are supported, asked for {channels} channels")
        if sample_type not in (np.int16, np.float32):
            raise AudioFormatError(f"only int16 and float32 samples are supported, asked for {sample_type}")
        samples = self.samples
        if channels != self.channels:
            mono = self.mono_float32()
            samples = mono[:, None] if channels == 1 else np.repeat(mono[:, None], 2, axis=1)
        if sample_rate != self.sample_rate:
            samples = resample(samples, self.sample_rate, sample_rate)
        samples = to_int16(samples) if sample_type == np.int16 else to_float32(samples)
        return AudioFrame(samples, sample_rate, self.timestamp)

    @classmethod
    def silence(cls, seconds: float, sample_rate: int = 16000, timestamp: float = 0.0) -> AudioFrame:
        return cls(np.zeros(int(round(seconds * sample_rate)), dtype=np.int16), sample_rate, timestamp)

    @classmethod
    def concatenate(cls, frames: list[AudioFrame]) -> AudioFrame:
        if not frames:
            raise AudioFormatError("cannot concatenate zero frames")
        first = frames[0]
        if any(f.sample_rate != first.sample_rate or f.channels != first.channels for f in frames):
            raise AudioFormatError("frames to concatenate must share sample rate and channel count")
        if any(f.samples.dtype != first.samples.dtype for f in frames):
            frames = [f.convert(dtype=np.float32) for f in frames]
        return cls(np.concatenate([f.samples for f in frames]), first.sample_rate, first.timestamp)


class StreamResampler:
    """Resample a live stream chunk by chunk without clicks at chunk boundaries.

    Keeps the filter state between calls (soxr's ResampleStream), unlike ``resample`` which treats
    every call as a whole signal.
    """

    def __init__(self, from_rate: int, to_rate: int, channels: int = 1) -> None:
        import soxr

        self.from_rate, self.to_rate, self.channels = from_rate, to_rate, channels
        self._stream = None if from_rate == to_rate else soxr.ResampleStream(
            from_rate, to_rate, channels, dtype="float32", quality="HQ")

    def process(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        floats = to_float32(samples)
        if self._stream is None:
            return floats
        if self.channels == 1 and floats.ndim == 2:
            floats = floats[:, 0]
        return self._stream.resample_chunk(np.ascontiguousarray(floats), last=last)


def rms_dbfs(samples: np.ndarray) -> float:
    """Loudness of a block in dB relative to full scale (-120 for digital silence)."""
    floats = to_float32(samples)
    if floats.size == 0:
        return -120.0
    power = float(np.mean(np.square(floats, dtype=np.float64)))
    return max(-120.0, 10.0 * np.log10(power + 1e-12))
