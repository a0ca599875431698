"""A level rise: the first sign that someone may have started talking, before a speech model is sure.

Silero scores a fricative onset ("s" in "Stop", "Sorry", "So") as non-speech for 100-200 ms; its energy is
there from the first frame. A frame much louder than the recent floor is only a hint (a clatter rises too),
so callers use it for something cheap to undo, such as lowering the assistant's voice.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class LevelRise:
    def __init__(self, frame_seconds: float, rise_db: float = 15.0, min_dbfs: float = -50.0,
                 floor_window_s: float = 1.5, floor_percentile: float = 20.0, frames: int = 1) -> None:
        """A frame counts as a rise when it is ``rise_db`` above the floor (the ``floor_percentile`` of the
        last ``floor_window_s``: it takes a new steady noise for the floor in about 1.2 s) and above
        ``min_dbfs``; ``push`` reports a rise once ``frames`` such frames came in a row."""
        self.rise_db, self.min_dbfs = rise_db, min_dbfs
        self.floor_percentile = floor_percentile
        self.frames = frames
        self._levels: deque[float] = deque(maxlen=max(5, int(round(floor_window_s / frame_seconds))))
        self._run = 0

    @property
    def floor_dbfs(self) -> float:
        if len(self._levels) < 5:
            return -120.0  # just started: only the absolute minimum applies
        return float(np.percentile(np.fromiter(self._levels, float), self.floor_percentile))

    def push(self, level_dbfs: float, eligible: bool = True) -> bool:
        """Add one frame's level to the floor; True once ``frames`` frames in a row rose clearly above the
        floor before them. An ineligible frame (e.g. the assistant's own echo) still counts towards the
        floor, so the user must be heard over it, but never as a rise."""
        rises = eligible and level_dbfs >= max(self.min_dbfs, self.floor_dbfs + self.rise_db)
        self._levels.append(level_dbfs)
        self._run = self._run + 1 if rises else 0
        return self._run >= self.frames
