"""The assistant's voice while the user may be speaking: soften at a hint, give way at an onset, come back
when it was not a query.

- A level rise (``audio.onset.LevelRise``: a fricative the VAD hears 100-200 ms late) softens the voice to
  ``quick_duck_gain``; without a confirmed onset within ``quick_duck_confirm_s`` it comes back, and the next
  softening waits ``quick_duck_holdoff_s`` (a clatter must not make the voice flutter).
- ``SpeechStarted`` over the assistant's voice makes it give way (pause, or ``duck_gain``).
- ``SpeechDismissed`` brings it back: at once for an interim verdict, else once the user is not speaking.
A query needs nothing here: the floor's interrupt drops the audio.
"""

from __future__ import annotations

from collections.abc import Callable

from audio.onset import LevelRise
from duplex.clock import Clock
from duplex.events import Duck, Event, Resume, SpeechDismissed, SpeechStarted
from duplex.options import DuplexOptions
from duplex.playback import PlaybackBuffer


class Ducking:
    def __init__(self, output: PlaybackBuffer, publish: Callable[[Event], None], clock: Clock,
                 options: DuplexOptions, frame_s: float, current_turn_id: Callable[[], int],
                 user_speaking: Callable[[], bool]) -> None:
        self.output, self.publish, self.clock, self.options = output, publish, clock, options
        self.current_turn_id, self.user_speaking = current_turn_id, user_speaking
        self._level_rise = LevelRise(frame_s, options.quick_duck_rise_db, options.quick_duck_min_dbfs,
                                     frames=options.quick_duck_frames)
        self._softened_at: float | None = None  # when a level rise softened the voice, until confirmed or undone
        self._soften_after = 0.0

    def on_event(self, event: Event) -> None:
        if isinstance(event, SpeechStarted):
            if event.overlaps_assistant and not self.output.giving_way:
                self.output.give_way()
                self.publish(Duck(time=self.clock.now(), turn_id=self.current_turn_id(), reason="user speech onset"))
        elif isinstance(event, SpeechDismissed) and (event.interim or not self.user_speaking()):
            self.resume(event.reason)

    def resume(self, reason: str) -> None:
        if self.output.giving_way:
            self.output.resume()
            self.publish(Resume(time=self.clock.now(), turn_id=self.current_turn_id(), reason=reason))

    def on_frame(self, frame_time: float, level_dbfs: float, echo: bool) -> None:
        """Every VAD frame, before the segmentation sees it: soften at the first hint of speech (a level rise);
        undo it if no onset follows."""
        level_rose = self._level_rise.push(level_dbfs, eligible=not echo)
        gain = self.options.quick_duck_gain
        if gain is None:
            return
        if self._softened_at is not None:
            confirmed = self.user_speaking() or self.output.giving_way
            if confirmed or not self.output.softened:  # an onset followed, or resumed/interrupted meanwhile
                self._softened_at = None
            elif frame_time - self._softened_at >= self.options.quick_duck_confirm_s:
                self._softened_at, self._soften_after = None, frame_time + self.options.quick_duck_holdoff_s
                self.output.resume()
                self.publish(Resume(time=self.clock.now(), turn_id=self.current_turn_id(),
                                    reason="no speech followed the sound"))
            return
        if (level_rose and not self.user_speaking() and frame_time >= self._soften_after
                and self.output.speaking and not self.output.giving_way):
            self._softened_at = frame_time
            self.output.soften(gain)
            self.publish(Duck(time=self.clock.now(), turn_id=self.current_turn_id(),
                              reason="a sound that may be speech", gain=gain))
