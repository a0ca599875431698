"""Asking the user to say it again when the words heard are too unsure (issue #16), with fake models."""

from __future__ import annotations

from duplex.bus import EventLog
from duplex.clarify import repeat_reason
from duplex.models import WorkerModels
from duplex.options import DuplexOptions
from duplex.session import DuplexSession
from duplex.timeline import Timeline, run_timeline
from tests.fakes import BeepSynthesizer, EnergyVad, KeywordDecider, PitchRecognizer, ScriptedLLM, tone_speech


def test_unsure_words_are_asked_again_and_typed_text_never_is():
    assert repeat_reason("the", -0.2, typed=False, below_logprob=None).startswith("a lone function word")
    assert repeat_reason("the", -0.2, typed=False, below_logprob=None, lone_function_word=False) == ""
    assert repeat_reason("Bree Cotton's on fruit.", -1.3, typed=False, below_logprob=-0.9).startswith("unsure words")
    assert repeat_reason("What is the capital of France?", -0.3, typed=False, below_logprob=-0.9) == ""
    assert repeat_reason("Bree Cotton's on fruit.", -1.3, typed=False, below_logprob=None) == ""  # switched off
    assert repeat_reason("the", -3.0, typed=True, below_logprob=-0.9) == ""
    assert repeat_reason("Weather?", -0.2, typed=False, below_logprob=-0.9) == ""  # one word, but a request
    assert repeat_reason("What time is it?", None, typed=False, below_logprob=-0.9) == ""  # confidence unknown


async def test_a_query_heard_unsurely_gets_the_repeat_phrase_not_a_model_answer():
    llm, log = ScriptedLLM(extra_words=3), EventLog()
    # the fake recogniser's words come with a mean log-probability of -0.2: below a bar of -0.1
    options = DuplexOptions(output_sample_rate=16000, repeat_below_logprob=-0.1)
    session = DuplexSession(WorkerModels(PitchRecognizer(), llm, BeepSynthesizer()), KeywordDecider(), EnergyVad,
                            options, event_log=log)
    timeline = (Timeline(1.0).add_audio(0.5, tone_speech(300, 1.0), "spoken")
                .add_text(6.0, "What is the weather like today?"))
    async with session:
        await run_timeline(session, timeline, tail_s=3.0)
    started, ended = log.of_kind("TurnStarted"), log.of_kind("TurnEnded")
    assert [bool(t["asks_to_repeat"]) for t in started] == [True, False], started
    assert "-0.20 < -0.10" in started[0]["asks_to_repeat"]
    assert ended[0]["status"] == "completed" and ended[0]["answer"] == options.repeat_phrase
    assert len(llm.requests) == 1  # only the typed question reached the model
    assert [t.text for t in session.history][:2] == ["What is the weather like today?", options.repeat_phrase]
