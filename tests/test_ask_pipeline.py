"""`assistant ask` answers through the sessions' pipeline and options (fake models; the real ones: test_ask.py)."""

import time

import pytest

from assistant.ask import ask
from assistant.backends import ModelStack
from assistant.config import AssistantConfig
from duplex.answer import WorkerStalled
from tests.fakes import BeepSynthesizer, EnergyVad, PitchRecognizer, ScriptedLLM
from tests.test_answer import WordsLLM


def fake_stack(llm) -> ModelStack:
    return ModelStack(PitchRecognizer(), llm, BeepSynthesizer(), EnergyVad())


def config_with(**duplex) -> AssistantConfig:
    config = AssistantConfig()
    for name, value in duplex.items():
        config.set(f"duplex.{name}", value)
    return config


def test_ask_cuts_the_first_clause_as_the_sessions_do():
    stack = fake_stack(WordsLLM("The capital of France is Paris. It is old.", delay_s=0.01))
    assert AssistantConfig().duplex.first_phrase_words == 4  # the sessions' default, and so ask's
    result = ask(stack, AssistantConfig(), text="What is the capital of France?")
    assert result.clauses == ["The capital of France", "is Paris.", "It is old."]
    assert result.answer == "The capital of France is Paris. It is old."
    plain = ask(stack, config_with(first_phrase_words=None), text="What is the capital of France?")
    assert plain.clauses == ["The capital of France is Paris.", "It is old."]


def test_ask_keeps_the_spoken_audio_and_its_timings():
    result = ask(fake_stack(WordsLLM("Sunny today. Take a hat.", delay_s=0.02)), AssistantConfig(), text="Weather?")
    assert result.speech is not None and result.speech.sample_rate == BeepSynthesizer.sample_rate
    assert result.speech.duration == pytest.approx(0.12 * 5, abs=0.01)
    timings = result.timings
    # the order the CLI prints them in
    assert list(timings) == ["llm_first_token_s", "first_audio_s", "tts_s", "llm_s", "llm_pieces",
                             "answer_audio_s", "total_s"]
    assert timings["llm_pieces"] == 5
    assert 0 < timings["llm_first_token_s"] < timings["first_audio_s"] < timings["total_s"]
    assert timings["llm_s"] >= 0.08  # five pieces, 20 ms apart
    assert 0 < timings["tts_s"] < timings["total_s"]
    assert timings["answer_audio_s"] == pytest.approx(result.speech.duration)


def test_a_stalled_model_fails_the_question_without_waiting_for_its_thread():
    began = time.perf_counter()
    with pytest.raises(WorkerStalled, match="no progress for 0.3 s"):
        ask(fake_stack(ScriptedLLM(hang=True)), config_with(llm_stall_s=0.3), text="Hello?")
    assert time.perf_counter() - began < 3.0  # the stuck thread sleeps 5 s
