"""When to ask the user to say it again (issue #16): whisper's figures and the words' own shape, fitted on the
fitted voices, judged on voices and speakers no fit saw.

    .venv/bin/python benchmarks/asking_again.py [--cache /tmp/asking_again.json] [--limit N]

Each written question (the 60 general ones of benchmarks/data/answer_questions.tsv and the state corpus's
queries) is spoken by each voice and heard by the session's recogniser (clip-whisper, tiny.en) as one clip;
the real recorded speakers of ../shared/data/audio (when present) are heard the same way. A transcript is
"misheard" when it misses a content word of what was said (a word of 4+ letters, as in answer_quality.py).

For every transcript it keeps whisper's mean token log-probability, no-speech probability and compression
ratio, the number of words, and the share of its words the language model's tokenizer holds as one token (a
word it knows: "thawman" is three pieces). Two rules are fitted on the fitted voices only (piper joe, espeak
en-us, espeak en-gb+f3): the log-probability threshold alone, and a logistic model of all the figures, each
at the strictest point where at most 3 % of the rightly heard questions are asked again. The held-out
voices (espeak en-gb-scotland, en-029) and the real speakers come first in the table.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.answer_quality import load_questions, misheard  # noqa: E402

FITTED_VOICES = ("piper:joe", "espeak:en-us", "espeak:en-gb+f3")
HELD_OUT_VOICES = ("espeak:en-gb-scotland", "espeak:en-029")
FEATURES = ("avg_logprob", "no_speech_prob", "compression_ratio", "log_words", "unknown_share")
GOAL_ASKED_AGAIN = 0.03  # of rightly heard questions


def shape_figures(text: str, count_tokens) -> dict[str, float]:
    found = re.findall(r"[A-Za-z']+", text)
    unknown = [w for w in found if count_tokens(" " + w.lower()) > 1]
    return {"log_words": float(np.log1p(len(found))), "unknown_share": len(unknown) / max(1, len(found))}


def collect(args) -> list[dict]:
    from assistant.bundled import piper_joe_voice, smollm2_gguf, whisper_tiny_en
    from assistant.llm.llama_cpp_backend import LlamaCppModel
    from assistant.recordings import english_transcribed, find_data_dir, load_manifest
    from audio.clip_whisper import ClipWhisperRecognizer
    from audio.frames import AudioFrame
    from audio.tts import EspeakSynthesizer, PiperSynthesizer
    from audio.wavfile import read_audio
    from duplex.state.corpus import QUERIES

    recognizer = ClipWhisperRecognizer(whisper_tiny_en(), device="cpu", threads=1)
    tokenizer = LlamaCppModel(smollm2_gguf(), threads=1)
    texts = [q.text for q in load_questions() if q.about == "general"] + [q for q in QUERIES if "?" in q]
    texts = list(dict.fromkeys(texts))[: args.limit or None]
    rows: list[dict] = []
    pad = np.zeros(3200, dtype=np.float32)

    def hear(audio: np.ndarray, said: str, voice: str) -> None:
        transcript = recognizer.transcribe(np.concatenate([pad, audio, pad]))
        rows.append({"voice": voice, "said": said, "heard": transcript.text,
                     "avg_logprob": transcript.avg_logprob, "no_speech_prob": transcript.no_speech_prob,
                     "compression_ratio": transcript.compression_ratio,
                     **shape_figures(transcript.text, tokenizer.count_tokens)})

    for voice in HELD_OUT_VOICES + FITTED_VOICES:
        started = time.monotonic()
        synthesizer = (PiperSynthesizer(*piper_joe_voice()) if voice.startswith("piper")
                       else EspeakSynthesizer(voice.split(":", 1)[1]))
        for said in texts:
            audio = AudioFrame.concatenate(list(synthesizer.synthesize(said))).convert(
                sample_rate=16000, channels=1, dtype=np.float32).mono_float32()
            hear(audio, said, voice)
        print(f"  {voice}: {len(texts)} heard in {time.monotonic() - started:.0f} s", flush=True)
    data_dir = find_data_dir()
    if data_dir is not None:
        recordings = load_manifest(data_dir)
        for recording in english_transcribed(recordings) + english_transcribed(recordings, kind="noisy_speech"):
            audio = read_audio(recording.path).convert(sample_rate=16000, channels=1,
                                                       dtype=np.float32).mono_float32()
            hear(audio, recording.transcript, f"real:{recording.group}")
    return rows


def matrix(rows: list[dict]) -> np.ndarray:
    return np.array([[r[f] for f in FEATURES] for r in rows], dtype=np.float64)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 50) -> tuple[np.ndarray, np.ndarray,
                                                                                          np.ndarray]:
    """Newton's method on the standardised figures; returns (mean, scale, weights with the bias last)."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.eye(z.shape[1]) * l2
    penalty[-1, -1] = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-z @ w))
        gradient = z.T @ (p - y) + penalty @ w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + penalty
        w -= np.linalg.solve(hessian, gradient)
    return mean, scale, w


def threshold_at_goal(scores: np.ndarray, y: np.ndarray) -> float:
    """The lowest score threshold (ask again when score > it) that asks again <= the goal of the heard-right."""
    right = np.sort(scores[y == 0])
    allowed = int(np.floor(GOAL_ASKED_AGAIN * len(right)))
    return float(right[len(right) - allowed - 1]) if allowed < len(right) else float("-inf")


def report(rows: list[dict]) -> None:
    rows = [r for r in rows if r["heard"].strip()]
    for r in rows:
        r["misheard"] = misheard(r["said"], r["heard"])
    fitted = [r for r in rows if r["voice"] in FITTED_VOICES]
    y_fit = np.array([r["misheard"] for r in fitted], dtype=np.float64)
    mean, scale, w = fit_logistic(matrix(fitted), y_fit)

    def logistic(group: list[dict]) -> np.ndarray:
        z = np.hstack([(matrix(group) - mean) / scale, np.ones((len(group), 1))])
        return z @ w

    def logprob(group: list[dict]) -> np.ndarray:
        return -np.array([r["avg_logprob"] for r in group])

    from duplex.options import DuplexOptions

    shipped = DuplexOptions().repeat_below_logprob
    rules = {"log-probability alone": logprob, "logistic, all figures": logistic}
    cuts = {name: threshold_at_goal(rule(fitted), y_fit) for name, rule in rules.items()}
    if shipped is not None:
        rules[f"shipped: below {shipped:g}"] = logprob
        cuts[f"shipped: below {shipped:g}"] = -shipped
    print(f"fitted on {len(fitted)} transcripts ({int(y_fit.sum())} misheard); logistic weights "
          + ", ".join(f"{f} {v:+.2f}" for f, v in zip(FEATURES + ("bias",), w)))
    print(f"log-probability threshold at the goal: ask again below {-cuts['log-probability alone']:.2f}")
    groups = [("held-out espeak voices", [r for r in rows if r["voice"] in HELD_OUT_VOICES]),
              ("real recorded speakers", [r for r in rows if r["voice"].startswith("real:")])]
    groups += [(v, [r for r in rows if r["voice"] == v]) for v in HELD_OUT_VOICES + FITTED_VOICES]
    print("\n| voices | misheard / heard right | " + " | ".join(
        f"{name}: misheard asked again / heard right asked again" for name in rules) + " |")
    print("|---|---|" + "---|" * len(rules))
    for label, group in groups:
        if not group:
            continue
        y = np.array([r["misheard"] for r in group])
        cells = []
        for name, rule in rules.items():
            asked = rule(group) > cuts[name]
            cells.append(f"{asked[y].mean() if y.any() else 0:.0%} / {asked[~y].mean() if (~y).any() else 0:.0%}")
        print(f"| {label} | {int(y.sum())} / {int((~y).sum())} | " + " | ".join(cells) + " |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/asking_again.json"),
                        help="transcripts and figures, reused when present (delete it to hear again)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many written questions")
    args = parser.parse_args(argv)
    if args.cache.exists():
        rows = json.loads(args.cache.read_text())
    else:
        rows = collect(args)
        args.cache.write_text(json.dumps(rows, indent=1))
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
