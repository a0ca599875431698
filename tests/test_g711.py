"""G.711 against the standard library's reference codec (``audioop``, deprecated but still in Python 3.11)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from audio.g711 import decode_alaw, decode_ulaw, encode_alaw, encode_ulaw

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    audioop = pytest.importorskip("audioop", reason="audioop left Python in 3.13")

EVERY_SAMPLE = np.arange(-32768, 32768, dtype=np.int16)
EVERY_BYTE = bytes(range(256))


@pytest.mark.parametrize("encode, decode, reference_encode, reference_decode", [
    (encode_ulaw, decode_ulaw, "lin2ulaw", "ulaw2lin"),
    (encode_alaw, decode_alaw, "lin2alaw", "alaw2lin"),
])
def test_g711_matches_the_reference_codec_bit_for_bit(encode, decode, reference_encode, reference_decode):
    assert encode(EVERY_SAMPLE) == getattr(audioop, reference_encode)(EVERY_SAMPLE.tobytes(), 2)
    expected = np.frombuffer(getattr(audioop, reference_decode)(EVERY_BYTE, 2), dtype=np.int16)
    assert np.array_equal(decode(EVERY_BYTE), expected)
    tone = (8000 * np.sin(np.arange(800) / 5)).astype(np.int16)
    assert np.abs(decode(encode(tone)).astype(int) - tone).max() < 300  # 8 bits a sample: a few % off
