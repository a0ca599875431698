"""The replay runner's own behaviour with fast fakes: timeline placement, the virtual clock, and the metric
arithmetic on hand-made event logs whose answers are known."""

from __future__ import annotations

import time

import numpy as np
import pytest

from assistant.replay.metrics import PlacedItem, measure, percentile, stop_time, summarise
from assistant.replay.runner import AudioSources, build_timeline, check_expectations
from assistant.replay.scenario import ScenarioRole, load_scenario
from audio.frames import AudioFrame
from audio.wavfile import write_wav
from duplex.bus import EventLog
from duplex.clock import ManualClock
from duplex.decision import StateToken
from duplex.events import (
    Duck,
    Interrupt,
    PlaybackStarted,
    Resume,
    SpeechEnded,
    SpeechStarted,
    StateDecided,
    TurnEnded,
    TurnStarted,
    TurnStatus,
    UserTranscript,
)
from duplex.models import WorkerModels
from duplex.options import DuplexOptions
from duplex.pacing import VirtualPacer, WorkMeter, meter_session
from duplex.session import DuplexSession
from duplex.timeline import Timeline, run_timeline
from tests.fakes import BeepSynthesizer, EnergyVad, KeywordDecider, PitchRecognizer, ScriptedLLM, tone_speech

RATE = 16000


# --- timeline placement ------------------------------------------------------------------------------

class ToneSynthesizer:
    """One second of tone per text, 0.2 s of silence on either side (so voiced spans are known)."""

    def synthesize(self, text):
        tone = tone_speech(300, 1.0).samples[:, 0]
        pad = np.zeros(int(0.2 * RATE), np.float32)
        yield AudioFrame(np.concatenate([pad, tone, pad]), RATE)


def test_items_are_placed_at_their_times_with_voiced_spans_and_levels(tmp_path):
    noise = (0.5 * np.random.default_rng(0).standard_normal(3 * RATE)).astype(np.float32)
    write_wav(tmp_path / "noise.wav", AudioFrame(noise.clip(-1, 1), RATE))
    (tmp_path / "s.yaml").write_text(
        "category: noise_during_answer\ntimeline:\n"
        "  - at: 1.0\n    say: Tell me a story.\n"
        "  - after: 2.0\n    noise: noise.wav\n    start: 0.5\n    duration: 1.0\n    level_dbfs: -30\n"
        "  - after: 0.5\n    type: Stop.\n"
        "expect:\n  not_interrupted: true\n")
    built = build_timeline(load_scenario(tmp_path / "s.yaml"), AudioSources(ToneSynthesizer()))
    say, noise_item, typed = built.placed()
    assert (say.role, noise_item.role, typed.role) == (ScenarioRole.QUERY, ScenarioRole.NOISE, ScenarioRole.TYPED)
    assert say.onset_s == pytest.approx(1.2, abs=0.011) and say.end_s == pytest.approx(2.2, abs=0.011)
    # 'after' counts from the end of the previous clip (1.0 + 1.4 s of audio + 2.0)
    assert noise_item.onset_s == pytest.approx(4.4) and noise_item.end_s == pytest.approx(5.4)
    assert typed.onset_s == pytest.approx(5.9) and built.timeline.texts == [(pytest.approx(5.9), "Stop.")]
    mic = built.timeline.mic_signal()
    level = 20 * np.log10(np.sqrt(np.mean(mic[int(4.4 * RATE):int(5.4 * RATE)] ** 2)))
    assert level == pytest.approx(-30, abs=0.5)


# --- the virtual clock ---------------------------------------------------------------------------------

def fake_session(clock, asr_delay_s=0.02):
    models = WorkerModels(PitchRecognizer(delay_s=asr_delay_s), ScriptedLLM(extra_words=8), BeepSynthesizer())
    log = EventLog()
    session = DuplexSession(models, KeywordDecider(), EnergyVad, DuplexOptions(output_sample_rate=16000),
                            clock=clock, event_log=log)
    return session, log


async def play_virtual(timeline, asr_delay_s=0.02, tail_s=3.0):
    clock = ManualClock()
    session, log = fake_session(clock, asr_delay_s)
    meter = WorkMeter()
    meter_session(session, meter)
    pacer = VirtualPacer(clock, meter)
    started = time.perf_counter()
    async with session:
        result = await run_timeline(session, timeline, tail_s=tail_s, pacer=pacer)
    return log, result, pacer, meter, time.perf_counter() - started


async def test_virtual_clock_skips_idle_time_and_keeps_the_conversation():
    timeline = Timeline(40.0).add_audio(0.3, tone_speech(300, 1.2), "user")  # 40 s, mostly silence
    log, result, pacer, _meter, wall = await play_virtual(timeline)
    assert wall < 15.0, f"40 s of timeline took {wall:.1f} s"
    assert pacer.skipped_s > 30.0
    assert [d.token for d in log.of_type(StateDecided)] == [StateToken.QUERY]
    assert log.of_type(TurnStarted) and log.of_type(TurnEnded)[0].status is TurnStatus.COMPLETED
    assert result.speaker_active(3.0, 6.0) > 0  # the beeps were pulled out of the playback queue
    assert result.start_time == 0.0 and len(result.speaker) == int(43.0 * RATE)


async def test_virtual_clock_charges_model_work_at_its_wall_time():
    """A slow ASR (0.6 s per call) must show in the virtual latencies, not vanish in a time jump."""
    timeline = Timeline(6.0).add_audio(0.3, tone_speech(300, 1.2), "user")
    log, _result, pacer, meter, _wall = await play_virtual(timeline, asr_delay_s=0.6)
    ended = log.of_type(SpeechEnded)[0]
    transcript = log.of_type(UserTranscript)[0]
    # the transcription starts 0.128 s into the pause and takes 0.6 s of wall time, charged to the clock
    assert transcript.time - ended.end >= 0.6
    assert transcript.time - ended.end < 1.3
    assert pacer.charged_s >= 0.6 and meter.busy_wall_s >= 0.6
    assert meter.in_flight == 0 and meter.vad_samples >= 6 * RATE


async def test_virtual_and_real_time_give_the_same_story():
    timeline = Timeline(4.0).add_audio(0.3, tone_speech(300, 1.2), "user")
    virtual_log, *_ = await play_virtual(timeline)
    session, real_log = fake_session(None)
    async with session:
        await run_timeline(session, timeline, tail_s=3.0)
    story = [SpeechStarted, SpeechEnded, StateDecided, TurnStarted, PlaybackStarted, TurnEnded]

    def outline(log):
        return [type(event) for event in log.of_type(*story)]

    assert outline(virtual_log) == outline(real_log) == story
    v, r = (log.of_type(PlaybackStarted)[0].time - log.of_type(SpeechEnded)[0].end
            for log in (virtual_log, real_log))
    assert abs(v - r) < 0.25, f"virtual {v:.3f} s vs real {r:.3f} s from end of speech to first audio"


def test_meter_counts_calls_and_streams_across_threads():
    meter = WorkMeter()
    stream = meter.stream(iter([1, 2]))
    assert not meter.busy
    assert next(stream) == 1 and meter.busy
    assert list(stream) == [2] and not meter.busy
    assert meter.call(lambda x: x * 2, 4) == 8 and meter.calls_finished == 2 and meter.in_flight == 0


# --- metric arithmetic on hand-made logs ---------------------------------------------------------------

def speaker_signal(spans, seconds):
    signal = np.zeros(int(seconds * RATE), np.float32)
    for start, end in spans:
        signal[int(start * RATE):int(end * RATE)] = 0.1
    return signal


def turn(t, turn_id):
    return TurnStarted(time=t, worker="a", turn_id=turn_id, question="", from_time=t)


def playback(t, turn_id):
    return PlaybackStarted(time=t, turn_id=turn_id)


def interrupt(t, turn_id, reason="speech"):
    return Interrupt(time=t, turn_id=turn_id, reason=reason)


QUERY, INTERRUPTION, STOP = ScenarioRole.QUERY, ScenarioRole.INTERRUPTION, ScenarioRole.STOP


def test_turn_taking_and_interruption_figures():
    start = 100.0  # session clock time of the timeline's zero
    items = [PlacedItem(QUERY, 0.5, 2.0), PlacedItem(INTERRUPTION, 6.0, 7.0)]
    log = [turn(102.6, 1), playback(103.2, 1), Duck(time=106.15, turn_id=1, reason="speech"), interrupt(107.4, 1),
           turn(107.4, 2), playback(108.1, 2)]
    speaker = speaker_signal([(3.2, 6.3), (8.1, 10.0)], 12.0)  # voice stops 0.3 s into the interruption
    m = measure(items, log, start, speaker, 12.0)
    assert m.turn_takeovers == [True] and m.turn_latencies_s == [pytest.approx(1.2)]
    assert m.interrupt_takeovers == [True] and m.interrupt_latencies_s == [pytest.approx(1.1)]
    assert m.interrupt_stops_s == [pytest.approx(0.3, abs=0.021)] and m.interrupt_not_stopped == 0


def test_an_ignored_barge_in_is_no_takeover_and_never_stops():
    items = [PlacedItem(QUERY, 0.5, 2.0), PlacedItem(INTERRUPTION, 6.0, 7.0)]
    log = [turn(2.6, 1), playback(3.2, 1)]
    m = measure(items, log, 0.0, speaker_signal([(3.2, 14.0)], 15.0), 15.0)
    assert m.interrupt_takeovers == [False] and m.interrupt_latencies_s == [] and m.interrupt_not_stopped == 1


def test_a_bare_stop_is_scored_by_its_stop_time_and_must_start_no_answer():
    items = [PlacedItem(QUERY, 0.5, 2.0), PlacedItem(STOP, 6.0, 6.4), PlacedItem(QUERY, 9.0, 10.0)]
    log = [turn(2.6, 1), playback(3.2, 1), interrupt(6.5, 1), turn(10.5, 2), playback(11.0, 2)]
    m = measure(items, log, 0.0, speaker_signal([(3.2, 6.25), (11.0, 12.0)], 13.0), 13.0)
    assert m.interrupt_stops_s == [pytest.approx(0.25, abs=0.021)] and m.stops_answered == 0
    assert m.interrupt_takeovers == [] and m.turn_takeovers == [True, True]
    answered = [turn(2.6, 1), playback(3.2, 1), interrupt(6.5, 1), turn(6.6, 2)]
    assert measure(items, answered, 0.0, speaker_signal([(3.2, 6.25)], 13.0), 13.0).stops_answered == 1


def test_pause_backchannel_noise_and_echo_takeovers():
    items = [PlacedItem(ScenarioRole.BEFORE_PAUSE, 0.5, 1.5), PlacedItem(ScenarioRole.AFTER_PAUSE, 2.3, 3.0),
             PlacedItem(ScenarioRole.BACKCHANNEL, 8.0, 8.4), PlacedItem(ScenarioRole.NOISE, 12.0, 14.0),
             PlacedItem(ScenarioRole.SIDE_TALK, 20.0, 21.0)]
    log = [turn(2.0, 1),  # took the floor in the pause: a takeover
           playback(2.5, 1),
           interrupt(13.5, 1),  # the noise cut the answer
           interrupt(30.0, 2)]  # nobody spoke near 30 s: its own voice
    m = measure(items, log, 0.0, speaker_signal([(2.5, 13.5)], 35.0), 35.0, echo=True)
    assert m.pause_takeovers == [True] and m.backchannel_takeovers == [False]
    assert m.noise_interrupts == [True] and m.side_talk_takeovers == [False]
    assert (m.echo_interrupts, m.echo_answers) == (1, 1)


def test_a_takeover_after_the_user_resumed_is_not_a_pause_takeover():
    items = [PlacedItem(ScenarioRole.BEFORE_PAUSE, 0.5, 1.5), PlacedItem(ScenarioRole.AFTER_PAUSE, 2.3, 3.0)]
    log = [turn(3.6, 1), playback(4.0, 1)]
    m = measure(items, log, 0.0, speaker_signal([(4.0, 6.0)], 8.0), 8.0)
    assert m.pause_takeovers == [False]


def test_summary_pools_samples_across_scenarios():
    a = measure([PlacedItem(QUERY, 0.0, 1.0)], [turn(1.5, 1), playback(2.0, 1)], 0.0, speaker_signal([], 5.0), 5.0)
    b = measure([PlacedItem(QUERY, 0.0, 1.0), PlacedItem(ScenarioRole.NOISE, 6.0, 7.0)],
                [turn(3.5, 1), playback(4.0, 1)], 0.0, speaker_signal([], 12.0), 12.0)
    summary = summarise([a, b])
    assert summary["turn_latency_p50_s"] == 2.0 and summary["turn_latency_p90_s"] == pytest.approx(2.8)
    assert summary["turn_takeover_rate"] == 1.0 and summary["noise_interrupt_rate"] == 0.0
    assert summary["interrupt_takeover_rate"] is None  # no sample: no figure, never a made-up zero
    assert percentile([1, 2, 3, 4], 50) == 2.5


def test_stop_time_needs_a_lasting_silence():
    active = np.array([True] * 10 + [False] * 5 + [True] * 5 + [False] * 20)
    assert stop_time(active, 0.0, 1.0) == pytest.approx(0.4)  # the 5-block gap (0.1 s) is not a stop


def test_expectations_read_the_log(tmp_path):
    (tmp_path / "s.yaml").write_text(
        "category: typed\ntimeline:\n  - at: 0.5\n    say: Tell me a story.\n  - at: 5.0\n    type: Stop.\n"
        "expect:\n  interrupted: {within_ms: 300}\n  answers: {count: 2}\n  answer_mentions: [rome]\n"
        "  history_lacks: [dragon]\n  turns: 2\n")
    scenario = load_scenario(tmp_path / "s.yaml")
    placed = [PlacedItem(QUERY, 0.5, 2.0), PlacedItem(ScenarioRole.TYPED, 5.0, 5.0)]
    log = [turn(2.5, 1), playback(3.0, 1), interrupt(5.02, 1, "typed message"), turn(5.02, 2), playback(5.9, 2),
           TurnEnded(time=8.0, worker="a", turn_id=2, status=TurnStatus.COMPLETED, answer="Rome is the capital.",
                     spoken="Rome is the capital.")]
    results = {r.name: r for r in check_expectations(scenario, placed, log, 0.0,
                                                     speaker_signal([(3.0, 5.1), (5.9, 8.0)], 10.0),
                                                     "tell me a story. once upon a time stop. rome is")}
    assert results["interrupted"].passed, results["interrupted"].detail  # stopped 0.1 s after the message
    assert results["answers"].passed and results["answer_mentions"].passed and results["turns"].passed
    assert results["history_lacks"].passed
    slow = check_expectations(scenario, placed, log, 0.0, speaker_signal([(3.0, 5.6)], 10.0), "dragon")
    failed = {r.name for r in slow if not r.passed}
    assert failed == {"interrupted", "history_lacks"}


def test_answers_lack_fails_on_any_answer_that_reads_out_the_words(tmp_path):
    (tmp_path / "s.yaml").write_text(
        "category: camera\ntimeline:\n  - at: 0.5\n    say: What is two plus three?\n"
        "expect:\n  answers: true\n  answers_lack: [banana, label]\n")
    scenario = load_scenario(tmp_path / "s.yaml")
    placed = [PlacedItem(QUERY, 0.5, 2.0)]

    def ended(answer: str) -> list:
        return [turn(2.5, 1), playback(3.0, 1),
                TurnEnded(time=5.0, worker="a", turn_id=1, status=TurnStatus.COMPLETED, answer=answer, spoken=answer)]

    def lack(answer: str):
        results = check_expectations(scenario, placed, ended(answer), 0.0, speaker_signal([(3.0, 5.0)], 6.0), "")
        return next(r for r in results if r.name == "answers_lack")

    assert lack("Two plus three is five.").passed
    parroted = lack('The camera shows: Text in view: "BANANA BREAD".')
    assert not parroted.passed and "banana" in parroted.detail


def test_resumes_needs_every_pause_resumed_and_an_answer_completed(tmp_path):
    (tmp_path / "s.yaml").write_text(
        "category: noise_during_answer\ntimeline:\n  - at: 0.5\n    say: Tell me a story.\n"
        "expect:\n  resumes: true\n")
    scenario = load_scenario(tmp_path / "s.yaml")
    placed = [PlacedItem(QUERY, 0.5, 2.0)]

    def outcome(status, resumed=True):
        log = [turn(2.5, 1), playback(3.0, 1), Duck(time=4.0, turn_id=1, reason="sound")]
        log += [Resume(time=4.6, turn_id=1, reason="no speech followed the sound")] if resumed else []
        log.append(TurnEnded(time=8.0, worker="a", turn_id=1, status=status, answer="Once.", spoken="Once."))
        (result,) = check_expectations(scenario, placed, log, 0.0, speaker_signal([(3.0, 8.0)], 10.0), "")
        return result

    assert outcome(TurnStatus.COMPLETED).passed, outcome(TurnStatus.COMPLETED).detail
    assert outcome(TurnStatus.COMPLETED).detail == "1 pause(s), 1 resume(s), an answer completed"
    assert not outcome(TurnStatus.INTERRUPTED).passed
    assert not outcome(TurnStatus.COMPLETED, resumed=False).passed


# --- the runner end to end, on fakes ---------------------------------------------------------------------

class FakeAssistantModels:
    """What the runner needs of ``AssistantModels``, over the fast fakes."""

    def __init__(self, config=None, progress=False):
        from assistant.config import AssistantConfig

        self.config = config or AssistantConfig()
        self.stack = type("Stack", (), {"synthesizer": ToneSynthesizer(), "recognizer": PitchRecognizer()})()
        self.decider = KeywordDecider()

    def new_session(self, clock=None, event_log_path=None, output_sample_rate=None):
        models = WorkerModels(PitchRecognizer(), ScriptedLLM(extra_words=40), BeepSynthesizer())
        return DuplexSession(models, self.decider, EnergyVad, DuplexOptions(output_sample_rate=16000),
                             clock=clock, event_log=EventLog(event_log_path))


async def test_runner_places_a_barge_in_by_the_answer_and_writes_its_files(tmp_path):
    from assistant.replay.runner import ReplayOptions, ReplayRunner

    (tmp_path / "barge.yaml").write_text(
        "category: barge_in\ntimeline:\n  - at: 0.3\n    say: What is the weather?\n"
        "  - after_answer: 1.5\n    say: What is the weather?\n    role: interruption\n"
        "expect:\n  interrupted: {within_ms: 400}\n  answers: {count: 2}\n  turns: 2\n")
    runner = ReplayRunner(FakeAssistantModels(), ReplayOptions(out_dir=tmp_path / "out", progress=False))
    result = await runner.run(load_scenario(tmp_path / "barge.yaml"))
    assert result.status == "passed", [e for e in result.expectations if not e.passed]
    records = [__import__("json").loads(line) for line in (result.out_dir / "events.jsonl").read_text().splitlines()]
    first_audio = next(r["time"] for r in records if r["kind"] == "PlaybackStarted")
    placed = __import__("json").loads((result.out_dir / "metrics.json").read_text())["placed"]
    cue_start = placed[1]["onset_s"] - 0.2  # the tone starts 0.2 s into its clip
    assert cue_start == pytest.approx(first_audio + 1.5, abs=0.03)  # the virtual clock starts at 0
    assert result.measures.interrupt_takeovers == [True] and len(result.measures.interrupt_stops_s) == 1
    for name in ("audio.wav", "timeline.png", "metrics.json"):
        assert (result.out_dir / name).stat().st_size > 1000


def test_replay_command_exits_non_zero_when_an_expectation_fails(tmp_path, monkeypatch, capsys):
    import assistant.session
    from assistant.cli import main

    monkeypatch.setattr(assistant.session, "AssistantModels", FakeAssistantModels)
    (tmp_path / "ok.yaml").write_text("category: plain_turn\ntimeline:\n  - at: 0.3\n    say: Hi\n"
                                      "expect:\n  answers: true\n")
    (tmp_path / "wrong.yaml").write_text("category: noise_while_idle\ntimeline:\n  - at: 0.3\n    say: Hi\n"
                                         "expect:\n  stays_silent: true\n")
    out = tmp_path / "out"
    assert main(["replay", str(tmp_path / "ok.yaml"), "--out", str(out), "--quiet"]) == 0
    assert main(["replay", str(tmp_path), "--out", str(out), "--quiet", "--json", str(tmp_path / "r.json")]) == 1
    printed = capsys.readouterr().out
    assert "ok    ok [virtual" in printed and "FAIL  wrong [virtual" in printed and "1 turn(s) started" in printed
    summary = __import__("json").loads((tmp_path / "r.json").read_text())
    assert summary["counts"] == {"passed": 1, "failed": 1, "known_failure": 0, "skipped": 0}
    assert summary["turn_takeover_rate"] == 1.0 and {s["name"] for s in summary["scenarios"]} == {"ok", "wrong"}
