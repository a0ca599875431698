"""The answer pipeline (duplex/answer.py) on fake models: clauses, stall watch, throttle, cancellation."""

import asyncio
import threading
import time

import numpy as np
import pytest

from audio.frames import AudioFrame
from duplex.answer import AnswerPipeline, WorkerStalled
from duplex.clock import RealClock
from duplex.models import ChatMessage, GenerationOptions
from tests.fakes import BeepSynthesizer, ScriptedLLM

MESSAGES = [ChatMessage("system", "Be brief."), ChatMessage("user", "Weather?")]


class WordsLLM:
    """Writes ``text`` a word at a time."""

    def __init__(self, text: str, delay_s: float = 0.0) -> None:
        self.text, self.delay_s = text, delay_s

    def stream_chat(self, messages, options, cancel=None):
        for i, word in enumerate(self.text.split()):
            if cancel is not None and cancel.is_set():
                return
            time.sleep(self.delay_s)
            yield (" " if i else "") + word


class ListSink:
    def __init__(self, sample_rate=None) -> None:
        self.sample_rate = sample_rate
        self.put_clauses: list[str] = []
        self.frames: list[AudioFrame] = []
        self.hold = False  # paused() while set
        self.ahead_s = 0.0

    def put(self, frame, clause) -> None:
        self.frames.append(frame)
        if not self.put_clauses or self.put_clauses[-1] != clause:
            self.put_clauses.append(clause)

    def seconds_ahead(self) -> float:
        return self.ahead_s

    def paused(self) -> bool:
        return self.hold


def pipeline(llm, stall_s=2.0, first_phrase_words=None, lookahead_s=2.5, synthesizer=None):
    return AnswerPipeline(llm, synthesizer or BeepSynthesizer(), GenerationOptions(), RealClock(), stall_s,
                          lookahead_s, first_phrase_words)


async def test_the_answer_is_spoken_clause_by_clause_and_its_text_reported_piece_by_piece():
    sink, seen = ListSink(), []
    spoken = await pipeline(WordsLLM("It is sunny today. Take a hat, and maybe some water")).answer(
        MESSAGES, sink, threading.Event(), seen.append)
    assert spoken.text == "It is sunny today. Take a hat, and maybe some water" == "".join(seen)
    assert spoken.clauses == ["It is sunny today.", "Take a hat, and maybe some water"] == sink.put_clauses
    assert sum(f.duration for f in sink.frames) == pytest.approx(0.12 * 11, abs=0.01)  # BeepSynthesizer: per word


async def test_first_phrase_words_lets_the_first_clause_end_before_a_phrase_starter():
    llm = WordsLLM("The capital of France is Paris. It is old.")
    early = await pipeline(llm, first_phrase_words=4).answer(MESSAGES, ListSink(), threading.Event())
    plain = await pipeline(llm, first_phrase_words=None).answer(MESSAGES, ListSink(), threading.Event())
    assert early.clauses == ["The capital of France", "is Paris.", "It is old."]
    assert plain.clauses == ["The capital of France is Paris.", "It is old."]


async def test_no_progress_raises_worker_stalled_and_cancels():
    cancel = threading.Event()
    with pytest.raises(WorkerStalled, match="no progress for 0.2 s"):
        await pipeline(ScriptedLLM(hang=True), stall_s=0.2).answer(MESSAGES, ListSink(), cancel)
    assert cancel.is_set()


async def test_empty_pieces_count_as_progress_and_are_skipped():
    seen = []
    spoken = await pipeline(ScriptedLLM(extra_words=0, reading_s=0.6), stall_s=0.3).answer(
        MESSAGES, ListSink(), threading.Event(), seen.append)
    assert spoken.text == "Answer to Weather?.." and "" not in seen


async def test_synthesis_waits_while_playback_is_paused_or_far_enough_ahead():
    sink = ListSink()
    sink.hold = True
    task = asyncio.create_task(pipeline(WordsLLM("One. Two. Three.")).answer(MESSAGES, sink, threading.Event()))
    await asyncio.sleep(0.3)
    assert sink.frames == [] and not task.done()
    sink.hold, sink.ahead_s = False, 3.0  # playing, but more than the look-ahead is queued
    await asyncio.sleep(0.3)
    assert sink.frames == [] and not task.done()
    sink.ahead_s = 1.0
    spoken = await asyncio.wait_for(task, 5.0)
    assert sink.put_clauses == spoken.clauses == ["One.", "Two.", "Three."]


async def test_setting_cancel_stops_the_model_and_the_voice():
    cancel, sink, seen, frames_at_cancel = threading.Event(), ListSink(), [], []

    def on_text(piece):
        seen.append(piece)
        if len(seen) == 10:
            cancel.set()
            frames_at_cancel.append(len(sink.frames))

    llm = ScriptedLLM(extra_words=200, delay_s=0.01)
    await asyncio.wait_for(pipeline(llm).answer(MESSAGES, sink, cancel, on_text), 2.0)
    assert len(seen) <= 11  # a piece already on its way may still arrive
    assert len(sink.frames) <= frames_at_cancel[0] + 1


async def test_cancelling_the_task_sets_cancel_for_the_threads():
    cancel = threading.Event()
    task = asyncio.create_task(pipeline(ScriptedLLM(extra_words=500, delay_s=0.01)).answer(MESSAGES, ListSink(),
                                                                                           cancel))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancel.is_set()


async def test_a_failing_voice_fails_the_answer():
    class BrokenSynthesizer:
        def synthesize(self, text):
            raise RuntimeError("voice broke")
            yield

    cancel = threading.Event()
    with pytest.raises(RuntimeError, match="voice broke"):
        await pipeline(WordsLLM("Hello there. Bye."), synthesizer=BrokenSynthesizer()).answer(
            MESSAGES, ListSink(), cancel)
    assert cancel.is_set()


async def test_speak_converts_to_the_sinks_rate_and_returns_the_seconds():
    sink = ListSink(sample_rate=48000)
    seconds = await pipeline(WordsLLM("")).speak("two words", sink)
    assert seconds == pytest.approx(0.24)
    frame = sink.frames[0]
    assert frame.sample_rate == 48000 and frame.samples.dtype == np.int16 and frame.samples.shape[1] == 1
    kept = ListSink()
    await pipeline(WordsLLM("")).speak("two words", kept)
    assert kept.frames[0].sample_rate == BeepSynthesizer.sample_rate  # None: as the voice made it


class TimedSynthesizer(BeepSynthesizer):
    """Beeps, noting when each text's synthesis began."""

    def __init__(self) -> None:
        super().__init__()
        self.started: dict[str, float] = {}

    def synthesize(self, text):
        self.started.setdefault(text, time.monotonic())
        time.sleep(0.05)  # a voice takes a while to start
        yield from super().synthesize(text)


async def test_a_phrase_the_guard_holds_is_synthesised_meanwhile_and_put_only_once_let_through():
    """Holding "The capital of France" until a word of the answer's own is written must not add the phrase's
    synthesis time on top: its audio is made while the guard waits and put into the sink when it lets it go."""
    from duplex.answer_guard import EchoGuard

    synthesizer, sink, written = TimedSynthesizer(), ListSink(), {}
    put_at: list[float] = []
    original_put = sink.put

    def timed_put(frame, clause):
        put_at.append(time.monotonic())
        original_put(frame, clause)

    sink.put = timed_put
    # The first phrase is cut at " the"; "city", the first word of its own, is known whole at " named".
    llm = WordsLLM("The capital of France is the city named Paris.", delay_s=0.1)
    guard = EchoGuard("What is the capital of France?", "Say again?")
    spoken = await pipeline(llm, first_phrase_words=4, synthesizer=synthesizer).answer(
        MESSAGES, sink, threading.Event(), on_text=lambda piece: written.setdefault(piece.strip(), time.monotonic()),
        guard=guard)
    assert synthesizer.started["The capital of France"] < written["named"]  # made while it was held
    assert put_at[0] >= written["named"]  # ... and heard only once the answer said something of its own
    assert sink.put_clauses == spoken.clauses == ["The capital of France", "is the city named Paris."]


async def test_what_the_guard_drops_never_reaches_the_sink():
    from duplex.answer_guard import EchoGuard

    sink = ListSink()
    llm = WordsLLM("But in thawman what are called? More words would follow here.", delay_s=0.02)
    guard = EchoGuard("But in thawman what are called?", "Say again?")
    spoken = await pipeline(llm, first_phrase_words=3, synthesizer=TimedSynthesizer()).answer(
        MESSAGES, sink, threading.Event(), guard=guard)
    assert guard.echoed
    assert sink.put_clauses == spoken.clauses == ["Say again?"]
