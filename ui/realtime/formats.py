"""The audio formats the Realtime protocol names, in both its spellings (GA objects, beta strings).

GA: {"type": "audio/pcm", "rate": 24000}, {"type": "audio/pcmu"}, {"type": "audio/pcma"}.
Beta: "pcm16", "g711_ulaw", "g711_alaw". PCM is 16-bit little-endian mono at 24 kHz; G.711 at 8 kHz.
"""

from __future__ import annotations

import enum
from typing import Any

import numpy as np

from audio.g711 import decode_alaw, decode_ulaw, encode_alaw, encode_ulaw


class FormatError(ValueError):
    """Audio or a format description that does not fit the declared format."""


class AudioFormat(enum.Enum):
    PCM16 = ("audio/pcm", "pcm16", 24000)
    PCMU = ("audio/pcmu", "g711_ulaw", 8000)
    PCMA = ("audio/pcma", "g711_alaw", 8000)

    def __init__(self, mime: str, beta_name: str, sample_rate: int) -> None:
        self.mime, self.beta_name, self.sample_rate = mime, beta_name, sample_rate

    @classmethod
    def parse(cls, value: Any) -> AudioFormat:
        """From a GA format object or a beta format string; FormatError names what is accepted."""
        for member in cls:
            if value == member.beta_name:
                return member
            if isinstance(value, dict) and value.get("type") == member.mime:
                rate = value.get("rate", member.sample_rate)
                if rate != member.sample_rate:
                    raise FormatError(f"{member.mime} is supported at {member.sample_rate} Hz only, not {rate!r}")
                return member
        raise FormatError(f"unsupported audio format {value!r}: use {{'type': 'audio/pcm', 'rate': 24000}}, "
                          "{'type': 'audio/pcmu'} or {'type': 'audio/pcma'} (beta: pcm16, g711_ulaw, g711_alaw)")

    def to_json(self, beta: bool) -> Any:
        if beta:
            return self.beta_name
        return {"type": self.mime, "rate": self.sample_rate} if self is AudioFormat.PCM16 else {"type": self.mime}

    def decode(self, data: bytes) -> np.ndarray:
        """Bytes of this format -> int16 mono samples at ``sample_rate``."""
        if self is AudioFormat.PCM16:
            if len(data) % 2:
                raise FormatError(f"pcm16 audio must be whole 16-bit samples; got {len(data)} bytes (an odd count)")
            return np.frombuffer(data, dtype="<i2").astype(np.int16)
        return decode_ulaw(data) if self is AudioFormat.PCMU else decode_alaw(data)

    def encode(self, samples: np.ndarray) -> bytes:
        """int16 mono samples at ``sample_rate`` -> bytes of this format."""
        if self is AudioFormat.PCM16:
            return samples.astype("<i2").tobytes()
        return encode_ulaw(samples) if self is AudioFormat.PCMU else encode_alaw(samples)
