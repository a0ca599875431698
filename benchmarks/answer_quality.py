"""Answer quality as a user hears it (issue #16): everyday questions spoken by several voices, with the camera
off, on and showing something unrelated, and on and asked about; accepted answers written down beforehand.

    .venv/bin/python benchmarks/answer_quality.py [--voices espeak:en-gb-scotland,espeak:en-029,piper]
                                                  [--conditions off,unrelated,about] [--limit N] [--json F]
                                                  [--set duplex.repeat_below_logprob=-0.9]

Each (question, voice, camera condition) is one replay scenario on the virtual clock through the whole
session with the bundled models (VAD, Whisper, the state decision, SmolLM2, Piper): the question spoken at
1.5 s, for "unrelated" a food label (BANANA BREAD) in view from 0.2 s, for "about" the image the question is
about. The questions and their accepted answers: benchmarks/data/answer_questions.tsv (60 general questions,
8 about the view).

Per voice and condition it prints:
  answered     a turn started and ended with an answer
  no turn      the question started no turn (heard as not meant for the assistant, or not heard at all)
  accepted     the answer holds one of the accepted answers (a substring, case-insensitive)
  parrots view the answer reads out the camera's description (its words BANANA, BREAD, "camera", "text in
               view") on a question not about the view; the goal is 0
  echoes       the answer adds next to nothing to the words heard (>= 85 % of its words are among them)
  misheard     the transcript misses a content word of the question (a word of 4+ letters; digits written out)
  say again    the answer asks the user to repeat (short phrases like "say that again", "repeat")
  repeats      the answer says the same four words twice (decoding caught in a loop)
Voices: the state head was fitted on piper:joe, espeak:en-us and espeak:en-gb+f3 (duplex/state/corpus.py);
espeak:en-gb-scotland and espeak:en-029 are held out of every fit, so their rows come first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS_FILE = ROOT / "benchmarks" / "data" / "answer_questions.tsv"
LABEL_IMAGE = ROOT / "assistant" / "replay" / "scenarios" / "images" / "label_banana_bread.png"
VIEW_WORDS = ("banana", "bread", "camera", "text in view", "no face in view", "bright view")
SAY_AGAIN = re.compile(r"\b(say (that|it) again|repeat (that|it|the question)|didn'?t (quite )?catch|"
                       r"come again|pardon|could you repeat)\b", re.I)
HELD_OUT_VOICES = ("espeak:en-gb-scotland", "espeak:en-029")


@dataclass(frozen=True)
class Question:
    text: str
    accepted: tuple[str, ...]
    about: str  # "general", or the image it is about: "label", "red"


@dataclass
class Outcome:
    question: Question
    voice: str
    condition: str
    transcript: str = ""  # the last final transcript of the question
    heard: str = ""  # the question of the turn it started ("": none started)
    answer: str = ""
    avg_logprob: float | None = None
    asked_again: bool = False  # the session asked the user to repeat (TurnStarted.asks_to_repeat)
    flags: dict[str, bool] = field(default_factory=dict)


def load_questions(path: Path = QUESTIONS_FILE) -> list[Question]:
    questions = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        text, accepted, about = line.split("\t")
        questions.append(Question(text, tuple(a.strip().lower() for a in accepted.split("|")), about.strip()))
    return questions


NUMBER_WORDS = dict(enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split()))


def words(text: str) -> list[str]:
    """Lower-case words, with whisper's digits written out ("2 plus 3" is "two plus three")."""
    found = re.findall(r"[a-z0-9']+", text.lower())
    return [NUMBER_WORDS.get(int(w), w) if w.isdigit() and int(w) <= 20 else w for w in found]


def misheard(said: str, heard: str) -> bool:
    """The transcript ``heard`` misses a content word (4+ letters) of what was ``said`` (nothing heard: no)."""
    content = {w for w in words(said) if len(w) >= 4}
    return bool(heard.strip()) and bool(content - set(words(heard)))


def judge(outcome: Outcome) -> dict[str, bool]:
    answer, question = outcome.answer.lower(), outcome.question
    heard = set(words(outcome.transcript))
    answer_words = words(answer)
    # an echo adds next to nothing to the words heard ("But in thawman what are called?" answered by itself)
    echo = len(answer_words) >= 2 and sum(w in heard for w in answer_words) >= 0.85 * len(answer_words)
    # a view word counts only where the question or its accepted answers do not hold it ("a ripe banana")
    own = question.text.lower() + " " + " ".join(question.accepted)
    view_words = [w for w in VIEW_WORDS if w in answer and w not in own]
    return {
        "answered": bool(answer.strip()),
        "accepted": any(a in answer for a in question.accepted),
        "parrots_view": question.about == "general" and outcome.condition != "off" and bool(view_words),
        "echoes": echo,
        "no_turn": not outcome.heard,
        "misheard": misheard(question.text, outcome.transcript),
        "say_again": outcome.asked_again or bool(SAY_AGAIN.search(answer)),
        "repeats": repeats_itself(answer_words),
    }


def repeats_itself(answer_words: list[str], n: int = 4) -> bool:
    """The answer says the same four words twice ("a bright view, mostly yellow, with a bright view, mostly
    yellow"): greedy decoding caught in a loop."""
    grams = [tuple(answer_words[i:i + n]) for i in range(len(answer_words) - n + 1)]
    return len(grams) != len(set(grams))


def scenario_text(question: Question, condition: str, audio: Path | None) -> str:
    timeline = []
    if condition == "unrelated" or (condition == "about" and question.about == "label"):
        timeline.append(f"  - at: 0.2\n    image: {LABEL_IMAGE}\n")
    elif condition == "about" and question.about == "red":
        timeline.append("  - at: 0.2\n    image:\n    color: [220, 20, 20]\n")
    if audio is None:
        timeline.append(f"  - at: 1.5\n    say: {json.dumps(question.text)}\n")
    else:
        timeline.append(f"  - at: 1.5\n    audio: {audio}\n")
    return (f"description: {json.dumps(question.text)}\ncategory: camera\ntail_s: 6.0\ntimeline:\n"
            + "".join(timeline) + "expect:\n  answers: true\n")


def speak(voice: str, text: str, path: Path) -> Path:
    from audio.frames import AudioFrame
    from audio.tts import EspeakSynthesizer
    from audio.wavfile import write_wav

    synthesizer = EspeakSynthesizer(voice.split(":", 1)[1])
    frames = list(synthesizer.synthesize(text))
    samples = np.concatenate([np.asarray(f.samples, dtype=np.float32) for f in frames])
    if np.abs(samples).max() > 1.5:  # int16 from the command line
        samples = samples / 32768.0
    return write_wav(path, AudioFrame(samples.astype(np.float32), frames[0].sample_rate))


def read_turn(events_path: Path, outcome: Outcome) -> None:
    """The first turn's question and answer, and the confidence of the words heard (the last final
    transcript before the turn: whisper's mean token log-probability)."""
    for line in events_path.read_text().splitlines():
        record = json.loads(line)
        kind = record.get("kind")
        if kind == "UserTranscript" and record.get("final") and not outcome.heard:
            outcome.transcript, outcome.avg_logprob = record.get("text", ""), record.get("avg_logprob")
        elif kind == "TurnStarted" and not outcome.heard:
            outcome.heard = record.get("question", "")
            outcome.asked_again = bool(record.get("asks_to_repeat"))
        elif kind == "TurnEnded" and not outcome.answer:
            outcome.answer = record.get("answer", "")


async def run(args) -> list[Outcome]:
    from assistant.config import AssistantConfig
    from assistant.replay.runner import ReplayOptions, ReplayRunner
    from assistant.replay.scenario import load_scenario
    from assistant.session import AssistantModels

    questions = load_questions()
    general = [q for q in questions if q.about == "general"][: args.limit or None]
    about = [q for q in questions if q.about != "general"]
    config = AssistantConfig()
    config.llm.max_answer_tokens = args.answer_tokens
    for setting in args.set:
        name, _, value = setting.partition("=")
        config.set(name, value)
    models = AssistantModels(config, progress=not args.quiet)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runner = ReplayRunner(models, ReplayOptions(out_dir=folder / "out", clock="virtual", progress=False))
        started = time.monotonic()
        for voice in args.voices:
            for condition in args.conditions:
                for k, question in enumerate(about if condition == "about" else general):
                    name = f"{re.sub(r'[^a-z0-9]+', '_', voice)}_{condition}_{k}"
                    audio = None if voice == "piper" else speak(voice, question.text, folder / f"{name}.wav")
                    path = folder / f"{name}.yaml"
                    path.write_text(scenario_text(question, condition, audio))
                    result = await runner.run(load_scenario(path))
                    outcome = Outcome(question, voice, condition)
                    if result.out_dir is not None and (result.out_dir / "events.jsonl").exists():
                        read_turn(result.out_dir / "events.jsonl", outcome)
                    outcome.flags = judge(outcome)
                    outcomes.append(outcome)
                    if args.verbose:
                        print(f"{voice:22} {condition:9} {question.text!r} heard {outcome.transcript!r} -> "
                              f"{outcome.answer[:100]!r} {[f for f, v in outcome.flags.items() if v]}", flush=True)
                print(f"  {voice} / {condition}: done ({(time.monotonic() - started) / 60:.1f} min)", flush=True)
    return outcomes


def table(outcomes: list[Outcome], voices: list[str], conditions: list[str]) -> list[dict]:
    rows = []
    for voice in voices:
        for condition in conditions:
            group = [o for o in outcomes if o.voice == voice and o.condition == condition]
            if not group:
                continue
            row: dict = {"voice": voice, "held_out": voice in HELD_OUT_VOICES, "condition": condition,
                         "n": len(group)}
            for flag in ("answered", "no_turn", "accepted", "parrots_view", "echoes", "misheard", "say_again",
                         "repeats"):
                row[flag] = sum(o.flags[flag] for o in group) / len(group)
            heard_right = [o for o in group if o.transcript and not o.flags["misheard"]]
            row["accepted_when_heard_right"] = (statistics.mean(o.flags["accepted"] for o in heard_right)
                                                if heard_right else None)
            rows.append(row)
    return rows


LOGPROB_STEPS = (-0.3, -0.5, -0.7, -0.9)
REAL_SPEECH_GROUPS = ("speech/jfk", "speech/cmu_arctic", "speech/ljspeech", "speech/vctk_valentini_clean",
                      "noisy_speech/vctk_valentini_noisy")


def real_speech(data_dir: Path) -> list[tuple[str, float, bool]]:
    """The shared recordings of real English speakers with transcripts: (path, whisper's mean log-probability,
    misheard: over a fifth of the transcript's content words missing). None of them was used in any fit."""
    import csv

    from assistant.backends import load_recognizer
    from assistant.config import AssistantConfig
    from audio.wavfile import read_audio

    recognizer = load_recognizer(AssistantConfig().asr)
    rows = []
    with (data_dir / "MANIFEST.tsv").open() as handle:
        for entry in csv.DictReader(handle, delimiter="\t"):
            if entry["group"] not in REAL_SPEECH_GROUPS or not entry["transcript"].strip():
                continue
            audio = read_audio(data_dir / entry["path"]).convert(16000, 1).mono_float32()
            transcript = recognizer.transcribe(audio)
            content = {w for w in words(entry["transcript"]) if len(w) >= 4}
            missing = len(content - set(words(transcript.text))) / max(1, len(content))
            rows.append((entry["path"], transcript.avg_logprob, missing > 0.2))
    return rows


def share(group: list[Outcome], below: float) -> str:
    if not group:
        return "-"
    return f"{sum(o.avg_logprob is not None and o.avg_logprob < below for o in group) / len(group):.0%}"


def frac(clips: list[tuple[str, float, bool]], below: float) -> str:
    return f"{sum(c[1] < below for c in clips) / len(clips):.0%}" if clips else "-"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", default=",".join(HELD_OUT_VOICES + ("piper",)),
                        help="comma-separated: espeak:VOICE or piper (the bundled voice)")
    parser.add_argument("--conditions", default="off,unrelated,about", help="camera conditions")
    parser.add_argument("--limit", type=int, default=0, help="only the first N general questions")
    parser.add_argument("--answer-tokens", type=int, default=40)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="a config option for this run, e.g. duplex.repeat_below_logprob=-0.9 (repeatable)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "audio",
                        help="the shared recordings (their real speakers' confidence figures; skipped when absent)")
    parser.add_argument("--json", type=Path, help="write rows and every outcome here")
    parser.add_argument("--verbose", action="store_true", help="one line per question")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    args.voices = [v for v in args.voices.split(",") if v]
    args.conditions = [c for c in args.conditions.split(",") if c]
    began = time.monotonic()
    outcomes = asyncio.run(run(args))
    rows = table(outcomes, args.voices, args.conditions)
    print("\n| voice | condition | n | answered | no turn | accepted | accepted, heard right | parrots view | "
          "echoes | misheard | say again | repeats itself |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        heard_right = "-" if r["accepted_when_heard_right"] is None else f"{r['accepted_when_heard_right']:.0%}"
        print(f"| {r['voice']}{' (held out)' if r['held_out'] else ''} | {r['condition']} | {r['n']} | "
              f"{r['answered']:.0%} | {r['no_turn']:.0%} | {r['accepted']:.0%} | {heard_right} | "
              f"{r['parrots_view']:.0%} | {r['echoes']:.0%} | {r['misheard']:.0%} | {r['say_again']:.0%} | "
              f"{r['repeats']:.0%} |")
    print("\nWhisper's confidence as a 'say again' signal (spoken questions transcribed): share flagged"
          " below each mean log-probability, of the misheard and of the heard-right ones")
    print("| voices | misheard / heard right | " + " | ".join(f"< {t}" for t in LOGPROB_STEPS) + " |")
    print("|---|---|" + "---|" * len(LOGPROB_STEPS))
    for label, group in (("held out", [o for o in outcomes if o.voice in HELD_OUT_VOICES]),
                         ("fitted", [o for o in outcomes if o.voice not in HELD_OUT_VOICES])):
        scored = [o for o in group if o.avg_logprob is not None and o.transcript]
        wrong = [o for o in scored if o.flags["misheard"]]
        right = [o for o in scored if not o.flags["misheard"]]
        if not scored:
            continue
        cells = [f"{share(wrong, t)} / {share(right, t)}" for t in LOGPROB_STEPS]
        print(f"| {label} | {len(wrong)} / {len(right)} | " + " | ".join(cells) + " |")
    if args.data is not None and (args.data / "MANIFEST.tsv").exists():
        clips = real_speech(args.data)
        misheard_clips = [c for c in clips if c[2]]
        right_clips = [c for c in clips if not c[2]]
        cells = [f"{frac(misheard_clips, t)} / {frac(right_clips, t)}" for t in LOGPROB_STEPS]
        print(f"| real recorded speakers ({len(clips)} clips) | {len(misheard_clips)} / {len(right_clips)} | "
              + " | ".join(cells) + " |")
    print(f"\n{len(outcomes)} questions in {(time.monotonic() - began) / 60:.1f} min")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "outcomes": [
            {"question": o.question.text, "voice": o.voice, "condition": o.condition, "heard": o.heard,
             "answer": o.answer, "avg_logprob": o.avg_logprob, **o.flags} for o in outcomes]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
