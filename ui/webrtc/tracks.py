"""The assistant's voice as a WebRTC audio track.

aiortc pulls ``recv()`` for every 20 ms frame it encodes. Each call reads exactly one frame from the
session's playback queue, so the queue's count of played samples is what was sent, and an interrupt that
drops the queue silences the track from the next frame on: the server holds back at most 20 ms.
"""

from __future__ import annotations

import asyncio
import fractions
import time

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from duplex.playback import PlaybackBuffer

FRAME_S = 0.02
MAX_LAG_S = 0.1  # if the loop stalled longer than this, restart the pacing instead of sending a burst


class AssistantVoiceTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, playback: PlaybackBuffer) -> None:
        super().__init__()
        self.playback = playback
        self.sample_rate = playback.sample_rate
        self.frame_samples = int(self.sample_rate * FRAME_S)
        self.sent_samples = 0
        self._start: float | None = None
        self._pts = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            due = self._start + self.sent_samples / self.sample_rate
            if due - now < -MAX_LAG_S:
                self._start = now - self.sent_samples / self.sample_rate
            elif due > now:
                await asyncio.sleep(due - now)  # read at the last moment: an interrupt then takes effect at once
        samples = self.playback.read(self.frame_samples)
        return self._frame(samples)

    def _frame(self, samples: np.ndarray) -> av.AudioFrame:
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, self.sample_rate)
        self._pts += len(samples)
        self.sent_samples += len(samples)
        return frame
