"""The core's parts one at a time: the segment state machine, and the bus as the path decisions take (the
floor and the voice act on published events, not on direct calls)."""

import asyncio
import contextlib

import numpy as np
import pytest

from audio.frames import AudioFrame
from duplex.bus import EventLog
from duplex.clock import ManualClock
from duplex.events import (
    Duck,
    Interrupt,
    QueryHeard,
    Resume,
    SpeechDismissed,
    SpeechStarted,
    TurnEnded,
    TurnStarted,
    TurnStatus,
)
from duplex.models import WorkerModels
from duplex.options import DuplexOptions
from duplex.segment import Segment, SegmentState, SegmentTransitionError
from duplex.session import DuplexSession
from tests.fakes import BeepSynthesizer, EnergyVad, KeywordDecider, PitchRecognizer, ScriptedLLM


def make_segment() -> Segment:
    return Segment(1, 0.0, listener=None, audio=[], probabilities=[], overlapped_assistant=False)  # type: ignore[arg-type]


def test_a_segment_moves_only_along_its_transitions():
    segment = make_segment()
    for state in (SegmentState.PAUSED, SegmentState.SPEAKING, SegmentState.PAUSED, SegmentState.JUDGING,
                  SegmentState.IGNORED, SegmentState.ABSORBED):
        segment.move(state)
        assert segment.state is state
    assert not segment.open


@pytest.mark.parametrize("path", [
    (SegmentState.JUDGING, SegmentState.SPEAKING),  # a closed segment never reopens
    (SegmentState.JUDGING, SegmentState.QUERY, SegmentState.ABSORBED),  # a query is answered, not merged
    (SegmentState.JUDGING, SegmentState.NOISE, SegmentState.IGNORED),
    (SegmentState.QUERY,),  # judged before it was closed
])
def test_a_segment_refuses_other_moves(path):
    segment = make_segment()
    with pytest.raises(SegmentTransitionError):
        for state in path:
            segment.move(state)


def test_heard_counts_what_a_piece_of_work_listens_to():
    segment = make_segment()
    segment.audio += [np.zeros(512, np.int16)] * 3
    segment.probabilities += [0.9, 0.8]
    assert segment.heard_now() == (3, 2) and segment.heard_now().vad_frames == 2
    assert len(segment.samples(2)) == 1024


def make_session(clock):
    log = EventLog()
    session = DuplexSession(WorkerModels(PitchRecognizer(), ScriptedLLM(), BeepSynthesizer()), KeywordDecider(),
                            EnergyVad, DuplexOptions(output_sample_rate=16000), clock=clock, event_log=log)
    return session, log


async def until(condition, clock, session=None, step_s=0.02, limit_s=10.0):
    """Advance the manual clock (and let tasks run; play ``session``'s output as a transport would) until
    ``condition()``; fail past ``limit_s`` of it."""
    waited = 0.0
    while not condition():
        assert waited < limit_s, "the condition never came true"
        await asyncio.sleep(0.001)
        await clock.advance(step_s)
        if session is not None:
            session.output.read(int(step_s * session.output.sample_rate))
        waited += step_s


async def test_a_query_published_on_the_bus_takes_the_floor_and_a_second_one_interrupts_it():
    clock = ManualClock()
    session, log = make_session(clock)
    async with session:
        session.bus.publish(QueryHeard(time=clock.now(), worker="A", segment_id=7, text="Tell me a joke.",
                                       from_time=clock.now()))
        started = log.of_type(TurnStarted)
        # at once: listeners are synchronous
        assert [(t.worker, t.question) for t in started] == [("A", "Tell me a joke.")]
        assert session.speaker.name == "A" and session.listener.name == "B"
        await until(lambda: session.output.speaking, clock)
        session.bus.publish(QueryHeard(time=clock.now(), worker="B", segment_id=8,
                                       text="What is the weather like today?", from_time=clock.now()))
        ended = log.of_type(TurnEnded)
        assert [e.status for e in ended] == [TurnStatus.INTERRUPTED]
        assert log.of_type(Interrupt)[0].reason == "user query"
        assert session.speaker.name == "B" and session.history[1].interrupted
        await until(lambda: any(e.status is TurnStatus.COMPLETED for e in log.of_type(TurnEnded)), clock, session)
        assert session.history[-1].role == "assistant" and not session.history[-1].interrupted


@contextlib.asynccontextmanager
async def answering():
    """A session on a manual clock whose voice is answering a typed question."""
    clock = ManualClock()
    session, log = make_session(clock)
    async with session:
        session.push_text("Tell me a joke.")
        await until(lambda: session.output.speaking, clock)
        yield session, log, clock


async def test_an_interim_query_only_cuts_the_answer():
    async with answering() as (session, log, clock):
        session.bus.publish(QueryHeard(time=clock.now(), worker="B", segment_id=3, text="wait", from_time=clock.now(),
                                       interim=True))
        assert [e.status for e in log.of_type(TurnEnded)] == [TurnStatus.INTERRUPTED]
        assert len(log.of_type(TurnStarted)) == 1  # no new turn until the segment ends
        assert log.of_type(Interrupt)[0].reason == "user query (interim decision)"


async def test_speech_over_the_voice_makes_it_give_way_and_a_dismissal_brings_it_back():
    async with answering() as (session, log, clock):
        session.bus.publish(SpeechStarted(time=clock.now(), onset=clock.now(), segment_id=1, overlaps_assistant=True))
        assert session.output.giving_way and log.of_type(Duck)[-1].reason == "user speech onset"
        assert not session.output.read(1600).any()  # paused (duck_gain 0)
        session.bus.publish(SpeechDismissed(time=clock.now(), segment_id=1, reason="not a query"))
        assert not session.output.giving_way and log.of_type(Resume)[-1].reason == "not a query"
        assert session.output.read(1600).any()
        assert not log.of_type(Interrupt)


def test_the_session_input_path_is_typed_frames():
    frame = AudioFrame(np.zeros(320, np.float32), 16000)
    session, _ = make_session(ManualClock())
    scored = session.input.analyse(frame)
    assert scored == [] or all(s.samples.dtype == np.int16 for s in scored)  # 320 samples: under one VAD frame
    scored = session.input.analyse(AudioFrame(np.zeros(16000, np.float32), 16000))
    assert len(scored) == (16320 // session.input.vad.frame_samples) and scored[0].probability == 0.0
