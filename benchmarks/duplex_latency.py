"""The duplex core's measured outcomes, with the real models, in real time.

    .venv/bin/python benchmarks/duplex_latency.py [--turns 10] [--barge-ins 10] [--noise-runs 20] [--data DIR]
    .venv/bin/python benchmarks/duplex_latency.py --turns 20 --against duplex.echo_guard=false

Scripted timelines (user speech synthesised with the bundled Piper voice; noise from the shared
recordings) are played into a session exactly as the tests do, and the event logs give:

- turn-taking latency: first answer audio pulled by the "loudspeaker" minus the true end of the user's
  speech (end of the synthesised question's voiced samples), p50 / p90;
- interrupt stop: the assistant's voice lowered or paused (the first Duck) minus the true onset of the
  interrupting speech, p90; and the same for the pause alone (a Duck with gain 0, after the VAD's onset);
- answer after interrupt: first audio of the new answer minus the true end of the interrupting speech, p50 / p90;
- false interruptions: noise clips and backchannels while it answers (4 per answer), and whole answers
  whose voice leaks back through open speakers at -6 dB with no echo canceller; an ``Interrupt`` event
  counts as a lasting interruption, a pause that resumes does not;
- event-loop lag p99 across all runs.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import platform
import sys
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.backends import load_stack  # noqa: E402
from assistant.config import AssistantConfig  # noqa: E402
from assistant.recordings import find_data_dir  # noqa: E402
from assistant.session import make_state_decider, worker_models  # noqa: E402
from audio.frames import AudioFrame  # noqa: E402
from audio.vad import SileroVad  # noqa: E402
from audio.wavfile import read_audio  # noqa: E402
from duplex.bus import EventLog  # noqa: E402
from duplex.decision import StateToken  # noqa: E402
from duplex.events import Duck, Interrupt, PlaybackStarted, Resume, StateDecided  # noqa: E402
from duplex.models import GenerationOptions  # noqa: E402
from duplex.options import DuplexOptions  # noqa: E402
from duplex.session import DuplexSession  # noqa: E402
from duplex.timeline import Timeline, run_timeline  # noqa: E402

QUESTIONS = ["What is the capital of France?", "How many legs does a spider have?", "What color is the sky?",
             "Can you name a fruit that is yellow?", "What is the boiling point of water?",
             "Who wrote Romeo and Juliet?", "What day comes after Monday?", "How many minutes are in an hour?",
             "What is the largest planet?", "Tell me a fun fact about cats."]
STORIES = ["Tell me a long story about a brave little dragon.", "Describe a day at the beach in detail.",
           "Explain how a bicycle works, step by step.", "Tell me about the history of the moon landing."]
INTERRUPTIONS = ["What is two plus two?", "Stop. What time is it in Tokyo?", "Wait, what is the capital of Spain?",
                 "Can you tell me a joke instead?", "How tall is Mount Everest?"]
BACKCHANNELS = ["Uh-huh.", "Yeah.", "Right.", "Okay.", "Mm-hmm.", "I see."]
NOISES = [("speech_commands_bg/doing_the_dishes.wav", 10), ("speech_commands_bg/running_tap.wav", 5),
          ("speech_commands_bg/exercise_bike.wav", 20), ("speech_commands_bg/dude_miaowing.wav", 12),
          ("music_ambient/Kevin_MacLeod_-_Vibe_Ace.hq.wav", 15), ("room_tone/leopard_empty_roomtone.wav", 1),
          ("freesound_cc0/noise_freesound_573577.wav", 1),
          ("music_ambient/sorohanro_-_solo-trumpet-06.hq.wav", 1)]


def voiced_span(frame: AudioFrame) -> tuple[float, float]:
    """(first, last) voiced second of a clip, by 10 ms energy above -40 dBFS."""
    samples = frame.mono_float32()
    block = frame.sample_rate // 100
    blocks = samples[: len(samples) // block * block].reshape(-1, block)
    loud = np.flatnonzero(10 * np.log10(np.mean(blocks ** 2, axis=1) + 1e-12) > -40)
    return (loud[0] / 100, (loud[-1] + 1) / 100) if loud.size else (0.0, frame.duration)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class Bench:
    def __init__(self, data_dir: Path | None) -> None:
        self.config = AssistantConfig()
        self.stack = load_stack(self.config, progress=True)
        self.decider = make_state_decider(self.config)
        self.data_dir = data_dir
        self.cache: dict[str, AudioFrame] = {}
        self.loop_lag: list[float] = []
        self.quick_confirm_s = self.config.duplex.quick_duck_confirm_s
        self.needless_lowerings = 0

    def say(self, text: str, fresh: bool = False) -> AudioFrame:
        """Piper renders a line differently every time; ``fresh`` takes a new rendering instead of the cached
        one, so that one unlucky rendering of a backchannel ("Mm-hmm" heard as "in a month") is not
        counted over and over."""
        if fresh or text not in self.cache:
            chunks = list(self.stack.synthesizer.synthesize(text))
            self.cache[text] = AudioFrame.concatenate(chunks).convert(sample_rate=16000)
        return self.cache[text]

    async def run(self, timeline: Timeline, tail_s: float, max_tokens: int,
                  echo_gain: float = 0.0, options: DuplexOptions | None = None) -> tuple[EventLog, float]:
        """The session's events, and the session clock time of the timeline's start."""
        log = EventLog()
        session = DuplexSession(worker_models(self.stack), self.decider, SileroVad, options or self.config.duplex,
                                system_prompt=self.config.llm.system_prompt,
                                generation=GenerationOptions(max_tokens=max_tokens), event_log=log)
        async with session:
            result = await run_timeline(session, timeline, tail_s=tail_s, echo_gain=echo_gain)
        self.loop_lag.extend(session.loop_lag_ms)
        return log, result.start_time

    async def turn(self, i: int, options: DuplexOptions | None = None) -> float | None:
        """Question ``i`` to an idle assistant: its first answer audio after the end of the speech."""
        question = self.say(QUESTIONS[i % len(QUESTIONS)])
        log, start_time = await self.run(Timeline(1.0).add_audio(0.5, question), tail_s=3.0, max_tokens=40,
                                         options=options)
        end = start_time + 0.5 + voiced_span(question)[1]
        starts = log.of_type(PlaybackStarted)
        return starts[0].time - end if starts else None

    async def turns(self, count: int) -> list[float]:
        latencies = []
        for i in range(count):
            latency = await self.turn(i)
            if latency is not None:
                latencies.append(latency)
            print(f"  turn {i + 1}: {latency if latency is not None else float('nan'):.2f} s", flush=True)
        return latencies

    async def paired_turns(self, count: int, changed: DuplexOptions) -> tuple[list[float], list[float], list[bool]]:
        """Each question with the defaults and with ``changed``, one after the other, the order swapped every
        other question: the second of a pair finds the model's prompt cache warm, so each side goes first
        equally often. Returns both sides' latencies and, per pair, whether the defaults went first."""
        before: list[float] = []
        after: list[float] = []
        defaults_first: list[bool] = []
        for i in range(count):
            results: dict[bool, float | None] = {}
            for with_change in ((False, True) if i % 2 == 0 else (True, False)):
                results[with_change] = await self.turn(i, changed if with_change else None)
            default, change = results[False], results[True]
            if default is not None and change is not None:
                before.append(default)
                after.append(change)
                defaults_first.append(i % 2 == 0)
            print(f"  turn {i + 1}: default {default if default is not None else float('nan'):.2f} s, "
                  f"changed {change if change is not None else float('nan'):.2f} s", flush=True)
        return before, after, defaults_first

    async def barge_ins(self, count: int) -> tuple[list[float], list[float], list[float], int]:
        stops: list[float] = []
        pauses: list[float] = []
        answers: list[float] = []
        handled = 0
        for i in range(count):
            story = self.say(STORIES[i % len(STORIES)])
            interruption = self.say(INTERRUPTIONS[i % len(INTERRUPTIONS)])
            at = 0.5 + story.duration + 1.5 + (i % 3)  # ~1-3 s into the answer's audio
            timeline = Timeline(1.0).add_audio(0.5, story).add_audio(at, interruption)
            log, start_time = await self.run(timeline, tail_s=4.0, max_tokens=120)
            onset = start_time + at + voiced_span(interruption)[0]
            end = start_time + at + voiced_span(interruption)[1]
            ducks = [d for d in log.of_type(Duck) if d.time >= onset - 0.05]
            if ducks:
                stops.append(ducks[0].time - onset)
            paused = [d.time for d in ducks if d.gain == 0.0]
            if paused:
                pauses.append(paused[0] - onset)
            second = [p.time for p in log.of_type(PlaybackStarted) if p.turn_id >= 2 and p.time > end - 1]
            if log.of_type(Interrupt) and second:
                handled += 1
                answers.append(second[0] - end)
            print(f"  barge-in {i + 1}: stop {stops[-1] if ducks else float('nan'):.3f} s, "
                  f"paused {pauses[-1] if paused else float('nan'):.3f} s, "
                  f"answer {answers[-1] if second else float('nan'):.2f} s", flush=True)
        return stops, pauses, answers, handled

    async def false_interruptions(self, runs: int, echo_runs: int) -> tuple[int, int, dict[str, list[int]]]:
        """``runs`` answers with four noise or backchannel events each (speakers off: headphones or a good
        canceller), then ``echo_runs`` answers heard back through open speakers at -6 dB with no canceller."""
        interrupts, self.needless_lowerings = 0, 0
        by_kind: dict[str, list[int]] = {"noise": [0, 0], "backchannel": [0, 0], "echo": [0, 0]}
        for i in range(runs + echo_runs):
            story = self.say(STORIES[i % len(STORIES)])
            start = 0.5 + story.duration + 1.5
            timeline = Timeline(1.0).add_audio(0.5, story)
            placed = []
            echo = i >= runs
            for k in range(0 if echo else 4):  # events 3.5 s apart while the answer plays
                at = start + 3.5 * k
                if k % 2 == 0 and self.data_dir is not None:
                    name, offset = NOISES[(i * 2 + k // 2) % len(NOISES)]
                    clip = read_audio(self.data_dir / "noise" / name).convert(sample_rate=16000, channels=1)
                    piece = AudioFrame(clip.samples[offset * 16000:offset * 16000 + 32000], 16000)
                    level = float(np.sqrt(np.mean(piece.mono_float32() ** 2))) or 1e-6
                    timeline.add_audio(at, piece, "noise", gain=0.1 / level)
                    placed.append(("noise", at))
                else:
                    timeline.add_audio(at, self.say(BACKCHANNELS[(i + k) % len(BACKCHANNELS)], fresh=True),
                                       "backchannel")
                    placed.append(("backchannel", at))
            log, start_time = await self.run(timeline, tail_s=3.0 if not echo else 12.0, max_tokens=120,
                                             echo_gain=0.5 if echo else 0.0)
            cut = log.of_type(Interrupt)
            lowered = [d for d in log.of_type(Duck) if d.gain > 0 and d.time > start_time + start - 0.5]
            undone = [r for r in log.of_type(Resume) if r.reason == "no speech followed the sound"
                      and r.time > start_time + start - 0.5]
            self.needless_lowerings += len(undone)
            if echo:
                by_kind["echo"][0] += len(cut)
                by_kind["echo"][1] += 1
            else:
                for kind, at in placed:
                    by_kind[kind][1] += 1
                    by_kind[kind][0] += sum(at <= c.time - start_time <= at + 3.5 for c in cut)
            interrupts += len(cut)
            culprits = [f"{d.text!r} ({d.reason})" for d in log.of_type(StateDecided)
                        if d.token is StateToken.QUERY and d.segment_id > 1]
            print(f"  {'echo' if echo else 'noise'} run {i + 1}: {len(cut)} interruption(s) {'; '.join(culprits)}; "
                  f"voice lowered {len(lowered)} time(s), {len(undone)} undone", flush=True)
        events = sum(total for _, total in by_kind.values())
        return interrupts, events, by_kind


async def main_async(args) -> None:
    bench = Bench(find_data_dir(args.data))
    if args.against:
        changed = copy.deepcopy(bench.config)
        for assignment in args.against:
            dotted, _, value = assignment.partition("=")
            changed.set(dotted.strip(), value.strip())
        print(f"turn-taking, defaults against {', '.join(args.against)}:")
        before, after, defaults_first = await bench.paired_turns(args.turns, changed.duplex)
        ratios = [b / a for a, b in zip(before, after)]
        # the change's own effect with the cache's order effect cancelled: the mean of the two orders' means
        by_order = [[b - a for a, b, first in zip(before, after, defaults_first) if first is went_first]
                    for went_first in (True, False)]
        effect = float(np.mean([np.mean(d) for d in by_order if d])) if any(by_order) else float("nan")
        order = (float(np.mean(by_order[1]) - np.mean(by_order[0])) / 2 if all(by_order) else float("nan"))
        print(f"\n{date.today()}, {platform.machine()}, 2-core VM, bundled models, real-time timelines\n")
        print("| turn-taking: first answer audio after end of speech | p50 | p90 |\n|---|---|---|")
        print(f"| defaults (n={len(before)}) | {percentile(before, 50):.2f} s | {percentile(before, 90):.2f} s |")
        print(f"| {', '.join(args.against)} (n={len(after)}) | {percentile(after, 50):.2f} s | "
              f"{percentile(after, 90):.2f} s |")
        print(f"| changed / default, per question, median | {percentile(ratios, 50):.3f} | |")
        print(f"| changed - default, mean, both orders weighed alike | {1000 * effect:+.0f} ms | |")
        print(f"| going first rather than second (the prompt cache cold), mean | {1000 * order:+.0f} ms | |")
        return
    if bench.data_dir is None:
        print("note: no recordings folder: noise events are backchannels and echo only")
    print("turn-taking:")
    turns = await bench.turns(args.turns)
    print("barge-ins:")
    stops, pauses, answers, handled = await bench.barge_ins(args.barge_ins)
    print("noise, backchannels and echo during answers:")
    interrupts, events, by_kind = await bench.false_interruptions(args.noise_runs, args.echo_runs)
    lag = sorted(bench.loop_lag)
    print(f"\n{date.today()}, {platform.machine()}, 2-core VM, bundled models, real-time timelines\n")
    print("| measure | value | target |\n|---|---|---|")
    print(f"| turn-taking: first answer audio after end of speech, p50 / p90 (n={len(turns)}) | "
          f"{percentile(turns, 50):.2f} s / {percentile(turns, 90):.2f} s | p50 < 0.7 s |")
    print(f"| interrupt: voice lowered or paused after speech onset, p50 / p90 (n={len(stops)}) | "
          f"{1000 * percentile(stops, 50):.0f} ms / {1000 * percentile(stops, 90):.0f} ms | p90 < 150 ms |")
    print(f"| interrupt: voice paused (VAD onset confirmed), p50 / p90 (n={len(pauses)}) | "
          f"{1000 * percentile(pauses, 50):.0f} ms / {1000 * percentile(pauses, 90):.0f} ms | |")
    print(f"| interrupt answered: first new audio after end of interrupting speech, p50 / p90 "
          f"({handled}/{args.barge_ins} handled) | {percentile(answers, 50):.2f} s / "
          f"{percentile(answers, 90):.2f} s | < 0.8 s |")
    detail = ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in by_kind.items())
    print("| lasting interruptions by noise, backchannels, echo (an echo event = one whole answer) | "
          f"{interrupts}/{events} "
          f"({100 * interrupts / max(events, 1):.1f} %; {detail}) | <= 2 % |")
    print(f"| voice lowered for ~{bench.quick_confirm_s:.1f} s by a sound that was not speech "
          f"({args.noise_runs + args.echo_runs} answers) | {bench.needless_lowerings} | |")
    print(f"| event-loop lag p99 | {percentile(lag, 99):.1f} ms | < 20 ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--barge-ins", type=int, default=10)
    parser.add_argument("--noise-runs", type=int, default=20, help="answers with 4 noise/backchannel events each")
    parser.add_argument("--echo-runs", type=int, default=10, help="answers heard back through open speakers")
    parser.add_argument("--data", help="the recordings folder (default ../shared/data/audio)")
    parser.add_argument("--against", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="only turn-taking, each question with the defaults and with this change (repeatable)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
