"""The echo guard (issue #16): an answer that only says the question back is stopped and replaced."""

from __future__ import annotations

import pytest

from duplex.answer_guard import EchoGuard, adds_a_word
from duplex.bus import EventLog
from duplex.models import WorkerModels
from duplex.options import DuplexOptions
from duplex.session import DuplexSession
from duplex.timeline import Timeline, run_timeline
from tests.fakes import BeepSynthesizer, EnergyVad, KeywordDecider, PitchRecognizer, ScriptedLLM, tone_speech

# What the bundled SmolLM2 said to misheard questions (benchmarks/answer_quality.py, 2026-12-03): heard -> said
ECHOES = [
    ("But in thawman what are called?", "But in thawman what are called?"),
    ("What last group land has taken from there?", "The last group land has taken from there."),
    ("which often pump slugs around the body.", "Slugs often pump slugs around the body."),
    ("but minute length dot s by dot half", "But, a minute length dot by dot half."),
    ("What is 2 plus 3?", "What is two plus three?"),
]
# ... and what it said when it had an answer, which must pass
ANSWERS = [
    ("What is the capital of the United Kingdom?", "The capital of the United Kingdom is London."),
    ("What is the chemical symbol for water?", "The chemical symbol for water is H2O."),
    ("Is it raining?", "Yes, it is."),
    ("Is the sun a planet?", "No."),
    ("What is two plus three?", "Two plus three is 5."),
]


@pytest.mark.parametrize(("question", "answer"), ECHOES)
def test_an_answer_made_of_the_questions_words_adds_nothing(question, answer):
    assert not adds_a_word(question, answer)


@pytest.mark.parametrize(("question", "answer"), ANSWERS)
def test_an_answer_with_a_word_of_its_own_adds_something(question, answer):
    assert adds_a_word(question, answer)


def test_a_restating_start_is_held_until_a_new_word_then_all_of_it_goes_on():
    guard = EchoGuard("What is the capital of France?", "Say again?")
    assert guard.push("The capital of France") == []  # held: nothing of its own yet
    assert guard.push("is Paris.") == ["The capital of France", "is Paris."]
    assert guard.push("It is lovely.") == ["It is lovely."] and not guard.echoed


def test_a_first_sentence_with_nothing_new_is_replaced_and_the_echo_reported():
    echoes: list[str] = []
    guard = EchoGuard("But in thawman what are called?", "Say again?", on_echo=echoes.append)
    assert guard.push("But in thawman") == []
    assert guard.push("what are called?") == ["Say again?"]
    assert guard.echoed and echoes == ["But in thawman what are called?"]


def test_an_answer_that_ends_while_held_is_judged_at_the_end():
    assert EchoGuard("Where is Paris", "Again?").flush() == []  # nothing written: nothing to say
    unfinished = EchoGuard("Where is Paris", "Again?")
    assert unfinished.push("Paris is where") == [] and unfinished.flush() == ["Again?"]
    answered = EchoGuard("Where is Paris", "Again?")
    assert answered.push("Paris is in France") == ["Paris is in France"] and answered.flush() == []


def session_with(llm: ScriptedLLM, **options) -> tuple[DuplexSession, EventLog, DuplexOptions]:
    log = EventLog()
    duplex_options = DuplexOptions(output_sample_rate=16000, **options)
    session = DuplexSession(WorkerModels(PitchRecognizer(), llm, BeepSynthesizer()), KeywordDecider(), EnergyVad,
                            duplex_options, event_log=log)
    return session, log, duplex_options


async def test_a_spoken_question_said_back_is_stopped_and_the_repeat_phrase_said_instead():
    llm = ScriptedLLM(extra_words=40, delay_s=0.01, echo=True)
    session, log, options = session_with(llm)
    timeline = Timeline(1.0).add_audio(0.5, tone_speech(300, 1.0), "spoken")  # "What is the weather like today?"
    async with session:
        await run_timeline(session, timeline, tail_s=3.0)
    replaced, ended = log.of_kind("AnswerReplaced"), log.of_kind("TurnEnded")
    assert [r["written"] for r in replaced] == ["What is the weather like today."]
    assert ended[0]["status"] == "completed" and ended[0]["answer"] == ended[0]["spoken"] == options.repeat_phrase
    assert llm.words_written < 6 + 10  # stopped after the echo, not run through its 40 more words
    assert [t.text for t in session.history if t.role == "assistant"] == [options.repeat_phrase]


async def test_typed_text_and_a_guard_switched_off_are_answered_as_written():
    for spoken, options in ((False, {}), (True, {"echo_guard": False})):
        llm = ScriptedLLM(extra_words=3, echo=True)
        session, log, _ = session_with(llm, **options)
        timeline = (Timeline(1.0).add_audio(0.5, tone_speech(300, 1.0), "spoken") if spoken
                    else Timeline(1.0).add_text(0.5, "What is the weather like today?"))
        async with session:
            await run_timeline(session, timeline, tail_s=3.0)
        assert not log.of_kind("AnswerReplaced")
        assert log.of_kind("TurnEnded")[0]["answer"].startswith("What is the weather like today.")


def test_a_new_word_written_releases_the_held_phrase_before_its_clause_ends():
    guard = EchoGuard("What is the capital of France?", "Say again?")
    assert guard.push("The capital of France") == []
    assert guard.see("The capital of France is Par") == []  # "Par" may be the start of any word
    assert guard.see("The capital of France is Paris") == []  # nor is a last word known finished
    assert guard.see("The capital of France is Paris.") == ["The capital of France"]
    assert guard.push("is Paris.") == ["is Paris."] and not guard.echoed


def test_a_fragment_of_a_misheard_word_does_not_release_an_echo():
    guard = EchoGuard("But in thawman what are called?", "Say again?")
    assert guard.push("But in thawman what") == []
    assert guard.see("But in thawman what are call") == []  # "call": the start of "called", the question's
    assert guard.push("are called?") == ["Say again?"] and guard.echoed
