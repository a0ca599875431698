"""The camera input of a session with a fake describer: sampling, latest-frame-wins, bad input, a camera
that stops, and the visual context reaching the decision, the answer and the history.
(The real describers and the real session: test_vision_real.py.)"""

from __future__ import annotations

import asyncio
import logging
import threading

import numpy as np
import pytest

from duplex.bus import EventLog
from duplex.camera_frames import BadFrame, check_frame, frame_change, thumbnail, to_rgb
from duplex.clock import ManualClock
from duplex.models import WorkerModels
from duplex.options import DuplexOptions
from duplex.session import DuplexSession
from duplex.timeline import Timeline, run_timeline
from duplex.vision import VisionInput
from tests.fakes import BeepSynthesizer, EnergyVad, KeywordDecider, PitchRecognizer, ScriptedLLM, tone_speech

QUESTION = 300


class CountingDescriber:
    """Describes a frame by its mean colour; ``gate`` (when given) holds each call until it is set."""

    name = "counting"

    def __init__(self, gate: threading.Event | None = None, fail_on: int | None = None) -> None:
        self.gate, self.fail_on = gate, fail_on
        self.calls = 0
        self.shapes: list[tuple[int, ...]] = []

    def describe(self, frame: np.ndarray) -> str:
        self.calls += 1
        self.shapes.append(frame.shape)
        if self.gate is not None:
            self.gate.wait(5.0)
        if self.fail_on == self.calls:
            raise RuntimeError("describer exploded")
        return f"a frame of mean level {int(frame.mean())}"


def solid(level: int, height: int = 48, width: int = 64) -> np.ndarray:
    return np.full((height, width, 3), level, dtype=np.uint8)


def make_input(describer=None, clock=None, speaking=lambda: False, audio_busy=lambda: False, **options):
    events = []
    clock = clock or ManualClock()
    vision = VisionInput(describer, events.append, clock, DuplexOptions(**options), speaking, audio_busy)
    return vision, events, clock


def of_kind(events, name):
    return [e for e in events if type(e).__name__ == name]


async def until(condition, timeout=5.0):
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


# --- frames and conversions ------------------------------------------------------------------------

def test_grey_rgba_float_and_large_frames_become_small_rgb_uint8():
    grey = np.full((40, 60), 200, dtype=np.uint8)
    assert to_rgb(grey, 1280).shape == (40, 60, 3) and to_rgb(grey, 1280)[0, 0].tolist() == [200, 200, 200]
    rgba = np.zeros((40, 60, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 7
    assert to_rgb(rgba, 1280)[0, 0].tolist() == [255, 0, 0]
    floats = np.full((10, 10, 3), 0.5, dtype=np.float32)
    floats[0, 0] = np.nan
    converted = to_rgb(floats, 1280)
    assert converted.dtype == np.uint8 and converted[5, 5, 0] == 128 and converted[0, 0, 0] == 0
    large = np.broadcast_to(np.uint8(9), (3000, 4000, 3))  # 12 MP without the memory
    small = to_rgb(large, 1280)
    assert max(small.shape[:2]) <= 1280 and small.flags.c_contiguous


@pytest.mark.parametrize("bad, why", [
    (b"\xff\xd8 not decoded", "not a readable image"),
    ([[1, 2], [3, 4]], "numpy array"),
    (np.zeros((10, 10, 2), np.uint8), "shape"),
    (np.zeros((0, 10, 3), np.uint8), "empty"),
    (np.zeros((10, 10, 3), object), "uint8"),
    (np.broadcast_to(np.uint8(0), (20000, 20000, 3)), "MP limit"),
])
def test_bad_frames_are_refused_with_a_reason(bad, why):
    with pytest.raises(BadFrame, match=why):
        check_frame(bad, DuplexOptions().vision_max_input_pixels)


def test_change_detection():
    assert frame_change(None, thumbnail(solid(10))) == 1.0
    assert frame_change(thumbnail(solid(100)), thumbnail(solid(101))) < 0.01
    assert frame_change(thumbnail(solid(0)), thumbnail(solid(255))) > 0.99


# --- the vision input ------------------------------------------------------------------------------

async def test_frames_are_sampled_rarely_when_idle_and_often_while_the_user_speaks():
    speaking = {"now": False}
    vision, events, clock = make_input(CountingDescriber(), speaking=lambda: speaking["now"],
                                       vision_idle_interval_s=1.0, vision_speech_interval_s=0.25)
    for k in range(40):  # 4 s of a 10 fps camera, idle
        vision.push(solid(k), None)
        await clock.advance(0.1)
    idle_frames = len(of_kind(events, "VisionFrame"))
    speaking["now"] = True
    for k in range(40):  # 4 s while the user speaks
        vision.push(solid(k), None)
        await clock.advance(0.1)
    speech_frames = len(of_kind(events, "VisionFrame")) - idle_frames
    await vision.close()
    assert idle_frames == 4 and speech_frames in (13, 14, 15, 16)
    assert vision.received == 80 and vision.sampled_out == 80 - idle_frames - speech_frames
    frame = of_kind(events, "VisionFrame")[0]
    assert (frame.width, frame.height, frame.frame_id) == (64, 48, 1)


async def test_a_busy_describer_drops_frames_and_the_latest_wins():
    gate = threading.Event()
    describer = CountingDescriber(gate)
    vision, events, clock = make_input(describer, vision_idle_interval_s=0.0)
    for level in (10, 60, 110, 160, 210):
        vision.push(solid(level), None)
        await clock.advance(0.1)
    assert describer.calls <= 1 and vision.dropped == 3  # frames 2-4 were replaced while frame 1 was analysed
    gate.set()
    await until(lambda: len(of_kind(events, "VisionDescribed")) == 2)
    await vision.close()
    described = of_kind(events, "VisionDescribed")
    assert [d.frame_id for d in described] == [1, 5]
    assert described[1].text == "a frame of mean level 210" and described[1].analyse_ms >= 0


async def test_an_unchanged_view_is_not_described_again():
    describer = CountingDescriber()
    vision, events, clock = make_input(describer, vision_idle_interval_s=0.0)
    for level in (100, 101, 100, 200):
        vision.push(solid(level), None)
        await until(lambda: not vision._busy)
        await clock.advance(0.1)
    await vision.close()
    described = of_kind(events, "VisionDescribed")
    assert describer.calls == 2 and [d.changed for d in described] == [True, False, False, True]
    assert described[1].text == described[0].text


async def test_bad_input_and_a_failing_describer_are_logged_not_raised(caplog):
    describer = CountingDescriber(fail_on=1)
    vision, events, clock = make_input(describer, vision_idle_interval_s=0.0)
    with caplog.at_level(logging.WARNING, logger="duplex.vision"):
        vision.push(np.zeros((10, 10, 2), np.uint8), None)
        vision.push("not an image", None)
        vision.push(np.broadcast_to(np.uint8(0), (30000, 30000, 3)), None)
        vision.push(solid(50), None)  # the describer raises on this one
        await until(lambda: not vision._busy)
        await clock.advance(0.1)
        vision.push(solid(150), None)
        await until(lambda: len(of_kind(events, "VisionDescribed")) == 1)
    await vision.close()
    assert vision.rejected == 3
    messages = [e.message for e in of_kind(events, "ErrorEvent")]
    assert any("shape" in m for m in messages) and any("MP limit" in m for m in messages)
    assert any("describer exploded" in m for m in messages)
    assert "camera frame dropped" in caplog.text and "describer exploded" in caplog.text
    assert of_kind(events, "VisionDescribed")[0].text == "a frame of mean level 150"


async def test_a_camera_that_stops_sending_is_reported_once(caplog):
    vision, events, clock = make_input(CountingDescriber(), vision_stale_s=2.0)
    with caplog.at_level(logging.WARNING, logger="duplex.vision"):
        vision.push(solid(10), None)
        await clock.advance(1.0)
        assert not of_kind(events, "VisionStale")
        await clock.advance(5.0)
    stale = of_kind(events, "VisionStale")
    assert len(stale) == 1 and stale[0].last_frame_time == 0.0 and stale[0].silent_s >= 2.0
    assert "camera sent no frame" in caplog.text
    await vision.close()


async def test_context_takes_the_frames_around_the_query():
    vision, events, clock = make_input(CountingDescriber(), vision_idle_interval_s=0.0, vision_context_s=1.0,
                                       vision_context_max_age_s=10.0)
    for level in (20, 120):
        vision.push(solid(level), None)
        await until(lambda: not vision._busy)
        await clock.advance(1.0)
    # frames at 0 s (level 20) and 1 s (level 120)
    assert vision.context(1.5, 2.0) == "a frame of mean level 120"  # the first frame is too early
    assert vision.context(1.0, 2.0) == "a frame of mean level 120 (a moment before: a frame of mean level 20)"
    assert vision.context(3.0, 4.0) == "a frame of mean level 120"  # the last view, 3 s old, still counts
    assert vision.context(20.0, 21.0) == ""  # too old to be taken for what the camera shows now
    await vision.close()


async def test_a_view_that_changed_just_before_a_query_was_just_shown():
    vision, events, clock = make_input(CountingDescriber(), vision_idle_interval_s=0.0, vision_shown_s=2.0,
                                       vision_context_max_age_s=60.0)
    for level in (20, 20, 120):  # frames at 0, 1 and 2 s: the same grey twice, then something else
        vision.push(solid(level), None)
        await until(lambda: not vision._busy)
        await clock.advance(1.0)
    assert vision.newly_shown(3.0, 4.0)  # the change at 2 s came 1 s before the query began
    assert vision.newly_shown(1.5, 2.5)  # ... or while it was spoken
    assert not vision.newly_shown(5.0, 6.0)  # 3 s before: the view has simply been there
    assert not vision.newly_shown(0.5, 1.5)  # the first view and an unchanged one are not a change
    await vision.close()


# --- through a session ------------------------------------------------------------------------------

class RecordingDecider(KeywordDecider):
    def __init__(self) -> None:
        self.visual_contexts: list[str] = []

    def decide(self, evidence):
        self.visual_contexts.append(evidence.visual_context)
        return super().decide(evidence)


async def test_a_thing_held_up_before_a_question_about_it_reaches_the_prompt():
    """"Is it ripe?" right after a new view: about the view; "What time is it?" after one, and "Is it ripe?"
    long after the view last changed, are not."""
    llm, log = ScriptedLLM(extra_words=3), EventLog()
    session = DuplexSession(WorkerModels(PitchRecognizer(), llm, BeepSynthesizer()), KeywordDecider(), EnergyVad,
                            DuplexOptions(output_sample_rate=16000, vision_idle_interval_s=0.5,
                                          vision_follow_up_s=4.0), event_log=log, vision=CountingDescriber())
    timeline = Timeline(1.0).add_image(0.2, solid(40)).add_image(2.0, solid(160))  # something held up at 2 s
    timeline.add_text(3.0, "Is it ripe?").add_text(6.0, "What time is it?").add_image(7.0, solid(90))
    timeline.add_text(8.0, "What time is it?").add_text(20.0, "Is it ripe?")
    async with session:
        await run_timeline(session, timeline, tail_s=3.0)
    started = log.of_kind("TurnStarted")
    assert [(t["question"], t["view_in_prompt"]) for t in started] == [
        ("Is it ripe?", True), ("What time is it?", False), ("What time is it?", False), ("Is it ripe?", False)]
    assert [q["view_just_shown"] for q in log.of_kind("QueryHeard")] == [True, False, True, False]


async def test_the_view_reaches_the_decision_and_the_history_and_the_prompt_only_when_asked_about():
    llm, decider, log = ScriptedLLM(extra_words=3), RecordingDecider(), EventLog()
    session = DuplexSession(WorkerModels(PitchRecognizer(), llm, BeepSynthesizer()), decider, EnergyVad,
                            DuplexOptions(output_sample_rate=16000), event_log=log, vision=CountingDescriber())
    # "What is the weather like today?" spoken, then typed questions about the view and a follow-up
    timeline = (Timeline(1.0).add_audio(0.5, tone_speech(QUESTION, 1.0), "q")
                .add_text(5.0, "What does the label say?").add_text(9.0, "And what colour is it?")
                .add_text(13.0, "How many days are in a week?"))
    for k in range(15):  # a camera at 10 fps from 0.2 s to 1.7 s, showing a grey card
        timeline.add_image(0.2 + k / 10, solid(77))
    async with session:
        session.push_image(np.zeros((10, 10, 2), np.uint8))  # a broken frame on the way: logged, not fatal
        await run_timeline(session, timeline, tail_s=3.0)
    frames = log.of_kind("VisionFrame")
    assert 2 <= len(frames) <= 6  # sampled: 1.5 s of 10 fps, every 0.5 s while speaking, 2 s when idle
    assert decider.visual_contexts == ["a frame of mean level 77"]
    started = log.of_kind("TurnStarted")
    assert [t["view_in_prompt"] for t in started] == [False, True, True, False], started
    seen = "The user's camera shows: a frame of mean level 77"
    prompts = ["\n".join(m.content for m in request) for request in llm.requests]
    assert len(prompts) >= 4
    # the weather question's answer and the last one never see the view; the label and its follow-up do
    assert seen not in prompts[0] and "(The camera shows:" not in prompts[0]
    assert seen in llm.requests[1][0].content and seen in llm.requests[2][0].content
    assert seen not in llm.requests[-1][0].content
    questions = [t for t in session.history if t.role == "user"]
    assert all(q.visual_context == "a frame of mean level 77" for q in questions)  # the history notes it
    assert [q.about_view for q in questions] == [False, True, True, False]
    assert "(The camera shows:" in questions[1].as_message().content
    assert "(The camera shows:" not in questions[0].as_message().content
    assert [t["status"] for t in log.of_kind("TurnEnded")] == ["completed"] * 4
    assert any("camera frame dropped" in e["message"] for e in log.of_kind("ErrorEvent"))


async def test_without_a_describer_frames_are_still_counted_and_nothing_is_described():
    log = EventLog()
    session = DuplexSession(WorkerModels(PitchRecognizer(), ScriptedLLM(), BeepSynthesizer()), KeywordDecider(),
                            EnergyVad, DuplexOptions(output_sample_rate=16000, vision_idle_interval_s=0.0),
                            event_log=log)
    async with session:
        for level in (10, 20, 30):
            session.push_image(solid(level))
            await asyncio.sleep(0.05)
        await until(lambda: len(session.vision.frames) >= 1)
    assert len(log.of_kind("VisionFrame")) == 3 and not log.of_kind("VisionDescribed")


def test_vision_backend_is_chosen_in_the_config():
    from assistant.backends import load_describer
    from assistant.config import ConfigError, VisionConfig, load_config

    config = load_config(environ={"ASSISTANT_VISION_BACKEND": "none"})
    assert config.vision.backend == "none" and load_describer(config.vision) is None
    with pytest.raises(ConfigError, match="choose experts"):
        load_describer(VisionConfig(backend="magic"))
    with pytest.raises(ConfigError, match="needs a model"):
        load_describer(VisionConfig(backend="transformers"))


# --- the state decision sees the view ---------------------------------------------------------------

def test_a_question_about_the_view_is_a_query_only_when_something_is_on_camera():
    from audio.asr import Transcript, TranscriptSegment
    from duplex.decision import SegmentEvidence, StateToken
    from duplex.state import RuleStateDecider

    text = "What does the label say?"
    transcript = Transcript(text, "en", (TranscriptSegment(0.0, 1.2, text, -0.2, 0.05, 1.0),), 1.2)

    def evidence(visual_context: str, speaking: bool = False) -> SegmentEvidence:
        return SegmentEvidence(np.zeros(19200, np.float32), transcript, np.full(37, 0.9, np.float32), speaking,
                               visual_context=visual_context)

    from duplex.state.features import segment_features
    from duplex.state.rules import asks_about_the_view

    seen = evidence('Text in view: "BANANA BREAD".')
    assert asks_about_the_view(seen, segment_features(seen))
    assert not asks_about_the_view(evidence(""), segment_features(evidence("")))
    decision = RuleStateDecider().decide(seen)
    assert decision.token is StateToken.QUERY and "camera" in decision.reason


# --- a describer in a process of its own ------------------------------------------------------------

class ShapeDescriber:
    name = "shape"

    def describe(self, frame: np.ndarray) -> str:
        if frame.shape[0] == 13:
            raise ValueError("thirteen rows")
        return f"{frame.shape[1]}x{frame.shape[0]} mean {frame.mean():.0f}"


def broken_factory():
    raise ImportError("no OCR models here")


def test_a_describer_runs_in_a_child_process_and_its_failures_come_back():
    from assistant.vision.process import DescriberProcess

    describer = DescriberProcess(ShapeDescriber)
    try:
        assert describer.name == "process:shape"
        assert describer.describe(solid(42, 30, 40)) == "40x30 mean 42"  # the pixels crossed the pipe
        with pytest.raises(RuntimeError, match="thirteen rows"):
            describer.describe(solid(1, 13, 20))
        describer.pause()  # as while the listener transcribes: the child is stopped, the frame waits
        result: dict[str, str] = {}
        waiting = threading.Thread(target=lambda: result.setdefault("text", describer.describe(solid(5, 10, 10))))
        waiting.start()
        waiting.join(0.8)
        assert waiting.is_alive() and not result
        describer.resume()
        waiting.join(10)
        assert result == {"text": "10x10 mean 5"}
        describer._process.kill()
        describer._process.wait(5)
        assert describer.describe(solid(7, 10, 10)) == "10x10 mean 7" and describer.restarts == 1
    finally:
        describer.close()
    with pytest.raises(RuntimeError, match="no OCR models here"):
        DescriberProcess(broken_factory)


async def test_a_query_waits_for_its_frame_only_when_no_view_of_it_is_described_yet():
    gate = threading.Event()
    vision, events, clock = make_input(CountingDescriber(gate), vision_idle_interval_s=0.0, vision_context_s=1.0)
    vision.push(solid(30), None)  # captured at 0 s, held in the describer
    waited = asyncio.get_running_loop().time()
    await vision.settle(0.5, 0.8, timeout=0.2)  # its query has no described view yet: waits for it (times out)
    assert asyncio.get_running_loop().time() - waited >= 0.15
    gate.set()
    await until(lambda: not vision._busy)
    await clock.advance(0.5)
    gate.clear()
    vision.push(solid(200), None)  # captured at 0.5 s, held
    waited = asyncio.get_running_loop().time()
    await vision.settle(0.5, 0.8, timeout=2.0)  # the 0 s view is described already: no wait
    await vision.settle(5.0, 6.0, timeout=2.0)  # the frame in analysis is not of this query: no wait
    assert asyncio.get_running_loop().time() - waited < 0.1
    gate.set()
    await vision.close()


async def test_frames_pushed_from_a_capture_thread_reach_the_session():
    log = EventLog()
    session = DuplexSession(WorkerModels(PitchRecognizer(), ScriptedLLM(), BeepSynthesizer()), KeywordDecider(),
                            EnergyVad, DuplexOptions(output_sample_rate=16000, vision_idle_interval_s=0.0),
                            event_log=log, vision=CountingDescriber())

    def camera() -> None:  # as an OpenCV capture loop would
        for level in (40, 140, 240):
            session.push_image(solid(level))
            threading.Event().wait(0.05)

    async with session:
        thread = threading.Thread(target=camera)
        thread.start()
        await asyncio.to_thread(thread.join)
        await until(lambda: len(log.of_kind("VisionDescribed")) >= 2)
    assert len(log.of_kind("VisionFrame")) == 3 and not log.of_kind("ErrorEvent")


async def test_encoded_images_are_decoded_off_the_loop_and_corrupt_ones_are_logged(caplog):
    import io

    from PIL import Image

    def encoded(level: int, kind: str) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(solid(level, 60, 80)).save(buffer, format=kind)
        return buffer.getvalue()

    jpeg = encoded(90, "JPEG")
    noise = np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="JPEG")
    truncated = buffer.getvalue()[: len(buffer.getvalue()) // 2]  # a complete header, half the pixels
    describer = CountingDescriber()
    vision, events, clock = make_input(describer, vision_idle_interval_s=0.0)
    with caplog.at_level(logging.WARNING, logger="duplex.vision"):
        for data in (encoded(200, "PNG"), b"\x00garbage" * 10, truncated, jpeg):
            vision.push(data, None)
            await until(lambda: not vision._busy)
            await clock.advance(0.1)
    await vision.close()
    frames = of_kind(events, "VisionFrame")
    assert [(f.width, f.height) for f in frames] == [(80, 60), (300, 200), (80, 60)]  # garbage: refused by its header
    assert describer.shapes == [(60, 80, 3), (60, 80, 3)]
    texts = [d.text for d in of_kind(events, "VisionDescribed")]
    assert texts[0] == "a frame of mean level 200" and abs(int(texts[1].split()[-1]) - 90) <= 2
    messages = " ".join(e.message for e in of_kind(events, "ErrorEvent"))
    assert "not a readable image" in messages and "corrupt image" in messages
    assert "corrupt image" in caplog.text


async def test_analysis_waits_while_the_listener_transcribes_then_takes_the_latest_frame():
    listening = {"now": True}
    describer = CountingDescriber()
    vision, events, clock = make_input(describer, audio_busy=lambda: listening["now"], vision_idle_interval_s=0.0)
    vision.push(solid(10), None)
    for level in (20, 30):
        await clock.advance(0.1)
        vision.push(solid(level), None)
    await clock.advance(0.5)
    assert describer.calls == 0  # the ASR has the CPU
    listening["now"] = False
    await clock.advance(0.1)
    await until(lambda: len(of_kind(events, "VisionDescribed")) == 1)
    assert of_kind(events, "VisionDescribed")[0].text == "a frame of mean level 30" and describer.calls == 1
    await vision.close()


async def test_timestamps_on_another_clock_fall_back_to_arrival_time(caplog):
    vision, events, clock = make_input(CountingDescriber(), vision_idle_interval_s=0.0)
    await clock.advance(100.0)
    with caplog.at_level(logging.WARNING, logger="duplex.vision"):
        vision.push(solid(10), 99.5)  # on the session clock: kept
        await until(lambda: not vision._busy)
        await clock.advance(1.0)
        vision.push(solid(200), 3.0)  # a media time from the start of the stream
        await until(lambda: not vision._busy)
    assert [f.time for f in vision.frames] == [99.5, 101.0]
    assert "not on the session clock" in caplog.text
    await vision.close()
