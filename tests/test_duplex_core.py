"""The duplex core's behaviour on scripted timelines, with fast fake models (real ones: test_duplex_real.py).

Each test scripts the user ("speaks 0.3-1.5 s, says 'uh-huh' at 2.5 s") and asserts on the event log. Time is
the session's virtual clock (tests/virtual_time.py): the fakes charge the declared costs below and nothing
else, so every time asserted here is the same on a loaded 2-core machine as on an idle one. Wall-clock
latencies belong in benchmarks/duplex_latency.py.
"""

import asyncio
import time

import numpy as np
import pytest

from audio.onset import LevelRise
from duplex.bus import EventBus, EventLog
from duplex.clock import ManualClock
from duplex.conversation import Conversation, MessageTooLong
from duplex.events import (
    AnswerTruncated,
    ErrorEvent,
    Interrupt,
    LLMToken,
    SpeechStarted,
    TurnEnded,
    TurnStarted,
    TurnStatus,
)
from duplex.models import WorkerModels
from duplex.options import DuplexOptions
from duplex.playback import PlaybackBuffer, heard_text
from duplex.session import DuplexSession
from duplex.timeline import Timeline, run_timeline
from duplex.turn_end import turn_looks_complete
from tests.fakes import (
    BeepSynthesizer,
    EnergyVad,
    KeywordDecider,
    PitchRecognizer,
    ScriptedLLM,
    tone_speech,
)
from tests.virtual_time import VirtualClock, VirtualTime, spend

pytestmark = pytest.mark.timeout(120)  # a hang guard only: a run takes a few wall seconds even when loaded

QUESTION, JOKE, UH_HUH, BOOK, TABLE, STOP = 300, 400, 500, 600, 700, 800

# What each fake call costs on the virtual clock.
ASR_S = 0.05  # one transcription
DECIDE_S = 0.01  # one state decision
WORD_S = 0.005  # the language model, per word
TTS_WORD_S = 0.01  # the synthesiser, per word
FRAME_S = EnergyVad.frame_samples / 16000  # one VAD frame: onsets and pauses are measured in these
BLOCK_S = 0.02  # run_timeline's block: the voice is read out, and the microphone heard, in these
FIRST_CLAUSE_WORDS = 3  # "Answer to What."


def scripted(**kwargs) -> ScriptedLLM:
    return ScriptedLLM(delay_s=WORD_S, **kwargs)


def make_session(llm=None, options=None, separate=False):
    def models():
        return WorkerModels(PitchRecognizer(delay_s=ASR_S), llm or scripted(), BeepSynthesizer(TTS_WORD_S))

    log = EventLog()
    pair = (models(), models()) if separate else models()
    session = DuplexSession(pair, KeywordDecider(DECIDE_S), EnergyVad,
                            options or DuplexOptions(output_sample_rate=16000), clock=VirtualClock(),
                            event_log=log)
    return session, log


async def play(session, timeline, **kwargs):
    virtual = VirtualTime(session.clock)
    async with virtual.attached(), session:
        return await run_timeline(session, timeline, pacer=virtual, **kwargs)


def first(log, kind, **match):
    for record in log.records:
        if record["kind"] == kind and all(record.get(k) == v for k, v in match.items()):
            return record
    raise AssertionError(f"no {kind} {match} in {[r['kind'] for r in log.records]}")


def outline(log):
    """The log without the fields measured in wall time (decision cost)."""
    return [{k: v for k, v in record.items() if k != "decide_ms"} for record in log.records]


async def test_plain_turn_is_answered_promptly_and_kept_in_history():
    session, log = make_session()
    opts = session.options
    timeline = Timeline(1.0).add_audio(0.3, tone_speech(QUESTION, 1.2), "user")
    result = await play(session, timeline, tail_s=3.5)
    decision = first(log, "StateDecided")
    assert decision["token"] == "<1>" and decision["text"] == "What is the weather like today?"
    speech_end = first(log, "SpeechEnded")
    turn = first(log, "TurnStarted")
    ended = first(log, "TurnEnded")
    assert ended["status"] == "completed" and ended["spoken"] == ended["answer"]
    roles = [(t.role, t.interrupted) for t in session.history]
    assert roles == [("user", False), ("assistant", False)]
    # The floor is taken at the short silence: transcript and decision were made during the pause already.
    assert opts.short_silence_s <= turn["time"] - speech_end["end"] < opts.short_silence_s + FRAME_S + BLOCK_S
    # The voice starts once the first clause is written and synthesised, and not before.
    first_clause_s = FIRST_CLAUSE_WORDS * (WORD_S + TTS_WORD_S)
    started = first(log, "PlaybackStarted")
    assert first_clause_s <= started["time"] - turn["time"] <= first_clause_s + BLOCK_S
    assert result.speaker_active(started["time"] - result.start_time + 0.05, ended["time"] - result.start_time) > 0.9


async def test_an_unfinished_sentence_waits_for_the_long_silence():
    session, log = make_session()
    opts = session.options
    timeline = Timeline(1.0).add_audio(0.3, tone_speech(BOOK, 0.8), "part1")  # "I want to book", then nothing
    await play(session, timeline, tail_s=2.5)
    interim = first(log, "UserTranscript", final=False)
    assert interim["text"] == "I want to book"
    speech_end = first(log, "SpeechEnded")
    turn = first(log, "TurnStarted")
    assert turn["question"] == "I want to book"
    assert opts.long_silence_s <= turn["time"] - speech_end["end"] <= opts.long_silence_s + DECIDE_S + BLOCK_S
    assert interim["time"] < speech_end["end"] + opts.short_silence_s + ASR_S + BLOCK_S  # heard, then waited


async def test_barge_in_stops_the_answer_keeps_what_was_heard_and_hands_off():
    session, log = make_session(scripted(extra_words=40))
    opts = session.options
    timeline = (Timeline(1.0).add_audio(0.3, tone_speech(QUESTION, 1.0), "q1")
                .add_audio(3.0, tone_speech(JOKE, 1.0), "q2"))
    result = await play(session, timeline, tail_s=3.0)
    onsets = log.of_kind("SpeechStarted")
    assert len(onsets) == 2
    onset = onsets[1]["onset"]
    # the voice paused as soon as the VAD was sure: its start frames after the onset, within one block
    paused = first(log, "Duck", reason="user speech onset")
    assert paused["gain"] == 0.0 and paused["time"] - onset <= opts.vad_start_frames * FRAME_S + BLOCK_S
    interrupt = first(log, "Interrupt")
    # a long segment over the answer is judged while it goes on: the interim decision cut the answer
    assert interrupt["time"] - onset <= opts.interim_decision_s + ASR_S + DECIDE_S + FRAME_S + BLOCK_S
    first_end = first(log, "TurnEnded", turn_id=1)
    assert first_end["status"] == "interrupted"
    assert 0 < len(first_end["spoken"]) < len(first_end["answer"])
    handoffs = log.of_kind("HandOff")
    assert [h["speaker"] for h in handoffs] == ["A", "B"]  # the worker that heard the query answers
    second = first(log, "TurnStarted", turn_id=2)
    assert second["worker"] == "B" and second["question"] == "Tell me a joke please."
    assert second["time"] >= interrupt["time"]
    history = session.history
    assert [t.role for t in history][:3] == ["user", "assistant", "user"]  # the second answer is still playing
    assert history[1].interrupted and history[1].text == first_end["spoken"]
    # the second answer's prompt carried the cut-off answer, and the question says it interrupted
    prompt = session.workers[1].models.language_model.requests[-1]
    assert any(m.role == "assistant" and m.content.endswith("…") for m in prompt)
    assert prompt[-1].role == "user" and prompt[-1].content.startswith("(I interrupted your last answer.)")
    # no assistant audio while the user was asking the second question, from the block after the pause
    q2_start, q2_end = timeline.spans("q2")[0][:2]
    assert result.speaker_active(paused["time"] - result.start_time + BLOCK_S, q2_end) == 0.0
    assert result.speaker_active(q2_start - 1.0, q2_start) > 0.9  # it was speaking until then


async def test_backchannel_pauses_then_resumes_without_losing_words():
    session, log = make_session(scripted(extra_words=30))
    opts = session.options
    timeline = (Timeline(1.0).add_audio(0.3, tone_speech(QUESTION, 1.0), "q")
                .add_audio(2.6, tone_speech(UH_HUH, 0.4), "uh-huh"))
    await play(session, timeline, tail_s=4.5)
    decisions = [d["token"] for d in log.of_kind("StateDecided")]
    assert decisions == ["<1>", "<2>"]
    paused, resumed = first(log, "Duck", reason="user speech onset"), first(log, "Resume")
    assert not log.of_kind("Interrupt")
    # the voice comes back once the short silence after "uh-huh" is judged: no need to wait any longer
    uh_huh_end = log.of_kind("SpeechEnded")[1]["end"]
    assert paused["time"] < uh_huh_end < resumed["time"] <= uh_huh_end + opts.short_silence_s + FRAME_S + BLOCK_S
    ended = first(log, "TurnEnded")
    assert ended["status"] == "completed" and ended["spoken"] == ended["answer"]


async def test_a_sound_lowers_the_voice_at_once_and_it_comes_back_when_no_speech_follows():
    session, log = make_session(scripted(extra_words=40))
    opts = session.options
    hum = tone_speech(QUESTION, 0.2, level=0.011)  # -42 dBFS: a level rise, too quiet for the (fake) VAD
    timeline = Timeline(1.0).add_audio(0.3, tone_speech(QUESTION, 1.0), "q").add_audio(3.0, hum, "hum")
    result = await play(session, timeline, tail_s=2.5)
    lowered = first(log, "Duck", reason="a sound that may be speech")
    assert lowered["gain"] == pytest.approx(opts.quick_duck_gain)
    hum_at = result.start_time + 3.0
    assert 0 <= lowered["time"] - hum_at <= opts.quick_duck_frames * FRAME_S  # its first frames
    back = first(log, "Resume", reason="no speech followed the sound")
    assert back["time"] - lowered["time"] == pytest.approx(opts.quick_duck_confirm_s, abs=FRAME_S)
    assert not log.of_kind("SpeechStarted")[1:] and not log.of_kind("Interrupt")
    # lowered, not silent, while the sound played; full voice again afterwards
    levels = [float(np.sqrt(np.mean(result.speaker[int(a * 16000):int(b * 16000)] ** 2)))
              for a, b in ((2.0, 2.9), (3.1, 3.25), (3.6, 4.0))]
    assert levels[1] == pytest.approx(0.3 * levels[0], rel=0.25) and levels[2] == pytest.approx(levels[0], rel=0.25)


async def test_speech_onset_is_first_heard_as_a_level_rise_then_confirmed():
    session, log = make_session(scripted(extra_words=40))
    opts = session.options
    timeline = (Timeline(1.0).add_audio(0.3, tone_speech(QUESTION, 1.0), "q1")
                .add_audio(3.0, tone_speech(JOKE, 1.0), "q2"))
    result = await play(session, timeline, tail_s=2.0)
    ducks = [d for d in log.of_kind("Duck") if d["time"] > result.start_time + 2.9]
    assert [d["gain"] for d in ducks] == [pytest.approx(0.3), 0.0]  # lowered at the rise, paused at the onset
    onset = log.of_kind("SpeechStarted")[1]["onset"]
    lowered, paused = ducks
    assert lowered["time"] - onset <= opts.quick_duck_frames * FRAME_S + BLOCK_S < paused["time"] - onset
    assert not log.of_kind("Resume")  # the lowering was confirmed, not undone
    assert first(log, "TurnStarted", turn_id=2)["question"] == "Tell me a joke please."


async def test_pause_in_mid_sentence_does_not_take_the_floor():
    session, log = make_session()
    opts = session.options
    timeline = (Timeline(1.0).add_audio(0.3, tone_speech(BOOK, 0.8), "part1")
                .add_audio(1.6, tone_speech(TABLE, 0.8), "part2"))  # a 0.5 s pause after "I want to book"
    result = await play(session, timeline, tail_s=2.5)
    turns = log.of_kind("TurnStarted")
    assert len(turns) == 1
    assert turns[0]["question"] == "I want to book a table for two."
    assert len(log.of_kind("SpeechEnded")) == 1
    speech_end = first(log, "SpeechEnded")
    part2_end = result.start_time + timeline.spans("part2")[0][1]
    assert speech_end["end"] > part2_end - FRAME_S - BLOCK_S  # one segment, to the end of the second part
    assert turns[0]["time"] - speech_end["end"] >= opts.short_silence_s


async def test_typed_message_interrupts_like_speech():
    session, log = make_session(scripted(extra_words=40))
    timeline = Timeline(1.0).add_audio(0.3, tone_speech(QUESTION, 1.0), "q").add_text(3.0, "Stop! What time is it?")
    result = await play(session, timeline, tail_s=2.0)
    typed = first(log, "StateDecided", token="<3>")
    assert typed["text"] == "Stop! What time is it?"
    assert typed["time"] == pytest.approx(result.start_time + 3.0)
    assert first(log, "TurnEnded", turn_id=1)["status"] == "interrupted"
    assert first(log, "Interrupt", turn_id=1)["time"] == pytest.approx(typed["time"])  # at once
    second = first(log, "TurnStarted", turn_id=2)
    assert second["question"] == "Stop! What time is it?" and second["time"] == pytest.approx(typed["time"])
    assert session.history[2].typed


async def test_stop_silences_the_answer_and_the_next_question_is_its_own_turn():
    session, log = make_session(scripted(extra_words=40))
    timeline = (Timeline(1.0).add_audio(0.3, tone_speech(QUESTION, 1.0), "q1")
                .add_audio(3.0, tone_speech(STOP, 0.5), "stop").add_audio(5.0, tone_speech(JOKE, 1.0), "q2"))
    result = await play(session, timeline, tail_s=2.5)
    interrupt = first(log, "Interrupt", turn_id=1)
    assert interrupt["reason"] == "user asked for silence"
    assert first(log, "TurnEnded", turn_id=1)["status"] == "interrupted"
    # no answer to "Stop.": silence until the next question, which is turn 2
    stop_start = timeline.spans("stop")[0][0]
    q2_start = timeline.spans("q2")[0][0]
    assert result.speaker_active(stop_start + 0.1, q2_start) == 0.0
    second = first(log, "TurnStarted", turn_id=2)
    assert second["question"] == "Tell me a joke please." and second["time"] > result.start_time + q2_start
    assert [t.text for t in session.history if t.role == "user"] == [
        "What is the weather like today?", "Stop.", "Tell me a joke please."]
    # the model sees the two user messages as one (chat templates demand alternating roles)
    prompt = session.speaker.models.language_model.requests[-1]
    assert [m.role for m in prompt] == ["system", "user", "assistant", "user"]
    assert prompt[-1].content == "(I interrupted your last answer.) Stop. Tell me a joke please."


async def test_typed_stop_also_just_silences():
    session, log = make_session(scripted(extra_words=40))
    timeline = Timeline(1.0).add_audio(0.3, tone_speech(QUESTION, 1.0), "q").add_text(3.0, "Stop")
    result = await play(session, timeline, tail_s=1.5)
    assert first(log, "TurnEnded", turn_id=1)["status"] == "interrupted"
    assert not [t for t in log.of_kind("TurnStarted") if t["turn_id"] == 2]
    assert session.history[-1].text == "Stop" and session.history[-1].typed
    assert result.speaker_active(3.0 + BLOCK_S, 4.5) == 0.0


async def test_a_failing_model_is_restarted_and_the_user_hears_an_apology():
    session, log = make_session(scripted(fail=True))
    timeline = (Timeline(1.0).add_audio(0.3, tone_speech(QUESTION, 1.0), "q1")
                .add_audio(4.0, tone_speech(JOKE, 1.0), "q2"))
    result = await play(session, timeline, tail_s=3.0)
    error = first(log, "ErrorEvent")
    assert "model exploded" in error["message"] and error["recovered"]
    assert first(log, "TurnEnded", turn_id=1)["status"] == "failed"
    apology = session.options.apology
    apology_audio = [r for r in log.of_kind("AssistantAudio") if r["text"] == apology]
    assert apology_audio
    # the apology is heard at once (as long as synthesising it takes), not silence
    apology_started = first(log, "PlaybackStarted", turn_id=apology_audio[0]["turn_id"])
    assert apology_started["time"] - error["time"] <= TTS_WORD_S * len(apology.split()) + BLOCK_S
    assert result.speaker_active(1.5, 3.5) > 0.2
    assert session.workers[0].restarts == 1
    assert any(t["status"] == "completed" and "Tell" in t["answer"] for t in log.of_kind("TurnEnded"))
    assert [t.text for t in session.history if t.role == "user"] == ["Tell me a joke please."]  # failed one dropped


async def test_a_slow_prompt_that_shows_progress_is_not_a_hung_model():
    # Real clock in part: the stall watchdog counts wall seconds, so the fake reads for 1.5 of them (> 0.5).
    llm = scripted(reading_s=1.5)
    session, log = make_session(llm, DuplexOptions(output_sample_rate=16000, llm_stall_s=0.5))
    timeline = Timeline(1.0).add_audio(0.3, tone_speech(QUESTION, 1.0), "q1")
    await play(session, timeline, tail_s=5.0)
    assert not log.of_kind("ErrorEvent")
    assert first(log, "TurnEnded", turn_id=1)["status"] == "completed"
    assert session.workers[0].restarts == session.workers[1].restarts == 0


async def test_bad_typed_text_is_cleaned_or_refused_and_the_call_goes_on():
    session, log = make_session(scripted(extra_words=2))
    with pytest.raises(MessageTooLong):
        session.push_text("word " * 1000)  # over a third of the history budget: refused, nothing changes
    timeline = (Timeline(1.0).add_text(0.2, "\ud800\x00")  # nothing left once cleaned: no turn
                .add_text(0.5, "Hello\ud800 there").add_text(3.0, "And again?"))
    await play(session, timeline, tail_s=3.0)
    assert [t["status"] for t in log.of_kind("TurnEnded")] == ["completed", "completed"]
    assert [t.text for t in session.history if t.role == "user"] == ["Hello there", "And again?"]


async def test_closing_during_an_answer_ends_the_turn_in_the_log():
    """A server stopping mid-answer left an event log that ended in the middle of the turn."""
    session, log = make_session(scripted(extra_words=60))
    timeline = Timeline(1.0).add_audio(0.3, tone_speech(QUESTION, 1.0), "q")
    await play(session, timeline, tail_s=1.5)  # leaves the session (closes it) while the answer plays
    ended = log.of_kind("TurnEnded")
    assert [t["status"] for t in ended] == ["closed"] and ended[0]["spoken"]
    assert log.records[-1]["kind"] in ("TurnEnded", "PlaybackStopped")


async def test_a_second_close_returns_only_when_the_first_has_finished():
    """A call's close and a stopping server's close overlapped: the second returned at once, the loop was
    stopped, and the first close never reached the thread pools (a VAD thread ran on for the whole test run)."""
    session, _ = make_session()
    await session.start()
    first_close = asyncio.create_task(session.close())
    await asyncio.sleep(0)  # the first close is under way, waiting for the session's tasks to end
    assert session.closed and not first_close.done()
    await session.close()
    assert first_close.done()


async def test_a_hung_model_is_restarted():
    # Real clock in part: the stall watchdog counts wall seconds; the hung call holds the virtual clock till then.
    llm = scripted(hang=True)
    session, log = make_session(llm, DuplexOptions(output_sample_rate=16000, llm_stall_s=0.5))
    session.bus.add_listener(lambda event: isinstance(event, ErrorEvent) and llm.release.set())
    timeline = (Timeline(1.0).add_audio(0.3, tone_speech(QUESTION, 1.0), "q1")
                .add_audio(3.5, tone_speech(JOKE, 1.0), "q2"))
    result = await play(session, timeline, tail_s=3.0)
    error = first(log, "ErrorEvent")
    assert "no progress for 0.5 s" in error["message"]
    assert error["time"] < result.start_time + 3.5  # found out before the next question
    assert first(log, "TurnEnded", turn_id=1)["status"] == "failed"
    assert session.workers[0].restarts == 1
    assert any(t["status"] == "completed" for t in log.of_kind("TurnEnded"))


async def test_separate_model_copies_per_worker():
    session, log = make_session(separate=True)
    assert session.workers[0].models is not session.workers[1].models
    await play(session, Timeline(1.0).add_audio(0.3, tone_speech(QUESTION, 1.0)), tail_s=4.0)
    assert first(log, "TurnEnded")["status"] == "completed"
    assert session.workers[0].models.language_model.requests and not session.workers[1].models.language_model.requests


async def test_the_same_timeline_gives_the_same_log_to_the_millisecond():
    """The virtual clock's point: a run does not depend on how fast the machine happens to be."""
    logs = []
    for _ in range(2):
        session, log = make_session(scripted(extra_words=40))
        timeline = (Timeline(1.0).add_audio(0.3, tone_speech(QUESTION, 1.0), "q1")
                    .add_audio(3.0, tone_speech(JOKE, 1.0), "q2").add_audio(5.2, tone_speech(UH_HUH, 0.4)))
        await play(session, timeline, tail_s=2.0)
        logs.append(outline(log))
    assert len(logs[0]) > 20 and logs[0] == logs[1]


# --- pieces ----------------------------------------------------------------------------------------

async def test_virtual_time_charges_declared_costs_not_wall_time():
    clock = VirtualClock()
    virtual = VirtualTime(clock)

    def slow_but_cheap():  # real work, a small declared cost
        time.sleep(0.2)
        spend(0.05)
        return clock.now()

    def streaming():  # each item charged on from the last
        for _ in range(3):
            spend(0.1)
            yield clock.now()

    woke = []

    async def sleeper():
        await clock.sleep(0.25)
        woke.append(clock.now())

    async with virtual.attached():
        loop = asyncio.get_running_loop()
        cheap = loop.run_in_executor(None, slow_but_cheap)
        stream = loop.run_in_executor(None, lambda: list(streaming()))
        sleeping = asyncio.create_task(sleeper())
        await virtual.wait_until(clock, 1.0)
        assert clock.now() == 1.0 and woke == [0.25]
        assert await cheap == pytest.approx(0.05)
        assert await stream == pytest.approx([0.1, 0.2, 0.3])
        await sleeping


def test_heard_text_keeps_whole_clauses_and_the_played_share_of_the_cut_one():
    clock = ManualClock()
    events = []
    buffer = PlaybackBuffer(16000, clock, events.append)
    from audio.frames import AudioFrame

    buffer.enqueue(1, AudioFrame(np.ones(8000, np.int16), 16000), "one two three")
    buffer.enqueue(1, AudioFrame(np.ones(16000, np.int16), 16000), "four five six seven")
    buffer.read(8000 + 8000)  # the first clause and half of the second
    played = buffer.interrupt(1)
    assert heard_text(played) == "one two three four five"
    assert [type(e).__name__ for e in events] == ["PlaybackStarted", "PlaybackStopped"]
    assert not buffer.speaking


def test_paused_playback_keeps_its_place():
    buffer = PlaybackBuffer(16000, ManualClock(), lambda e: None)
    from audio.frames import AudioFrame

    buffer.enqueue(1, AudioFrame(np.arange(1, 1001, dtype=np.int16), 16000), "x")
    first_part = buffer.read(100)
    buffer.give_way()
    assert not buffer.read(100).any()
    buffer.resume()
    assert np.array_equal(np.concatenate([first_part, buffer.read(100)]), np.arange(1, 201, dtype=np.int16))


def test_history_stays_within_the_token_budget_and_marks_interruptions():
    conversation = Conversation("sys", token_budget=60)
    for i in range(10):
        conversation.add_user(f"question number {i} " * 3, i)
        conversation.add_assistant(f"answer number {i} " * 3, i + 0.5, interrupted=(i == 9))
    messages = conversation.messages()
    assert messages[0].role == "system" and messages[1].role == "user"
    assert len(messages) < 21 and "question number 9" in messages[-2].content
    assert messages[-1].content.endswith("…")  # the cut answer, as heard
    conversation.add_user("and now?", 10)
    last = conversation.messages()[-1]
    assert last.role == "user" and last.content == "(I interrupted your last answer.) and now?"
    assert "interrupted" not in conversation.messages()[-2].content  # no marker for the model to copy


def test_turn_completeness():
    assert turn_looks_complete("What is the weather like today?")
    assert turn_looks_complete("Tell me a joke")
    assert not turn_looks_complete("I want to book")
    assert not turn_looks_complete("I want to book.")
    assert not turn_looks_complete("a table for um")
    assert not turn_looks_complete("so I was thinking...")
    assert not turn_looks_complete("")


async def test_control_events_overtake_data_and_slow_subscribers_drop_old_data():
    bus = EventBus()
    subscription = bus.subscribe("slow", max_data=3)
    for i in range(5):
        bus.publish(LLMToken(time=i, worker="A", turn_id=1, text=str(i)))
    bus.publish(Interrupt(time=9, turn_id=1, reason="test"))
    received = [await subscription.get() for _ in range(4)]
    assert isinstance(received[0], Interrupt)
    assert [e.text for e in received[1:]] == ["2", "3", "4"] and subscription.dropped == 2
    only = bus.subscribe("speech", kinds=[SpeechStarted])
    bus.publish(LLMToken(time=10, worker="A", turn_id=1, text="x"))
    assert only.get_nowait() is None


async def test_manual_clock_wakes_sleepers_in_order():
    clock = ManualClock()
    woke = []

    async def sleeper(name, seconds):
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper("late", 2.0)), asyncio.create_task(sleeper("early", 0.5))]
    await asyncio.sleep(0)
    await clock.advance(1.0)
    assert woke == [("early", 0.5)]
    await clock.advance(1.0)
    assert woke == [("early", 0.5), ("late", 2.0)]
    await asyncio.gather(*tasks)


def test_event_log_writes_json_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    log(Interrupt(time=1.23456, turn_id=3, reason="user query"))
    log.close()
    import json

    record = json.loads(path.read_text().strip())
    assert record == {"kind": "Interrupt", "time": 1.2346, "turn_id": 3, "reason": "user query", "played_s": 0.0}


def test_level_rise_follows_the_floor():
    rise = LevelRise(0.032, rise_db=15.0, min_dbfs=-50.0)
    assert not any(rise.push(-70.0) for _ in range(30))  # a quiet room
    assert rise.push(-45.0)  # 25 dB above the floor and above the minimum
    assert not rise.push(-58.0)  # above the floor, but quieter than the minimum
    steady = [rise.push(-40.0) for _ in range(50)]  # a fan switched on: a rise at first, then the new floor
    assert steady[0] and not any(steady[-10:])  # the floor catches up within ~1.2 s
    assert rise.push(-20.0)  # speech over the fan


def test_heard_text_until_keeps_the_words_within_what_the_client_played():
    from audio.frames import AudioFrame
    from duplex.playback import heard_text_until

    buffer = PlaybackBuffer(16000, ManualClock(), lambda e: None)
    buffer.enqueue(1, AudioFrame(np.ones(8000, np.int16), 16000), "one two three four")
    buffer.enqueue(1, AudioFrame(np.ones(16000, np.int16), 16000), "five six seven eight")
    buffer.read(8000 + 8000)  # sent: the first clause and half of the second
    played = buffer.interrupt(1)
    assert heard_text_until(played, 4000) == "one two"  # the client played only a quarter second of it
    assert heard_text_until(played, 8000 + 4000) == "one two three four five"
    assert heard_text_until(played, 10 ** 6) == heard_text(played) == "one two three four five six"
    assert heard_text_until(played, 0) == ""


async def test_the_transport_api_cuts_stops_and_reinstructs_the_session():
    """What a transport whose client plays from its own buffer calls: ``truncate_answer`` (the history keeps
    what the client played), ``interrupt`` (stop the answer), ``set_instructions`` (the next prompt)."""
    session, log = make_session(scripted(extra_words=40))
    stopped: list[float] = []

    def stop_after_a_second_and_a_half(done: int, total: int) -> None:
        if not stopped and session.output.turn(1).played_samples > 16000 * 1.5:
            stopped.append(session.clock.now())
            session.interrupt("the client cancelled")

    await play(session, Timeline(1.0).add_text(0.2, "Tell me a joke please."), tail_s=4.0,
               on_block=stop_after_a_second_and_a_half)
    assert stopped
    ended = log.of_type(TurnEnded)[0]
    assert ended.status is TurnStatus.INTERRUPTED and 0 < len(ended.spoken) < len(ended.answer)
    assert ended.time == stopped[0]
    assert len(log.of_type(TurnStarted)) == 1  # stopping starts no new answer
    answer = session.history[-1]
    assert answer.role == "assistant" and answer.text == ended.spoken
    kept = session.truncate_answer(1, 0.5)  # its client played only half a second
    assert kept == answer.text and answer.interrupted
    assert 0 < len(kept.split()) < len(ended.spoken.split())
    cut = log.of_type(AnswerTruncated)[-1]
    assert cut.turn_id == 1 and cut.heard_s == 0.5 and cut.spoken == kept
    assert session.truncate_answer(99, 1.0) is None  # no such answer: nothing changes
    session.set_instructions("Answer in French.\x00")
    assert session.conversation.messages()[0].content == "Answer in French."


def test_a_listener_added_first_sees_an_event_before_what_the_others_publish_for_it():
    bus = EventBus()
    seen: list[str] = []

    def floor(event):
        seen.append("floor:" + event.kind)
        if isinstance(event, SpeechStarted):
            bus.publish(Interrupt(time=0.0, turn_id=1, reason="test"))

    bus.add_listener(floor)
    bus.add_listener(lambda event: seen.append("first:" + event.kind), first=True)
    bus.publish(SpeechStarted(time=0.0, onset=0.0, segment_id=1))
    assert seen == ["first:SpeechStarted", "floor:SpeechStarted", "first:Interrupt", "floor:Interrupt"]
