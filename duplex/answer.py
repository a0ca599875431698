"""The one answer pipeline: the language model's text, cut into clauses, each clause synthesised into a sink.

The first clause is spoken while the model still writes the rest. Both the duplex workers (the sink: the
session's playback queue) and ``assistant ask`` (the sink: a list) answer through it. Model calls run in
threads (``iterate_in_thread``), never on the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from audio.clauses import ClauseChunker
from audio.frames import AudioFrame
from duplex.answer_guard import EchoGuard
from duplex.clock import Clock
from duplex.models import ChatMessage, GenerationOptions, LanguageModel, SpeechSynthesizer
from duplex.threads import iterate_in_thread

THROTTLE_POLL_S = 0.05


class WorkerStalled(RuntimeError):
    """The language model made no progress (no text, no "still reading") for the stall limit."""


class SpeechSink(Protocol):
    """Where an answer's audio goes, and how far ahead of the listener it already is."""

    @property
    def sample_rate(self) -> int | None:
        """Audio is converted to this rate (mono int16) before it is put; None: as synthesised."""

    def put(self, frame: AudioFrame, clause: str) -> None:
        """Take one chunk of ``clause``'s audio."""

    def seconds_ahead(self) -> float:
        """Seconds of audio taken and not yet played."""

    def paused(self) -> bool:
        """Playback waits for the user (who may be talking): synthesise nothing more until it goes on."""


@dataclass
class SpokenAnswer:
    text: str = ""  # what the model wrote, unstripped
    clauses: list[str] = field(default_factory=list)  # put into the sink, in order (not what the guard dropped)


@dataclass(frozen=True)
class _Clause:
    text: str
    held: bool  # the echo guard had not decided yet: synthesised into the held audio, not the sink


class _HeldAudio:
    """The audio of the clauses the echo guard still holds, synthesised ahead: put into the real sink, in
    order, the moment the guard lets them through; dropped if it finds an echo."""

    def __init__(self, sink: SpeechSink, spoken: SpokenAnswer) -> None:
        self.sink, self.spoken = sink, spoken
        self.state: Literal["held", "released", "dropped"] = "held"
        self._frames: list[tuple[AudioFrame, str]] = []
        self._texts: list[str] = []

    @property
    def sample_rate(self) -> int | None:
        return self.sink.sample_rate

    def seconds_ahead(self) -> float:
        return self.sink.seconds_ahead()

    def paused(self) -> bool:
        return self.sink.paused()

    def begin(self, clause: str) -> None:
        """``clause`` is about to be synthesised here: it counts as spoken once it is let through."""
        if self.state == "released":
            self.spoken.clauses.append(clause)
        elif self.state == "held":
            self._texts.append(clause)

    def put(self, frame: AudioFrame, clause: str) -> None:
        if self.state == "released":
            self.sink.put(frame, clause)
        elif self.state == "held":
            self._frames.append((frame, clause))

    def release(self) -> None:
        self.state = "released"
        self.spoken.clauses.extend(self._texts)
        for frame, clause in self._frames:
            self.sink.put(frame, clause)
        self._frames, self._texts = [], []

    def drop(self) -> None:
        self.state = "dropped"
        self._frames, self._texts = [], []


class AnswerPipeline:
    def __init__(self, language_model: LanguageModel, synthesizer: SpeechSynthesizer, generation: GenerationOptions,
                 clock: Clock, stall_seconds: float, lookahead_s: float, first_phrase_words: int | None,
                 executor: Executor | None = None) -> None:
        """``lookahead_s``: synthesise at most this far ahead of playback; ``first_phrase_words``: see
        ``ClauseChunker``; ``executor``: the threads for the model calls (None: the loop's default)."""
        self.language_model, self.synthesizer = language_model, synthesizer
        self.generation = generation
        self.clock = clock
        self.stall_seconds = stall_seconds
        self.lookahead_s = lookahead_s
        self.first_phrase_words = first_phrase_words
        self.executor = executor

    async def answer(self, messages: Sequence[ChatMessage], sink: SpeechSink, cancel: threading.Event,
                     on_text: Callable[[str], None] | None = None, guard: EchoGuard | None = None) -> SpokenAnswer:
        """Speak the model's answer to ``messages`` into ``sink``; ``on_text`` sees each piece of text as it comes.

        Setting ``cancel`` (or cancelling the task) stops the model and the voice at their next step; any
        failure sets ``cancel`` too, so that neither runs on. ``guard``: the clauses pass it before the voice
        (duplex/answer_guard.py); when it finds an echo, the model is stopped and its replacement is said.
        """
        spoken = SpokenAnswer()
        clauses: asyncio.Queue[_Clause | None] = asyncio.Queue()
        held = _HeldAudio(sink, spoken) if guard else None
        speaker = asyncio.create_task(self._speak_clauses(clauses, sink, held, cancel, spoken))
        chunker = ClauseChunker(first_phrase_words=self.first_phrase_words)

        def settle() -> None:
            """The guard has decided once it has: the held audio is played, or dropped for the replacement."""
            if guard is None or held is None or not guard.decided or held.state != "held":
                return
            if guard.echoed:
                held.drop()
                clauses.put_nowait(_Clause(guard.replacement, held=False))
            else:
                held.release()

        def clause_ready(text: str) -> None:
            undecided = guard is not None and not guard.decided
            # A clause the guard may still hold is synthesised ahead all the same (into ``held``): if the
            # guard lets it through, its audio is ready at once, and holding costs no synthesis time.
            clauses.put_nowait(_Clause(text, held=undecided))
            if undecided and guard is not None:
                guard.push(text)
                settle()

        try:
            pieces = iterate_in_thread(
                lambda: self.language_model.stream_chat(messages, self.generation, cancel), self.executor, cancel)
            while True:
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancel that lands as the
                    # piece arrives, and the cancelled answer ran on to its end (seen in CI)
                    async with asyncio.timeout(self.stall_seconds):
                        piece = await anext(pieces)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise WorkerStalled(f"the language model made no progress for {self.stall_seconds:g} s") from None
                if not piece:
                    continue  # the model is still reading the prompt (or queued behind a moving request)
                spoken.text += piece
                if on_text is not None:
                    on_text(piece)
                for clause in chunker.push(piece):
                    clause_ready(clause)
                if guard:
                    guard.see(spoken.text)
                    settle()
                    if guard.echoed:
                        break
            await pieces.aclose()  # after a break, the model stops at its next token
            if not (guard and guard.echoed):
                for clause in chunker.flush():
                    clause_ready(clause)
                if guard:
                    guard.flush()
                    settle()
            clauses.put_nowait(None)
            await speaker
        except BaseException:
            cancel.set()
            speaker.cancel()
            raise
        return spoken

    async def _speak_clauses(self, clauses: asyncio.Queue[_Clause | None], sink: SpeechSink,
                             held: _HeldAudio | None, cancel: threading.Event, spoken: SpokenAnswer) -> None:
        while (clause := await clauses.get()) is not None:
            if clause.held and held is not None and held.state == "dropped":
                continue  # the guard found an echo: what it held is not said
            # Synthesise just ahead of playback, not the whole answer at once: when the user talks, the
            # listener's ASR needs the CPU, and an interrupted answer's unspoken audio is wasted work.
            while sink.paused() or sink.seconds_ahead() > self.lookahead_s:
                await self.clock.sleep(THROTTLE_POLL_S)
            if clause.held and held is not None:
                held.begin(clause.text)
                await self.speak(clause.text, held, cancel)
            else:  # queued only once the guard had decided, so after any held clause's audio
                spoken.clauses.append(clause.text)
                await self.speak(clause.text, sink, cancel)

    async def speak(self, text: str, sink: SpeechSink, cancel: threading.Event | None = None) -> float:
        """Synthesise ``text`` into ``sink``; returns the seconds of audio put there."""
        rate = sink.sample_rate
        seconds = 0.0

        def chunks():
            for chunk in self.synthesizer.synthesize(text):
                # resampled here, off the loop
                yield chunk if rate is None else chunk.convert(sample_rate=rate, channels=1, dtype=np.int16)

        async for frame in iterate_in_thread(chunks, self.executor, cancel):
            sink.put(frame, text)
            seconds += frame.duration
        return seconds
