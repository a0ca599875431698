"""Reading and writing audio files with clear errors instead of tracebacks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from audio.frames import AudioFormatError, AudioFrame, to_int16


def read_audio(path: str | os.PathLike, max_seconds: float | None = None) -> AudioFrame:
    """Read a WAV/FLAC/OGG file into an ``AudioFrame`` (int16 when the file is integer PCM).

    Raises ``AudioFormatError`` naming the file for: a missing or empty file, a file that is not audio,
    a file with no samples, and one longer than ``max_seconds`` (checked from the header, before decoding).
    """
    import soundfile

    path = Path(path)
    if not path.exists():
        raise AudioFormatError(f"{path}: no such file")
    if path.is_dir():
        raise AudioFormatError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioFormatError(f"{path}: the file is empty")
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise AudioFormatError(f"{path}: not a readable audio file (WAV, FLAC or OGG expected): {error}") from None
    if info.frames == 0:
        raise AudioFormatError(f"{path}: the audio file holds no samples")
    duration = info.frames / info.samplerate
    if max_seconds is not None and duration > max_seconds:
        raise AudioFormatError(
            f"{path}: {duration:.1f} s of audio is longer than the limit of {max_seconds:g} s")
    integer_pcm = info.subtype in ("PCM_16", "PCM_U8", "PCM_S8")
    try:
        samples, rate = soundfile.read(str(path), dtype="int16" if integer_pcm else "float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise AudioFormatError(f"{path}: could not decode audio: {error}") from None
    if samples.shape[1] > 2:  # keep the first two channels' average; more is not a voice mic
        samples = samples.astype(np.float32).mean(axis=1, keepdims=True)
    return AudioFrame(samples, int(rate))


def write_wav(path: str | os.PathLike, frame: AudioFrame) -> Path:
    """Write 16-bit PCM WAV (the format every player and browser fake-mic accepts)."""
    import soundfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), to_int16(frame.samples), frame.sample_rate, subtype="PCM_16")
    return path
