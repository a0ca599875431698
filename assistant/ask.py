"""One spoken (or typed) question in, one spoken answer out: the half-duplex path behind ``assistant ask``.

Stages: VAD trim -> ASR -> LLM (streamed) -> TTS clause by clause, timing each stage. The answer goes
through the sessions' own pipeline (``duplex.answer``, with their ``duplex`` options): the first clause is
spoken while the model is still writing the rest, so ``first_audio_s`` is well below the total.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from assistant.backends import ModelStack
from assistant.config import AssistantConfig
from audio.asr import Transcript
from audio.frames import AudioFrame
from audio.vad import trim_to_speech
from duplex.answer import AnswerPipeline
from duplex.clock import RealClock
from duplex.models import ChatMessage, SpeechSynthesizer


class NoSpeechError(ValueError):
    """The audio holds nothing the assistant could take as a question."""


@dataclass
class AskResult:
    question: str
    answer: str
    speech: AudioFrame | None
    transcript: Transcript | None = None
    timings: dict[str, float] = field(default_factory=dict)
    clauses: list[str] = field(default_factory=list)


def transcribe_question(stack: ModelStack, audio: AudioFrame, config: AssistantConfig,
                        timings: dict[str, float]) -> Transcript:
    start = time.perf_counter()
    speech = trim_to_speech(audio, stack.vad, threshold=config.vad.threshold)
    timings["vad_s"] = time.perf_counter() - start
    if speech is None:
        raise NoSpeechError(f"no speech found in {audio.duration:.1f} s of audio")
    timings["speech_s"] = speech.duration
    start = time.perf_counter()
    transcript = stack.recognizer.transcribe(speech.mono_float32())
    timings["asr_s"] = time.perf_counter() - start
    if transcript.looks_like_noise:
        raise NoSpeechError(f"heard sound but no words (ASR: {transcript.text!r}, "
                            f"no-speech probability {transcript.no_speech_prob:.2f})")
    return transcript


def speak_answer(stack: ModelStack, question: str, config: AssistantConfig,
                 timings: dict[str, float], history: list[ChatMessage] | None = None) -> AskResult:
    """The sessions' answer pipeline with its audio kept, not played. ``tts_s`` overlaps ``llm_s``: the
    voice speaks one clause while the model writes the next."""
    messages = [ChatMessage("system", config.llm.system_prompt), *(history or []), ChatMessage("user", question)]
    generation = config.llm.generation()
    synthesizer = _TimedSynthesizer(stack.synthesizer)
    options = config.duplex
    pieces: list[str] = []
    start = time.perf_counter()
    last_piece_at = start
    collected = _CollectedSpeech(start, timings)

    def on_text(piece: str) -> None:
        nonlocal last_piece_at
        last_piece_at = time.perf_counter()
        if not pieces:
            timings["llm_first_token_s"] = last_piece_at - start
        pieces.append(piece)

    # Two threads: the model's stream and the voice. Not waited for at the end: a stalled model's thread
    # must not hold up the error.
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ask")
    pipeline = AnswerPipeline(stack.language_model, synthesizer, generation, RealClock(), options.llm_stall_s,
                              options.tts_lookahead_s, options.first_phrase_words, executor)
    try:
        spoken = asyncio.run(pipeline.answer(messages, collected, threading.Event(), on_text))
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    timings["tts_s"] = synthesizer.seconds
    timings["llm_s"] = (last_piece_at if pieces else time.perf_counter()) - start
    timings["llm_pieces"] = float(len(pieces))
    speech = AudioFrame.concatenate(collected.frames) if collected.frames else None
    if speech is not None:
        timings["answer_audio_s"] = speech.duration
    return AskResult(question, spoken.text.strip(), speech, None, timings, spoken.clauses)


class _CollectedSpeech:
    """The answer's audio kept in a list: nothing plays it, so synthesis never waits."""

    sample_rate: int | None = None  # as the voice made it

    def __init__(self, start: float, timings: dict[str, float]) -> None:
        self.start, self.timings = start, timings
        self.frames: list[AudioFrame] = []

    def put(self, frame: AudioFrame, clause: str) -> None:
        if not self.frames:
            self.timings["first_audio_s"] = time.perf_counter() - self.start
        self.frames.append(frame)

    def seconds_ahead(self) -> float:
        return 0.0

    def paused(self) -> bool:
        return False


class _TimedSynthesizer:
    """The stack's voice, counting the seconds spent synthesising."""

    def __init__(self, synthesizer: SpeechSynthesizer) -> None:
        self.synthesizer = synthesizer
        self.name, self.sample_rate = synthesizer.name, synthesizer.sample_rate
        self.seconds = 0.0

    def synthesize(self, text: str) -> Iterator[AudioFrame]:
        chunks = iter(self.synthesizer.synthesize(text))
        while True:
            began = time.perf_counter()
            chunk = next(chunks, None)
            self.seconds += time.perf_counter() - began
            if chunk is None:
                return
            yield chunk


def ask(stack: ModelStack, config: AssistantConfig, audio: AudioFrame | None = None,
        text: str | None = None) -> AskResult:
    """Answer one question given as audio or text."""
    if (audio is None) == (text is None):
        raise ValueError("give exactly one of audio or text")
    timings: dict[str, float] = {}
    begin = time.perf_counter()
    transcript = None
    if audio is not None:
        transcript = transcribe_question(stack, audio, config, timings)
        question = transcript.text
    else:
        assert text is not None  # exactly one of the two, checked above
        question = text.strip()
        if not question:
            raise NoSpeechError("the question text is empty")
    answering_started = time.perf_counter()
    result = speak_answer(stack, question, config, timings)
    result.transcript = transcript
    if "first_audio_s" in timings:  # from the end of the user's input to the first sound of the answer
        timings["first_audio_s"] += answering_started - begin
    timings["total_s"] = time.perf_counter() - begin
    return result
