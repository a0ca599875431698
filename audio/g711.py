"""G.711 telephone audio: 8-bit mu-law (PCMU) and A-law (PCMA) samples to 16-bit PCM and back.

Telephony bridges and some Realtime clients send 8 kHz G.711 instead of 24 kHz PCM. Vectorised with
NumPy (the standard library's ``audioop`` is deprecated and leaves in Python 3.13).
"""

from __future__ import annotations

import numpy as np

_MU_BIAS = 0x84
_MU_CLIP = 32635


def _segment(magnitudes: np.ndarray, first_boundary: int) -> np.ndarray:
    """Which of the eight logarithmic segments each magnitude falls in (0..7; 8 = over the top)."""
    boundaries = first_boundary * (2 ** np.arange(8)) - 1
    return np.searchsorted(boundaries, magnitudes, side="left")


def encode_ulaw(samples: np.ndarray) -> bytes:
    """int16 samples -> one mu-law byte each."""
    x = samples.astype(np.int32) >> 2  # mu-law works on 14 bits
    mask = np.where(x < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.where(x < 0, -x, x), _MU_CLIP >> 2) + (_MU_BIAS >> 2)
    segment = _segment(magnitude, 0x40)
    value = (np.minimum(segment, 7) << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    value = np.where(segment >= 8, 0x7F, value)
    return ((value ^ mask) & 0xFF).astype(np.uint8).tobytes()


def decode_ulaw(data: bytes) -> np.ndarray:
    """mu-law bytes -> int16 samples."""
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    magnitude = ((((u & 0x0F) << 3) + _MU_BIAS) << exponent) - _MU_BIAS
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


def encode_alaw(samples: np.ndarray) -> bytes:
    """int16 samples -> one A-law byte each."""
    x = samples.astype(np.int32) >> 3  # A-law works on 13 bits
    mask = np.where(x >= 0, 0xD5, 0x55)
    magnitude = np.where(x >= 0, x, -x - 1)
    segment = _segment(magnitude, 0x20)
    shift = np.where(segment < 2, 1, segment)
    value = (np.minimum(segment, 7) << 4) | ((magnitude >> shift) & 0x0F)
    value = np.where(segment >= 8, 0x7F, value)
    return ((value ^ mask) & 0xFF).astype(np.uint8).tobytes()


def decode_alaw(data: bytes) -> np.ndarray:
    """A-law bytes -> int16 samples."""
    a = np.frombuffer(data, dtype=np.uint8).astype(np.int32) ^ 0x55
    segment = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(segment == 0, t + 8, (t + 0x108) << np.maximum(segment - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)
