"""Does the camera slow the audio path? The same spoken timeline, played in real time into a real session
with and without a camera feeding frames, alternating runs so that other load on the machine hits both.

    .venv/bin/python benchmarks/vision_latency.py [--rounds 8] [--fps 20] [--sampling stress|default]

Measured per utterance, from the event log:
- onset latency: ``SpeechStarted.time - SpeechStarted.onset`` (the VAD thread's delay in noticing speech,
  3 voiced 32 ms frames by design plus any processing backlog), the figure a barge-in's pause depends on;
- decision latency: ``StateDecided.time - SpeechEnded.end`` (the short pause, whisper and the state head);
and per run the event loop's lag p99. The decider is wrapped to answer ``<2>`` always, so no LLM or TTS
work competes: the figures are those of the listening path alone.

The camera alternates a label and a face at ``--fps`` (each analysed frame changed, so the OCR and the
cascade run every time). ``stress`` sampling takes every frame the vision thread can take (the thread is
never idle: the worst case); ``default`` uses the session's own sampling intervals.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audio.frames import AudioFrame  # noqa: E402
from audio.vad import SileroVad  # noqa: E402
from duplex.bus import EventLog  # noqa: E402
from duplex.decision import StateDecision, StateToken  # noqa: E402
from duplex.events import SpeechEnded, SpeechStarted, StateDecided, VisionDescribed, VisionFrame  # noqa: E402
from duplex.models import WorkerModels  # noqa: E402
from duplex.options import DuplexOptions  # noqa: E402
from duplex.session import DuplexSession  # noqa: E402
from duplex.timeline import Timeline, run_timeline  # noqa: E402

UTTERANCES = ["Could you look at this for me?", "Hmm, let me think.", "What colour is this?", "Okay, never mind."]


class NeverAQuery:
    """The real decision's cost, but always ``<2>``: nothing is answered, only the listening path runs."""

    def __init__(self, decider) -> None:
        self.decider = decider

    def decide(self, evidence) -> StateDecision:
        decision = self.decider.decide(evidence)
        return StateDecision(StateToken.IGNORE, decision.query_probability, "benchmark: listening only")


@dataclass
class RunFigures:
    onset_ms: list[float] = field(default_factory=list)
    decision_ms: list[float] = field(default_factory=list)
    loop_lag_p99_ms: float = 0.0
    frames_taken: int = 0
    frames_described: int = 0
    analyse_ms: list[float] = field(default_factory=list)


def spoken_timeline(say, utterances=UTTERANCES, gap_s: float = 1.6) -> Timeline:
    timeline, at = Timeline(1.0), 0.6
    for text in utterances:
        clip = say(text)
        timeline.add_audio(at, clip, text)
        at += clip.duration + gap_s
    return timeline


def camera_frames(timeline: Timeline, images: list[np.ndarray], fps: float) -> None:
    for k in range(int(timeline.duration * fps)):
        timeline.add_image(k / fps, images[k % len(images)])


async def measure_run(models: WorkerModels, decider, say, describer=None, images=None, fps: float = 20.0,
                      stress: bool = True, utterances=UTTERANCES, tail_s: float = 6.0) -> RunFigures:
    timeline = spoken_timeline(say, utterances)
    options = DuplexOptions(output_sample_rate=16000)
    if images:
        camera_frames(timeline, images, fps)
        if stress:
            options.vision_idle_interval_s = options.vision_speech_interval_s = 0.0
    log = EventLog()
    session = DuplexSession(models, NeverAQuery(decider), SileroVad, options, event_log=log, vision=describer)
    async with session:
        await run_timeline(session, timeline, tail_s=tail_s)
    figures = RunFigures()
    for started in log.of_type(SpeechStarted):
        figures.onset_ms.append(1000 * (started.time - started.onset))
    ended = {e.segment_id: e for e in log.of_type(SpeechEnded)}
    for decided in log.of_type(StateDecided):
        if decided.segment_id in ended:
            figures.decision_ms.append(1000 * (decided.time - ended[decided.segment_id].end))
    lag = sorted(session.loop_lag_ms)
    figures.loop_lag_p99_ms = lag[int(0.99 * (len(lag) - 1))] if lag else 0.0
    figures.frames_taken = len(log.of_type(VisionFrame))
    described = log.of_type(VisionDescribed)
    figures.frames_described = len(described)
    figures.analyse_ms = [d.analyse_ms for d in described if d.changed]
    return figures


async def compare(models, decider, say, describer, images, rounds: int = 3, fps: float = 20.0,
                  stress: bool = True, utterances=None, tail_s: float = 6.0) -> dict[str, list[RunFigures]]:
    """Alternate runs without and with the camera, ``rounds`` of each, each a fresh session saying
    ``utterances`` (default: one utterance a run, in turn, so a slow transcription on a loaded machine
    cannot merge two utterances into one segment)."""
    runs: dict[str, list[RunFigures]] = {"off": [], "on": []}
    # Warm-up, not counted: the first decision of a process loads the state head's embedder (seconds).
    await measure_run(models, decider, say, describer, images, fps, stress, utterances=UTTERANCES[:1])
    for round_ in range(rounds):
        said = utterances or (UTTERANCES[round_ % len(UTTERANCES)],)
        runs["off"].append(await measure_run(models, decider, say, utterances=said, tail_s=tail_s))
        runs["on"].append(await measure_run(models, decider, say, describer, images, fps, stress, said, tail_s))
    return runs


def pooled(runs: list[RunFigures], name: str) -> list[float]:
    return [value for run in runs for value in getattr(run, name)]


def summary(runs: dict[str, list[RunFigures]]) -> dict[str, dict[str, float]]:
    out = {}
    for key, group in runs.items():
        onset, decision = pooled(group, "onset_ms"), pooled(group, "decision_ms")
        out[key] = {
            "onset_median_ms": statistics.median(onset) if onset else float("nan"),
            "onset_p90_ms": float(np.percentile(onset, 90)) if onset else float("nan"),
            "decision_median_ms": statistics.median(decision) if decision else float("nan"),
            "loop_lag_p99_ms": max(run.loop_lag_p99_ms for run in group),
            "utterances": len(onset),
            "frames_taken": sum(run.frames_taken for run in group),
            "frames_described": sum(run.frames_described for run in group),
            "analyse_median_ms": statistics.median(pooled(group, "analyse_ms")) if pooled(group, "analyse_ms") else 0.0,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--fps", type=float, default=20.0)
    parser.add_argument("--sampling", choices=("stress", "default"), default="stress")
    args = parser.parse_args()

    from assistant.backends import load_stack
    from assistant.config import AssistantConfig
    from assistant.session import make_state_decider, worker_models
    from assistant.vision.experts import ExpertDescriber
    from tests.test_vision_real import face_image, label_image

    config = AssistantConfig()
    stack = load_stack(config)
    decider = make_state_decider(config)
    describer = ExpertDescriber()

    def say(text: str) -> AudioFrame:
        return AudioFrame.concatenate(list(stack.synthesizer.synthesize(text))).convert(sample_rate=16000)

    runs = asyncio.run(compare(worker_models(stack), decider, say, describer, [label_image(), face_image(480)],
                               args.rounds, args.fps, args.sampling == "stress"))
    figures = summary(runs)
    print(f"machine: {platform.processor() or platform.machine()}, camera {args.fps:g} fps, "
          f"{args.sampling} sampling, {args.rounds} rounds")
    print(f"{'':24}{'camera off':>14}{'camera on':>14}")
    for name in ("onset_median_ms", "onset_p90_ms", "decision_median_ms", "loop_lag_p99_ms", "utterances",
                 "frames_taken", "frames_described", "analyse_median_ms"):
        print(f"{name:24}{figures['off'][name]:>14.1f}{figures['on'][name]:>14.1f}")
    ratio = figures["on"]["onset_median_ms"] / figures["off"]["onset_median_ms"]
    print(f"onset latency with the camera: {100 * (ratio - 1):+.1f} %")


if __name__ == "__main__":
    main()
