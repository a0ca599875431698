"""One spoken (or typed) question in, one spoken answer out: the half-duplex path behind ``assistant ask``.

Stages: VAD trim -> ASR -> LLM (streamed) -> TTS clause by clause, timing each stage. The first clause is
spoken while the model is still writing the rest, so ``first_audio_s`` is well below the total.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from assistant.backends import ModelStack
from assistant.config import AssistantConfig
from audio.asr import Transcript
from audio.clauses import ClauseChunker
from audio.frames import AudioFrame
from audio.vad import trim_to_speech
from duplex.models import ChatMessage, GenerationOptions


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
    messages = [ChatMessage("system", config.llm.system_prompt), *(history or []), ChatMessage("user", question)]
    options = GenerationOptions(max_tokens=config.llm.max_answer_tokens, temperature=config.llm.temperature)
    chunker = ClauseChunker()
    pieces: list[str] = []
    clauses: list[str] = []
    audio: list[AudioFrame] = []
    tts_seconds = 0.0
    start = time.perf_counter()

    def speak(clause: str) -> None:
        nonlocal tts_seconds
        clauses.append(clause)
        tts_start = time.perf_counter()
        for chunk in stack.synthesizer.synthesize(clause):
            if not audio:
                timings["first_audio_s"] = time.perf_counter() - start
            audio.append(chunk)
        tts_seconds += time.perf_counter() - tts_start

    for piece in stack.language_model.stream_chat(messages, options):
        if not piece:
            continue  # "still working" (the prompt being read)
        if not pieces:
            timings["llm_first_token_s"] = time.perf_counter() - start
        pieces.append(piece)
        for clause in chunker.push(piece):
            speak(clause)
    for clause in chunker.flush():
        speak(clause)
    total = time.perf_counter() - start
    timings["tts_s"] = tts_seconds
    timings["llm_s"] = total - tts_seconds
    timings["llm_pieces"] = float(len(pieces))
    answer = "".join(pieces).strip()
    speech = AudioFrame.concatenate(audio) if audio else None
    if speech is not None:
        timings["answer_audio_s"] = speech.duration
    return AskResult(question, answer, speech, None, timings, clauses)


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
