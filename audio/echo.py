"""Telling the assistant's own voice, heard back through open speakers, from the user's.

``EchoReference`` keeps the last second of what the loudspeaker played (16 kHz). ``echo_share`` measures
how much of a microphone frame that reference explains: the squared normalised cross-correlation at the
best lag. A frame that is mostly echo (share near 1) is not the user starting to talk; when the user
talks over the echo, their voice is not in the reference and the share drops. This is a guard for the
voice-activity onset, not an echo canceller: a real canceller (WebRTC AEC3) belongs in front of it
wherever the room is reverberant.
"""

from __future__ import annotations

import threading

import numpy as np

from audio.frames import StreamResampler, to_float32

ECHO_RATE = 16000


class EchoReference:
    def __init__(self, source_rate: int, samples: int = 16384) -> None:
        """``samples``: how much recent output to keep (16384 = 1.02 s; a power of two keeps the FFT fast)."""
        self._resampler = StreamResampler(source_rate, ECHO_RATE)
        self._buffer = np.zeros(samples, dtype=np.float32)
        self._lock = threading.Lock()
        self.level = 0.0  # mean square of the buffer: 0 when nothing was played lately

    def played(self, samples: np.ndarray) -> None:
        """Append what the loudspeaker just played (at the source rate)."""
        block = self._resampler.process(to_float32(samples))
        if block.size == 0:
            return
        with self._lock:
            keep = len(self._buffer) - len(block)
            if keep > 0:
                self._buffer = np.concatenate([self._buffer[-keep:], block])
            else:
                self._buffer = block[-len(self._buffer):].copy()
            self.level = float(np.mean(self._buffer ** 2))

    def recent(self) -> np.ndarray:
        with self._lock:
            return self._buffer.copy()


def echo_share(mic: np.ndarray, reference: np.ndarray) -> float:
    """Share (0-1) of the mic frame's energy that the best-aligned slice of ``reference`` explains."""
    mic = to_float32(mic).astype(np.float64)
    reference = reference.astype(np.float64)
    n = len(mic)
    mic_energy = float(np.dot(mic, mic))
    if n == 0 or len(reference) < n or mic_energy < 1e-9:
        return 0.0
    # Every lag at once by FFT. A circular correlation of the reference's own length is exact for the lags
    # where the frame fits inside it, which are the only ones kept.
    size = len(reference)
    spectrum = np.fft.rfft(reference, size) * np.conj(np.fft.rfft(mic, size))
    products = np.fft.irfft(spectrum, size)[: len(reference) - n + 1]
    running = np.concatenate([[0.0], np.cumsum(reference ** 2)])
    window_energy = running[n:] - running[:-n]  # energy of every n-sample slice, in O(len)
    # Only slices with real sound can explain anything: against a near-silent slice (digital silence, the
    # tail of a word) the normalised correlation of a short frame can come out high and mean nothing.
    loud = window_energy >= 1e-3 * window_energy.max()
    if window_energy.max() < 1e-9 or not loud.any():
        return 0.0
    share = products[loud] ** 2 / (mic_energy * window_energy[loud])
    return float(np.clip(share.max(), 0.0, 1.0))
