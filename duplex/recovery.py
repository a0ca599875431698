"""Faults: a worker whose model failed or hung is restarted, and the user hears an apology rather than silence.

The history is the session's, not the worker's, so a restart loses nothing but the call in flight.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from duplex.clock import Clock
from duplex.events import ErrorEvent, Event
from duplex.playback import PlaybackBuffer
from duplex.worker import Worker


class Recovery:
    def __init__(self, output: PlaybackBuffer, publish: Callable[[Event], None], clock: Clock, apology: str,
                 turn_ids: itertools.count) -> None:
        self.output, self.publish, self.clock = output, publish, clock
        self.apology = apology
        self.turn_ids = turn_ids  # shared with the floor: an apology plays as a turn of its own

    async def listener_failed(self, worker: Worker, error: BaseException) -> None:
        """The listener's ASR or decision failed or hung on a segment: restart it and say so, unless the
        assistant is speaking (the answer goes on; the user can ask again)."""
        message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        self.publish(ErrorEvent(time=self.clock.now(), worker=worker.name, message=message, recovered=True))
        worker.restart()
        if not self.output.speaking:
            await self.apologise(worker)

    async def answer_failed(self, worker: Worker) -> None:
        """The speaker's answer failed (the floor has ended the turn): restart it and apologise."""
        worker.restart()
        await self.apologise(worker)

    async def apologise(self, worker: Worker) -> None:
        turn_id = next(self.turn_ids)
        try:
            await worker.speak(turn_id, self.apology)
        except Exception as error:  # even the voice failed: say so in the log, stay up
            self.publish(ErrorEvent(time=self.clock.now(), worker=worker.name,
                                    message=f"apology failed: {error}", recovered=False))
        self.output.finish_turn(turn_id)  # not in the history: it answers no question the model saw
