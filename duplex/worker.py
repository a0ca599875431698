"""One of the session's two model workers. It either listens (transcribe, decide) or speaks (answer, through
``duplex.answer`` into the playback queue).

Both workers may hold the same loaded models (the default: memory does not double) or each its own copy
(``separate_models``: for two GPUs). Each has its own threads and its own in-flight answer, so one can
decide on the user's speech while the other is still generating.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from audio.asr import Transcript
from audio.frames import AudioFrame
from duplex.answer import AnswerPipeline
from duplex.answer_guard import EchoGuard
from duplex.bus import EventBus
from duplex.clock import Clock
from duplex.decision import SegmentEvidence, StateDecision
from duplex.events import AnswerReplaced, AssistantAudio, LLMToken
from duplex.models import ChatMessage, GenerationOptions, StateDecider, WorkerModels
from duplex.playback import PlaybackBuffer


class Worker:
    def __init__(self, name: str, models: WorkerModels, bus: EventBus, clock: Clock, output: PlaybackBuffer,
                 generation: GenerationOptions, stall_seconds: float, tts_lookahead_s: float = 2.5,
                 first_phrase_words: int | None = None) -> None:
        self.name = name
        self.models = models
        self.bus, self.clock, self.output = bus, clock, output
        self.generation = generation
        self.stall_seconds = stall_seconds
        self.tts_lookahead_s = tts_lookahead_s
        self.first_phrase_words = first_phrase_words
        self._executor = self._new_executor()
        self.answer_task: asyncio.Task | None = None
        self.answer_text = ""
        self._cancel = threading.Event()
        self.restarts = 0

    def _new_executor(self) -> ThreadPoolExecutor:
        # LLM stream, TTS and ASR can each be busy at once; three threads keep them from queueing.
        return ThreadPoolExecutor(max_workers=3, thread_name_prefix=f"worker-{self.name}")

    # --- listening -------------------------------------------------------------------------------

    async def transcribe(self, audio_16k: np.ndarray) -> Transcript:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.models.recognizer.transcribe, audio_16k)

    async def decide(self, decider: StateDecider, evidence: SegmentEvidence) -> StateDecision:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, decider.decide, evidence)

    async def prepare(self, messages: list[ChatMessage], cancel: threading.Event) -> None:
        """Let the language model read the next prompt's beginning in idle time (see LanguageModel.prepare)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.models.language_model.prepare, messages, cancel)

    # --- speaking --------------------------------------------------------------------------------

    @property
    def answering(self) -> bool:
        return self.answer_task is not None and not self.answer_task.done()

    def start_answer(self, turn_id: int, messages: list[ChatMessage],
                     on_done: Callable[[Worker, int, asyncio.Task], None],
                     fixed_text: str | None = None, guard: EchoGuard | None = None) -> asyncio.Task:
        """Answer ``messages`` with the language model, or (``fixed_text``) say that text as the answer;
        ``guard`` checks the model's first sentence before it is spoken (duplex/answer_guard.py)."""
        self.answer_text = ""
        self._cancel = threading.Event()
        work = (self._answer(turn_id, messages, self._cancel, guard) if fixed_text is None
                else self._say(turn_id, fixed_text, self._cancel))
        task = asyncio.create_task(work, name=f"answer-{self.name}-{turn_id}")
        task.add_done_callback(lambda t: on_done(self, turn_id, t))
        self.answer_task = task
        return task

    def cancel_answer(self) -> None:
        """Stop generating and synthesising now (the playback buffer drops what was queued)."""
        self._cancel.set()
        if self.answer_task is not None and not self.answer_task.done():
            self.answer_task.cancel()

    async def _answer(self, turn_id: int, messages: list[ChatMessage], cancel: threading.Event,
                      guard: EchoGuard | None = None) -> str:
        def on_text(piece: str) -> None:
            self.answer_text += piece
            self.bus.publish(LLMToken(time=self.clock.now(), worker=self.name, turn_id=turn_id, text=piece))

        if guard is not None:
            def on_echo(written: str) -> None:  # the history and the turn's answer hold what is said instead
                self.answer_text = guard.replacement
                self.bus.publish(AnswerReplaced(time=self.clock.now(), worker=self.name, turn_id=turn_id,
                                                written=written, said=guard.replacement))

            guard.on_echo = on_echo
        spoken = await self._pipeline().answer(messages, _PlaybackSink(self, turn_id), cancel, on_text, guard)
        if not cancel.is_set():
            self.output.finish_turn(turn_id)
        return spoken.text

    async def _say(self, turn_id: int, text: str, cancel: threading.Event) -> str:
        self.answer_text = text
        await self.speak(turn_id, text, cancel)
        if not cancel.is_set():
            self.output.finish_turn(turn_id)
        return text

    async def speak(self, turn_id: int, text: str, cancel: threading.Event | None = None) -> float:
        """Synthesise ``text`` into the output queue; returns the seconds of audio queued."""
        return await self._pipeline().speak(text, _PlaybackSink(self, turn_id), cancel)

    def _pipeline(self) -> AnswerPipeline:
        # Built per use: it runs on this worker's current threads, which a restart replaces.
        models = self.models
        return AnswerPipeline(models.language_model, models.synthesizer, self.generation, self.clock,
                              self.stall_seconds, self.tts_lookahead_s, self.first_phrase_words, self._executor)

    # --- faults ----------------------------------------------------------------------------------

    def restart(self) -> None:
        """Abandon threads that may be stuck in a model call and start afresh (history lives in the session)."""
        self.cancel_answer()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._new_executor()
        self.restarts += 1

    def close(self) -> None:
        self.cancel_answer()
        self._executor.shutdown(wait=False, cancel_futures=True)


class _PlaybackSink:
    """One turn's audio into the session's playback queue, each chunk published as ``AssistantAudio``."""

    def __init__(self, worker: Worker, turn_id: int) -> None:
        self.worker, self.turn_id = worker, turn_id
        self.sample_rate = worker.output.sample_rate

    def put(self, frame: AudioFrame, clause: str) -> None:
        worker = self.worker
        worker.output.enqueue(self.turn_id, frame, clause)
        worker.bus.publish(AssistantAudio(time=worker.clock.now(), worker=worker.name, turn_id=self.turn_id,
                                          frame=frame, text=clause))

    def seconds_ahead(self) -> float:
        return self.worker.output.queued_seconds()

    def paused(self) -> bool:
        return self.worker.output.giving_way
