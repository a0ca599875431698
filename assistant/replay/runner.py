"""Play scenarios into the real session, the one live transports use, and judge what happened.

Each scenario gets a fresh ``AssistantModels.new_session`` (models loaded once per process) fed by
``duplex.timeline.run_timeline``: in real time (``RealClock``) or on a virtual clock (``VirtualPacer``, see
duplex/pacing.py: idle time skipped, model work charged at its wall-clock cost). Each run writes
``events.jsonl``, ``audio.wav`` (stereo: user left, assistant right), ``timeline.png`` and ``metrics.json``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from assistant.replay.metrics import (
    PlacedItem,
    ScenarioMeasures,
    measure,
    speaker_activity,
    stop_time,
    voiced_span,
)
from assistant.replay.scenario import (
    ASK_ROLES,
    INTERRUPTING_ROLES,
    SPEECH_ROLES,
    Scenario,
    ScenarioError,
    TimelineItem,
)
from audio.frames import AudioFrame
from audio.wavfile import read_audio, write_wav
from duplex.clock import ManualClock
from duplex.events import (
    Duck,
    Event,
    Interrupt,
    PlaybackStarted,
    Resume,
    TurnEnded,
    TurnStarted,
    TurnStatus,
)
from duplex.pacing import VirtualPacer, WorkMeter, meter_session
from duplex.timeline import MIC_RATE, Cue, Timeline, TimelineResult, run_timeline

if TYPE_CHECKING:
    from duplex.session import DuplexSession

DEFAULT_NOISE_DBFS = -30.0


@dataclass(frozen=True)
class ExpectationResult:
    name: str
    passed: bool
    detail: str


@dataclass
class ScenarioResult:
    scenario: Scenario
    status: str  # passed, failed, known_failure, skipped
    clock: str = ""
    expectations: list[ExpectationResult] = field(default_factory=list)
    measures: ScenarioMeasures = field(default_factory=ScenarioMeasures)
    skip_reason: str = ""
    out_dir: Path | None = None
    wall_s: float = 0.0
    timeline_s: float = 0.0
    model_busy_s: float = 0.0  # virtual clock: wall seconds spent with a model call in flight
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def to_json(self) -> dict:
        return {"name": self.scenario.name, "file": str(self.scenario.path), "category": self.scenario.category,
                "status": self.status, "clock": self.clock, "skip_reason": self.skip_reason,
                "known_failure": self.scenario.known_failure, "note": self.note,
                "wall_s": round(self.wall_s, 2), "timeline_s": round(self.timeline_s, 2),
                "model_busy_s": round(self.model_busy_s, 2),
                "expectations": [vars(e) for e in self.expectations], "measures": self.measures.to_json(),
                "out_dir": str(self.out_dir) if self.out_dir else None}


@dataclass
class BuiltTimeline:
    timeline: Timeline
    entries: list[tuple[TimelineItem, np.ndarray | None, float | None, Cue | None]]  # item, audio, fixed start, cue
    watch: AnswerWatch

    def placed(self) -> list[PlacedItem]:
        """Where each item landed (a cue's place is known once the run has placed it; one never placed is left out)."""
        result = []
        for item, clip, at, cue in self.entries:
            start_s = at if cue is None else cue.started_at
            if start_s is None:
                continue
            if clip is None:
                onset = end = start_s
            elif item.source in ("noise", "babble"):
                onset, end = start_s, start_s + len(clip) / MIC_RATE
            else:
                voiced = voiced_span(clip)
                onset, end = start_s + voiced[0], start_s + voiced[1]
            result.append(PlacedItem(item.role, onset, end, item.text, item.line))
        return result

    def unplaced(self) -> list[TimelineItem]:
        return [item for item, _, _, cue in self.entries if cue is not None and cue.started_at is None]


class AnswerWatch:
    """Tells cues when the assistant's answers began to be heard, from the session's event log."""

    def __init__(self) -> None:
        self.session: DuplexSession | None = None
        self._offset: float | None = None  # session clock time of the timeline's zero
        self._scanned = 0
        self.first_audio_s: list[float] = []  # timeline seconds at which each answer's audio began

    def bind(self, session: DuplexSession) -> None:
        self.session, self._offset, self._scanned, self.first_audio_s = session, None, 0, []

    def answer_started_after(self, since_s: float, now_s: float) -> float | None:
        session = self.session
        assert session is not None and session.event_log is not None  # bound to a replay session, which logs
        if self._offset is None:
            self._offset = session.clock.now() - now_s  # cues are first asked at the timeline's start
        events = session.event_log.events
        for event in events[self._scanned:]:
            if isinstance(event, PlaybackStarted):
                self.first_audio_s.append(event.time - self._offset)
        self._scanned = len(events)
        return next((t for t in self.first_audio_s if t > since_s), None)


# --- building the timeline ---------------------------------------------------------------------------

class AudioSources:
    """Synthesised speech and read files, cached across scenarios (the TTS is the slow part)."""

    def __init__(self, synthesizer, load_voice: Callable[[Path], object] | None = None) -> None:
        self.synthesizer = synthesizer
        self.load_voice = load_voice or _piper_voice
        self._speech: dict[tuple[str, str], np.ndarray] = {}
        self._files: dict[Path, np.ndarray] = {}
        self._voices: dict[Path, object] = {}

    def say(self, text: str, voice: Path | None = None) -> np.ndarray:
        key = (text, str(voice or ""))
        if key not in self._speech:
            synthesizer = self.synthesizer
            if voice is not None:
                synthesizer = self._voices.setdefault(voice, self.load_voice(voice))
            frame = AudioFrame.concatenate(list(synthesizer.synthesize(text)))
            self._speech[key] = frame.convert(sample_rate=MIC_RATE, channels=1, dtype=np.float32).samples[:, 0]
        return self._speech[key]

    def file(self, path: Path) -> np.ndarray:
        if path not in self._files:
            frame = read_audio(path).convert(sample_rate=MIC_RATE, channels=1, dtype=np.float32)
            self._files[path] = frame.samples[:, 0]
        return self._files[path]


def _piper_voice(path: Path):
    from audio.tts import PiperSynthesizer

    return PiperSynthesizer(path).steady()


def _steady(synthesizer):
    """The user's voice in a scenario is the same on every run (see PiperSynthesizer.steady)."""
    steady = getattr(synthesizer, "steady", None)
    return steady() if steady is not None else synthesizer


def _rms(samples: np.ndarray) -> float:
    start, end = voiced_span(samples)
    part = samples[int(start * MIC_RATE):int(end * MIC_RATE)]
    return float(np.sqrt(np.mean(part.astype(np.float64) ** 2))) if part.size else 0.0


def _cut(samples: np.ndarray, start_s: float, length_s: float | None, loop: bool) -> np.ndarray:
    start = int(start_s * MIC_RATE)
    if length_s is None:
        return samples[start:]
    length = int(length_s * MIC_RATE)
    if loop and samples.size:
        reps = int(np.ceil((start + length) / len(samples))) + 1
        samples = np.tile(samples, reps)
    return samples[start:start + length]


def _image(item: TimelineItem) -> np.ndarray:
    if item.color is not None:
        width, height = item.size
        return np.full((height, width, 3), item.color, dtype=np.uint8)
    from PIL import Image

    with Image.open(item.paths[0]) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def build_timeline(scenario: Scenario, sources: AudioSources) -> BuiltTimeline:
    """Place every item: synthesise speech, cut and level noise, resolve 'after' times. Items from the first
    'after_answer' one on become cues, placed during the run relative to the assistant's answers."""
    clips: list[np.ndarray | None] = []
    for item in scenario.items:
        if item.source == "say":
            clip = sources.say(item.text, item.voice)
        elif item.source == "audio":
            clip = _cut(sources.file(item.paths[0]), item.start_s,
                        None if item.end_s is None else item.end_s - item.start_s, False)
        elif item.source == "noise":
            clip = _cut(sources.file(item.paths[0]), item.start_s, item.duration_s, item.loop)
        elif item.source == "babble":
            voices = [sources.file(p) for p in item.paths]
            length = min(len(v) for v in voices) if item.duration_s is None else int(item.duration_s * MIC_RATE)
            clip = np.zeros(length, dtype=np.float32)
            for voice in voices:  # each talker at the same level, looped to the length asked for
                piece = _cut(voice, item.start_s, length / MIC_RATE, True)
                clip[:len(piece)] += piece / max(_rms(piece), 1e-6)
        else:
            clip = None
        if clip is not None and item.source in ("say", "audio") and item.gain_db:
            clip = clip * 10 ** (item.gain_db / 20)
        if clip is not None and clip.size == 0:
            raise ScenarioError(scenario.path, item.line, "this entry's audio is empty (check start/end/duration)")
        clips.append(clip)
    speech_levels = [_rms(c) for c, i in zip(clips, scenario.items) if c is not None and i.role in SPEECH_ROLES]
    speech_level = float(np.mean(speech_levels)) if speech_levels else 0.1
    timeline = Timeline(0.0)
    watch = AnswerWatch()
    entries: list[tuple[TimelineItem, np.ndarray | None, float | None, Cue | None]] = []
    previous_end = previous_at = 0.0
    previous_cue: Cue | None = None
    for item, clip in zip(scenario.items, clips):
        if clip is not None and item.source in ("noise", "babble"):
            level = _rms(clip) or 1e-6
            target = (10 ** (item.level_dbfs / 20) if item.level_dbfs is not None
                      else speech_level / 10 ** (item.snr_db / 20) if item.snr_db is not None
                      else 10 ** (DEFAULT_NOISE_DBFS / 20))
            clip = (clip * (target / level)).astype(np.float32)
        if item.after_answer is not None or previous_cue is not None:
            cue = Cue(_cue_ready(item, watch, previous_cue, previous_at), samples=clip,
                      text=item.text if item.source == "type" else "", label=item.role.value)
            timeline.cues.append(cue)
            entries.append((item, clip, None, cue))
            previous_cue = cue
            continue
        if item.at is not None:
            at = item.at
        else:
            assert item.after is not None  # an entry has exactly one of at / after / after_answer
            at = previous_end + item.after
        if at < previous_at:
            raise ScenarioError(scenario.path, item.line,
                                f"times out of order: this entry starts at {at:.2f} s, "
                                f"before the previous one ({previous_at:.2f} s)")
        if clip is not None:
            timeline.add_audio(at, AudioFrame(clip.astype(np.float32), MIC_RATE), item.role.value)
            previous_end = at + len(clip) / MIC_RATE
        else:
            if item.source == "type":
                timeline.add_text(at, item.text)
            else:
                timeline.add_image(at, _image(item))
            previous_end = at
        previous_at = at
        entries.append((item, clip, at, None))
    return BuiltTimeline(timeline, entries, watch)


def _cue_ready(item: TimelineItem, watch: AnswerWatch, previous: Cue | None,
               previous_at: float) -> Callable[[float], bool]:
    def ready(now_s: float) -> bool:
        since = previous_at
        if previous is not None:
            if previous.started_at is None:
                return False
            since = previous.started_at
        if item.after_answer is None:  # 'after': counted from the end of the previous cue
            assert previous is not None and item.after is not None  # only a cue follows a cue by 'after'
            return now_s >= since + previous.duration + item.after
        began = watch.answer_started_after(since, now_s)
        return began is not None and now_s >= began + item.after_answer

    return ready


# --- judging ------------------------------------------------------------------------------------------

def _words_in(words: tuple[str, ...], text: str) -> list[str]:
    return [w for w in words if w in text.lower()]


def check_expectations(scenario: Scenario, placed: list[PlacedItem], events: list[Event], start_time: float,
                       speaker: np.ndarray, history_text: str, images_pushed: int = 0) -> list[ExpectationResult]:
    expect = scenario.expect
    results: list[ExpectationResult] = []
    turns = [e for e in events if isinstance(e, TurnStarted)]
    played = {e.turn_id: e.time - start_time for e in reversed(events) if isinstance(e, PlaybackStarted)}
    interrupts = [e for e in events if isinstance(e, Interrupt)]
    ended = [e for e in events if isinstance(e, TurnEnded)]
    answered = [t for t in turns if t.turn_id in played]

    if expect.answers:
        ok = len(answered) >= expect.answer_count
        detail = f"{len(answered)} answer(s) heard (wanted >= {expect.answer_count})"
        if ok and expect.answer_within_s is not None:
            asks = [p for p in placed if p.role in ASK_ROLES]
            last = asks[-1] if asks else None
            firsts = sorted(played[t.turn_id] for t in answered if last and t.time - start_time >= last.onset_s)
            if last is None or not firsts:
                ok, detail = False, "no answer after the last question"
            else:
                latency = firsts[0] - last.end_s
                ok = latency <= expect.answer_within_s
                detail = f"answer audio {latency:.2f} s after the last question (limit {expect.answer_within_s:g} s)"
        results.append(ExpectationResult("answers", ok, detail))
    if expect.stays_silent:
        results.append(ExpectationResult("stays_silent", not turns and not played,
                                         f"{len(turns)} turn(s) started" if turns else "no turn started"))
    if expect.interrupted:
        ok = bool(interrupts)
        detail = f"{len(interrupts)} interruption(s)"
        if ok and expect.interrupt_within_ms is not None:
            cuts = [p for p in placed if p.role in INTERRUPTING_ROLES]
            if not cuts:
                ok, detail = False, "no interruption entry (role: interruption, stop or typed) on the timeline"
            else:
                stopped = stop_time(speaker_activity(speaker), cuts[0].onset_s, cuts[0].onset_s + 10)
                if stopped is None:
                    ok, detail = False, "the assistant's voice did not stop"
                else:
                    ms = 1000 * (stopped - cuts[0].onset_s)
                    ok = ms <= expect.interrupt_within_ms
                    detail = (f"voice stopped {ms:.0f} ms after the interruption began "
                              f"(limit {expect.interrupt_within_ms:g} ms)")
        results.append(ExpectationResult("interrupted", ok, detail))
    if expect.not_interrupted:
        results.append(ExpectationResult("not_interrupted", not interrupts, "; ".join(
            f"interrupted at {i.time - start_time:.2f} s ({i.reason})" for i in interrupts) or "no interruption"))
    if expect.resumes:
        ducks = [e.time for e in events if isinstance(e, Duck)]
        resumes = [e.time for e in events if isinstance(e, Resume)]
        unresumed = [d for d in ducks if not any(r >= d for r in resumes)]
        completed = any(e.status is TurnStatus.COMPLETED for e in ended)
        ok = not interrupts and not unresumed and completed
        detail = (f"{len(ducks)} pause(s), {len(resumes)} resume(s), "
                  f"{'an answer completed' if completed else 'no answer completed'}"
                  + (f", {len(interrupts)} interruption(s)" if interrupts else ""))
        results.append(ExpectationResult("resumes", ok, detail))
    if expect.history_contains:
        missing = [w for w in expect.history_contains if w not in _words_in(expect.history_contains, history_text)]
        results.append(ExpectationResult("history_contains", not missing,
                                         f"missing {missing} in {history_text[:300]!r}" if missing
                                         else "all words present"))
    if expect.history_lacks:
        found = _words_in(expect.history_lacks, history_text)
        results.append(ExpectationResult("history_lacks", not found, f"found {found}" if found else "none present"))
    if expect.answer_mentions:
        answer = ended[-1].answer if ended else ""
        found = _words_in(expect.answer_mentions, answer)
        results.append(ExpectationResult("answer_mentions", bool(found),
                                         f"last answer: {answer[:120]!r}"
                                         + ("" if found else f" (none of {list(expect.answer_mentions)})")))
    if expect.answers_lack:
        found = sorted({w for e in ended for w in _words_in(expect.answers_lack, e.answer)})
        results.append(ExpectationResult("answers_lack", not found,
                                         f"found {found} in {[e.answer[:80] for e in ended]}" if found
                                         else f"none in {len(ended)} answer(s)"))
    if expect.turns is not None:
        results.append(ExpectationResult("turns", len(turns) == expect.turns,
                                         f"{len(turns)} turn(s) (wanted {expect.turns})"))
    if any(i.source == "image" for i in scenario.items) and images_pushed == 0:
        results.append(ExpectationResult("camera", False, "the session has no push_image: images were not delivered"))
    return results


# --- running --------------------------------------------------------------------------------------------

@dataclass
class ReplayOptions:
    out_dir: Path = Path("out/replay")
    clock: str | None = None  # "virtual" or "real"; None: each scenario's own preference
    data_dir: Path | None = None
    progress: bool = True
    block_progress_after_s: float = 60.0  # show a per-scenario bar for timelines longer than this
    max_drain_s: float = 30.0  # after the tail, wait at most this long for answers still being worked on
    quiet_hold_s: float = 0.5  # the session counts as done once idle this long


def _quiet_probe(session, meter: WorkMeter, hold_s: float = 0.5) -> Callable[[], bool]:
    """True once no model call is in flight, nothing plays and no answer runs, for ``hold_s`` of clock time."""
    idle_since: list[float | None] = [None]

    def quiet() -> bool:
        now = session.clock.now()
        if meter.busy or session.output.speaking or any(worker.answering for worker in session.workers):
            idle_since[0] = None
            return False
        if idle_since[0] is None:
            idle_since[0] = now
        return now - idle_since[0] >= hold_s

    return quiet


class ReplayRunner:
    """Runs scenarios one after another on one set of loaded models."""

    def __init__(self, models, options: ReplayOptions) -> None:
        self.models = models  # assistant.session.AssistantModels
        self.options = options
        self.sources = AudioSources(_steady(models.stack.synthesizer))
        self._warm = False

    def warm_up(self) -> None:
        """One transcription and one state decision before the first scenario, so lazily loaded parts (the
        decider's embedding model) do not land in the first scenario's latencies."""
        from duplex.decision import SegmentEvidence

        speech = self.sources.say("Hello there, how are you?")
        transcript = self.models.stack.recognizer.transcribe(speech)
        evidence = SegmentEvidence(speech, transcript, np.ones(len(speech) // 512, np.float32), False)
        self.models.decider.decide(evidence)
        full_head = getattr(self.models.decider, "query_probability", None)
        if full_head is not None:  # decide() may skip the embedding when the features head is sure
            full_head(evidence)
        self._warm = True

    def skip_reason(self, scenario: Scenario) -> str:
        if scenario.requires_shared_data and self.options.data_dir is None:
            return "needs the shared recordings (../shared/data/audio or --data DIR), which are absent"
        return ""

    async def run(self, scenario: Scenario) -> ScenarioResult:
        reason = self.skip_reason(scenario)
        if reason:
            return ScenarioResult(scenario, "skipped", skip_reason=reason)
        clock_mode = self.options.clock or scenario.clock
        out_dir = self.options.out_dir / scenario.name
        out_dir.mkdir(parents=True, exist_ok=True)
        built = build_timeline(scenario, self.sources)
        if not self._warm:
            self.warm_up()
        started = time.perf_counter()
        session, result, meter = await self._play(scenario, built, clock_mode, out_dir)
        wall_s = time.perf_counter() - started
        events = session.event_log.events if session.event_log is not None else []
        history_text = " ".join(turn.text for turn in session.history).lower()
        duration = len(result.speaker) / MIC_RATE
        placed = built.placed()
        measures = measure(placed, events, result.start_time, result.speaker, duration,
                           echo=scenario.echo_gain > 0)
        expectations = check_expectations(scenario, placed, events, result.start_time, result.speaker,
                                          history_text, result.images_pushed)
        expectations += [ExpectationResult("timeline", False, f"the entry on line {item.line} never played: the "
                                           "answer it waits for did not come") for item in built.unplaced()]
        failed = [e for e in expectations if not e.passed]
        status = "passed" if not failed else ("known_failure" if scenario.known_failure else "failed")
        note = "marked known_failure but passed this time" if scenario.known_failure and not failed else ""
        outcome = ScenarioResult(scenario, status, clock_mode, expectations, measures, out_dir=out_dir,
                                 wall_s=wall_s, timeline_s=duration, model_busy_s=meter.busy_wall_s, note=note)
        self._write(outcome, placed, result, events, [(t.role, t.text, t.interrupted) for t in session.history])
        return outcome

    async def _play(self, scenario: Scenario, built: BuiltTimeline, clock_mode: str, out_dir: Path):
        virtual = clock_mode == "virtual"
        clock = ManualClock() if virtual else None
        config = self.models.config
        if scenario.max_answer_tokens is not None:  # this session's answers only; the models stay loaded
            scenario_config = copy.deepcopy(config)
            scenario_config.llm.max_answer_tokens = scenario.max_answer_tokens
            self.models.config = scenario_config
        try:
            session = self.models.new_session(clock=clock, event_log_path=out_dir / "events.jsonl")
        finally:
            self.models.config = config
        built.watch.bind(session)
        meter = WorkMeter()  # counts model calls in both modes: the run ends only once they are done
        meter_session(session, meter)
        pacer = VirtualPacer(clock, meter) if clock is not None else None  # virtual mode
        bar = self._block_bar(scenario, built.timeline.duration + scenario.tail_s)
        try:
            async with session:
                result: TimelineResult = await run_timeline(
                    session, built.timeline, tail_s=scenario.tail_s, echo_gain=scenario.echo_gain, pacer=pacer,
                    on_block=(lambda done, total: bar.update(1)) if bar is not None else None,
                    quiet=_quiet_probe(session, meter, self.options.quiet_hold_s), max_drain_s=self.options.max_drain_s)
        finally:
            if bar is not None:
                bar.close()
        return session, result, meter

    def _block_bar(self, scenario: Scenario, seconds: float):
        if not self.options.progress or seconds < self.options.block_progress_after_s:
            return None
        from tqdm import tqdm

        return tqdm(total=int(np.ceil(seconds / 0.02)), desc=f"  {scenario.name}", unit="block", leave=False)

    def _write(self, outcome: ScenarioResult, placed: list[PlacedItem], result: TimelineResult, events: list[Event],
               history: list[tuple]) -> None:
        from assistant.replay.plot import plot_timeline

        out = outcome.out_dir
        assert out is not None  # run() made it
        stereo = np.stack([result.mic, result.speaker], axis=1).clip(-1, 1).astype(np.float32)
        write_wav(out / "audio.wav", AudioFrame(stereo, MIC_RATE))
        plot_timeline(out / "timeline.png", outcome.scenario.name, placed, events, result.start_time,
                      result.mic, result.speaker)
        payload = outcome.to_json()
        payload["history"] = [{"role": r, "text": t, "interrupted": i} for r, t, i in history]
        payload["placed"] = [vars(p) for p in placed]
        (out / "metrics.json").write_text(json.dumps(payload, indent=2, default=str))


async def run_scenarios(models, scenarios: list[Scenario], options: ReplayOptions) -> list[ScenarioResult]:
    runner = ReplayRunner(models, options)
    results: list[ScenarioResult] = []
    bar = None
    if options.progress and len(scenarios) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(scenarios), desc="replay", unit="scenario")
    try:
        for scenario in scenarios:
            if bar is not None:
                bar.set_postfix_str(scenario.name)
            results.append(await runner.run(scenario))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return results


def run_replay(models, scenarios: list[Scenario], options: ReplayOptions) -> list[ScenarioResult]:
    return asyncio.run(run_scenarios(models, scenarios, options))
