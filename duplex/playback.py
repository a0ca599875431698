"""The assistant's outgoing speech: a queue the transport pulls from, which knows what was heard.

Workers ``enqueue`` clause-sized chunks; a transport (WebRTC track, sound card callback, replay) calls
``read`` for each output block. The buffer gives way on the user's speech onset (pauses, or plays on at
``duck_gain``), softens on a mere hint of one, drops queued audio on an interrupt, and tracks per turn how
much was actually played, so the conversation history can keep exactly the words the user heard. ``read``
may be called from a sound card's thread: all state is locked.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from audio.echo import EchoReference
from audio.frames import AudioFrame
from duplex.clock import Clock
from duplex.events import Event, PlaybackReason, PlaybackStarted, PlaybackStopped


@dataclass
class _Clause:
    turn_id: int
    text: str
    samples: np.ndarray  # int16 at the buffer's rate
    played: int = 0


@dataclass
class TurnPlayback:
    turn_id: int
    played_samples: int = 0
    enqueued_samples: int = 0
    heard_clauses: list[str] = field(default_factory=list)
    heard_lengths: list[int] = field(default_factory=list)  # each heard clause's samples
    partial_clause: str = ""  # the clause being played when playback stopped
    partial_fraction: float = 0.0
    partial_length: int = 0  # that clause's samples (played or not)
    complete: bool = False  # the worker has enqueued its last chunk
    started: bool = False


class PlaybackBuffer:
    def __init__(self, sample_rate: int, clock: Clock, publish: Callable[[Event], None],
                 duck_gain: float = 0.0) -> None:
        """``duck_gain`` is the level while the user may be talking: 0 pauses, 0.3 plays on quietly."""
        self.sample_rate = sample_rate
        self.clock = clock
        self.publish = publish
        self.duck_gain = duck_gain
        self._lock = threading.Lock()
        self._queue: deque[_Clause] = deque()
        self._turns: dict[int, TurnPlayback] = {}
        self._giving_way = False
        self._softened_gain: float | None = None
        self._playing_turn: int | None = None
        self.total_played_samples = 0
        self.echo_reference = EchoReference(sample_rate)  # what the loudspeaker played, for the echo guard

    # --- producer side (workers) ---------------------------------------------------------------

    def enqueue(self, turn_id: int, frame: AudioFrame, text: str) -> None:
        samples = frame.convert(sample_rate=self.sample_rate, channels=1, dtype=np.int16).samples[:, 0]
        with self._lock:
            turn = self._turns.setdefault(turn_id, TurnPlayback(turn_id))
            if turn.complete:
                return  # the turn was interrupted meanwhile: drop late audio
            self._queue.append(_Clause(turn_id, text, samples))
            turn.enqueued_samples += len(samples)

    def finish_turn(self, turn_id: int) -> None:
        """No more audio will come for ``turn_id``; playback reports 'finished' once it drains."""
        events = []
        with self._lock:
            turn = self._turns.setdefault(turn_id, TurnPlayback(turn_id))
            turn.complete = True
            if turn.started and not any(c.turn_id == turn_id for c in self._queue):
                events.append(self._stopped(turn, PlaybackReason.FINISHED))
        for event in events:
            self.publish(event)

    # --- control ---------------------------------------------------------------------------------

    def give_way(self) -> None:
        """The user has begun speaking: play on at ``duck_gain`` (0: pause, keeping the position)."""
        with self._lock:
            self._giving_way = True

    def soften(self, gain: float) -> None:
        """Play on at ``gain`` (a hint of speech, not yet a confirmed onset); ``give_way`` takes precedence."""
        with self._lock:
            self._softened_gain = gain

    def resume(self) -> None:
        """Back to full voice, from giving way or softening alike."""
        with self._lock:
            self._giving_way = False
            self._softened_gain = None

    @property
    def giving_way(self) -> bool:
        return self._giving_way

    @property
    def softened(self) -> bool:
        return self._softened_gain is not None

    def interrupt(self, turn_id: int) -> TurnPlayback:
        """Drop every queued chunk of ``turn_id`` and return what of it was heard."""
        events = []
        with self._lock:
            turn = self._turns.setdefault(turn_id, TurnPlayback(turn_id))
            turn.complete = True
            for clause in [c for c in self._queue if c.turn_id == turn_id]:
                if clause.played and not turn.partial_clause:
                    turn.partial_clause = clause.text
                    turn.partial_fraction = clause.played / max(1, len(clause.samples))
                    turn.partial_length = len(clause.samples)
                self._queue.remove(clause)
            if turn.started and self._playing_turn == turn_id:
                events.append(self._stopped(turn, PlaybackReason.INTERRUPTED))
            self._giving_way, self._softened_gain = False, None
        for event in events:
            self.publish(event)
        return turn

    # --- consumer side (the transport) -----------------------------------------------------------

    def read(self, num_samples: int) -> np.ndarray:
        """The next ``num_samples`` of output (int16 mono); silence when there is nothing to say."""
        out = np.zeros(num_samples, dtype=np.int16)
        events: list[Event] = []
        with self._lock:
            if self._giving_way and self.duck_gain == 0.0:
                self.echo_reference.played(out)
                return out  # paused: the position is kept, nothing is lost
            filled = 0
            while filled < num_samples and self._queue:
                clause = self._queue[0]
                turn = self._turns[clause.turn_id]
                if not turn.started:
                    turn.started = True
                    self._playing_turn = clause.turn_id
                    events.append(PlaybackStarted(time=self.clock.now(), turn_id=clause.turn_id))
                take = min(num_samples - filled, len(clause.samples) - clause.played)
                out[filled:filled + take] = clause.samples[clause.played:clause.played + take]
                clause.played += take
                turn.played_samples += take
                filled += take
                if clause.played >= len(clause.samples):
                    self._queue.popleft()
                    turn.heard_clauses.append(clause.text)
                    turn.heard_lengths.append(len(clause.samples))
                    if turn.complete and not any(c.turn_id == turn.turn_id for c in self._queue):
                        events.append(self._stopped(turn, PlaybackReason.FINISHED))
            self.total_played_samples += num_samples
            gain = self.duck_gain if self._giving_way else self._softened_gain
            if gain is not None:
                out = (out.astype(np.float32) * gain).astype(np.int16)
            self.echo_reference.played(out)
        for event in events:
            self.publish(event)
        return out

    # --- queries ---------------------------------------------------------------------------------

    @property
    def speaking(self) -> bool:
        """True while the assistant has audio queued or playing (paused counts: it will go on)."""
        with self._lock:
            return bool(self._queue)

    def queued_seconds(self) -> float:
        with self._lock:
            return sum(len(c.samples) - c.played for c in self._queue) / self.sample_rate

    def current_text(self) -> str:
        """The clauses played lately, playing now and queued next: what an echo of the assistant would say."""
        with self._lock:
            texts = [c.text for c in list(self._queue)[:3]]
            last = self._turns.get(self._playing_turn) if self._playing_turn is not None else None
            recent = last.heard_clauses[-4:] if last else []  # a segment is judged ~1-3 s after it was heard
        return " ".join(recent + texts)

    def turn(self, turn_id: int) -> TurnPlayback:
        with self._lock:
            return self._turns.setdefault(turn_id, TurnPlayback(turn_id))

    def _stopped(self, turn: TurnPlayback, reason: PlaybackReason) -> PlaybackStopped:
        if self._playing_turn == turn.turn_id:
            self._playing_turn = None
        return PlaybackStopped(time=self.clock.now(), turn_id=turn.turn_id,
                               played_s=turn.played_samples / self.sample_rate, reason=reason)


def heard_text(turn: TurnPlayback) -> str:
    """The words the user heard: whole clauses plus the played share of the interrupted one."""
    words = " ".join(turn.heard_clauses).split()
    if turn.partial_clause:
        partial = turn.partial_clause.split()
        words += partial[: int(len(partial) * turn.partial_fraction)]
    return " ".join(words)


def heard_text_until(turn: TurnPlayback, samples: int) -> str:
    """The words of ``turn`` within its first ``samples`` played (a client that says how much it played:
    its own buffer held back part of what was sent). Never more than ``heard_text``."""
    clauses = list(zip(turn.heard_clauses, turn.heard_lengths))
    if turn.partial_clause:
        clauses.append((turn.partial_clause, turn.partial_length))
    words: list[str] = []
    position = 0
    for text, length in clauses:
        clause_words = text.split()
        if position + length <= samples:
            words += clause_words
        else:
            share = (samples - position) / max(1, length)
            words += clause_words[: int(len(clause_words) * share)]
            break
        position += length
    heard = heard_text(turn).split()
    return " ".join(words[: len(heard)])
