"""Evaluate the listener's state decision (QUERY <1> vs IGNORE <2>) on the segments `assistant train-state` heard.

    assistant train-state                # makes, hears and trains (writes duplex/state/state_model.json)
    .venv/bin/python benchmarks/state_decision.py [--cache /tmp/state-decision-cache] [--model FILE] \
        [--report docs/state-decision.md]

The figures are out of fold: the training procedure of ``duplex.state.train`` is cross-validated on the same
segments (5 folds, every rendition of one text or all pieces of one recording in one fold), and its choices
of L2, thresholds and embedding-skip bounds reported. Voices or recordings that the model file was trained
without (``assistant train-state --hold-out-...``) are left out of that too, and the model file is then
measured on them. The cost per decision is measured with the model file's weights and the real deciders.
Nothing here writes weights.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from assistant.config import AssistantConfig  # noqa: E402
from duplex.decision import SegmentEvidence, StateToken  # noqa: E402
from duplex.models import StateDecider  # noqa: E402
from duplex.state import corpus  # noqa: E402
from duplex.state.dataset import HeardDataset, HeldOut, LabelledSegments, labelled_segments  # noqa: E402
from duplex.state.decider import DEFAULT_MODEL_PATH, LearnedStateDecider, RuleStateDecider  # noqa: E402
from duplex.state.features import FEATURE_NAMES  # noqa: E402
from duplex.state.hearing import DATASET_FILE, load_cache  # noqa: E402
from duplex.state.selection import metrics  # noqa: E402
from duplex.state.train import DEFAULT_CACHE_DIR, TrainingOptions, stderr_log, train  # noqa: E402


def held_out_figures(model_path: Path, segments: LabelledSegments, embedder) -> list[str]:
    """The model file's decisions on the live view of the clips it was trained without."""
    rows = ["| decider | segments | P query | R query | P ignore | R ignore | accuracy |",
            "|---|---|---|---|---|---|---|"]
    live = [e for e, is_live in zip(segments.evidences, segments.live) if is_live]
    y = segments.labels[segments.live]
    deciders = {"features": LearnedStateDecider(model_path=model_path)}
    if embedder is not None:
        deciders["features + SmolLM2 embedding"] = LearnedStateDecider(embedder, model_path=model_path)
    for name, decider in deciders.items():
        pred = np.array([int(decider.decide(e).token == StateToken.QUERY) for e in live])
        m = metrics(y, pred)
        rows.append(f"| {name} | {len(y)} | {m['P query']:.3f} | {m['R query']:.3f} | {m['P ignore']:.3f} | "
                    f"{m['R ignore']:.3f} | {m['accuracy']:.3f} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE_DIR,
                        help="the folder `assistant train-state --cache` heard the segments into")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, help="the weights file to measure")
    parser.add_argument("--report", type=Path, default=REPO_ROOT / "docs" / "state-decision.md")
    parser.add_argument("--no-embedding", action="store_true", help="skip the LLM embedding variant")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    log = stderr_log()

    dataset = load_cache(args.cache / DATASET_FILE)
    if not isinstance(dataset, HeardDataset):
        parser.error(f"no heard segments in {args.cache}: run `assistant train-state --cache {args.cache}` first")
    model = json.loads(args.model.read_text())
    held = model.get("held_out", {})
    held_out = HeldOut(frozenset(held.get("voices", ())), tuple(held.get("recordings", ())))
    segments = labelled_segments(dataset, held_out)
    if args.no_embedding:
        segments.embeddings, segments.embedder_name = None, None
    options = TrainingOptions(dataset.speculate_after_s, AssistantConfig().state_speaking_threshold,
                              held_out=held_out)
    training = train(segments, options, log)
    live = segments.live
    y, categories = segments.labels, segments.categories

    embedder = None
    if segments.embedder_name:
        from assistant.llm.embedding import LlamaCppEmbedder

        embedder = LlamaCppEmbedder(threads=1)
    live_evidences = [e for e, is_live in zip(segments.evidences, live) if is_live]
    costs = measure_costs(args.model, live_evidences, embedder, log)
    held_rows = []
    if held_out.voices or held_out.recordings:
        held_rows = held_out_figures(args.model, labelled_segments(dataset, held_out, held_out_only=True), embedder)
    live_heard = [h for h, is_live in zip(segments.heard, live) if is_live]
    asr_ms = np.array([h.asr_ms for h in live_heard])
    vad_ms = np.array([h.vad_ms for h in live_heard])
    seconds = np.array([h.seconds for h in live_heard])
    extract_minutes = sum(h.asr_ms + h.vad_ms for view in (dataset.whole, dataset.live) for h in view.values()) / 60000
    results = training.results
    clip_view = {name: metrics(y[~live], r["pred"][~live]) for name, r in results.items()}
    live_results = {name: {key: (value[live] if isinstance(value, np.ndarray) else value) for key, value in r.items()}
                    for name, r in results.items()}
    live_rules = [r for r, is_live in zip(training.rules, live) if is_live]
    report = render_report(live_evidences, y[live], [c for c, v in zip(categories, live) if v], live_results, costs,
                           asr_ms, vad_ms, seconds, live_rules, args.model, segments.embedder_name,
                           time.perf_counter() - began, training.features_head, extract_minutes, dataset.asr_name,
                           dataset.speculate_after_s, clip_view, held_rows)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(report)
    log(f"wrote {args.report}")
    print(report)
    return 0


def measure_costs(model_path: Path, evidences: list[SegmentEvidence], embedder, log) -> dict[str, tuple]:
    rng = random.Random(3)
    sample = rng.sample(evidences, min(150, len(evidences)))
    deciders: dict[str, StateDecider] = {"rules only": RuleStateDecider(),
                                         "features": LearnedStateDecider(model_path=model_path)}
    if embedder is not None:
        deciders["features + SmolLM2 embedding"] = LearnedStateDecider(embedder, model_path=model_path)
        always = LearnedStateDecider(embedder, model_path=model_path)
        always.sure_query, always.sure_ignore = float("inf"), float("-inf")
        deciders["features + SmolLM2 embedding, never skipped"] = always
    costs = {}
    for name, decider in deciders.items():
        decider.decide(sample[0])
        times = []
        for evidence in sample:
            t0 = time.perf_counter()
            decider.decide(evidence)
            times.append((time.perf_counter() - t0) * 1000)
        costs[name] = (float(np.median(times)), float(np.percentile(times, 90)), float(np.max(times)))
        log(f"cost {name}: median {costs[name][0]:.2f} ms")
    return costs


def threshold_sweep(prob, y, rules, categories) -> list[str]:
    free = np.array([r is None for r in rules])
    barge = np.array([c == "query (barge-in)" for c in categories])
    negatives = free & (y == 0)
    rows = ["| threshold | barge-in query recall | not-query segments reaching the head called query |",
            "|---|---|---|"]
    for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
        recall = np.mean([(prob[i] >= t) if rules[i] is None else rules[i].token == StateToken.QUERY
                          for i in np.flatnonzero(barge)])
        rows.append(f"| {t:.2f} | {recall:.1%} | {np.mean(prob[negatives] >= t):.1%} |")
    return rows


def render_report(items, y, categories, results, costs, asr_ms, vad_ms, seconds, rules, model_path, embedder_name,
                  runtime_s, head_feat, extract_minutes, asr_backend, speculate_after_s, clip_view, held_rows) -> str:
    asr_name = {"clip-whisper": "whisper tiny.en (clip-whisper: encoder window cut to the clip, greedy",
                "faster-whisper": "whisper tiny.en (faster-whisper, greedy"}[asr_backend]
    names = list(results)
    lines = ["# State decision: query `<1>` vs ignore `<2>`", "",
             f"Measured 2026-11-22 on a 2-core x86-64 VM, no GPU (Python {platform.python_version()}), "
             "by `benchmarks/state_decision.py` on the segments `assistant train-state` heard "
             f"(this run {runtime_s / 60:.1f} min, ASR/VAD/embeddings from its cache when present). "
             "Every number below was produced by that run.", "",
             "> The assistant interrupts itself at P >= 0.7 (`state_speaking_threshold` in `assistant/config.py`) "
             "rather than at the trained while-speaking threshold below, and ignores, while it speaks, a segment whose "
             "voiced audio is on average >= 45 % like its own output (its own voice; barge-ins in the scenario "
             "library reach at most 33 %). Why: docs/benchmarks.md.", "",
             "Retraining: `assistant train-state` makes and hears the clips and writes "
             "`duplex/state/state_model.json`; "
             "`python -m duplex.state.train` retrains from the segments it heard; this report is "
             "`benchmarks/state_decision.py`, which writes no weights.", "",
             "## Method", "",
             f"Each segment goes through the real listening pipeline: {asr_name}, "
             "1 thread) and Silero VAD v6, then `duplex.state`:",
             "1. hard rules (always win): no words, or whisper's noise rule (no-speech > 0.6 and logprob < -1) "
             "with < 20 % Silero speech frames, or Silero max < 0.3 -> IGNORE; while the assistant speaks, >= 60 % "
             "of the transcript's words repeating the assistant's text in order (bigrams) -> IGNORE (echo); "
             "a short yes/no reply right after an assistant question -> QUERY; a bare control command (\"stop\", "
             "\"pause\", \"never mind\") -> QUERY; with the assistant silent, 5+ words opening as a request "
             "(\"I want to\", \"can you\", or tiny.en's \"I went to book\" for \"I want to book\") -> QUERY; "
             "with the assistant silent, a bare greeting to nobody named (\"Hello.\", \"Hi there, how are you?\"; "
             "no segment of this set is one) -> QUERY; a pure backchannel/filler -> IGNORE;",
             f"2. otherwise a logistic head (numpy, L2, Newton) on {len(FEATURE_NAMES)} features "
             f"({', '.join(FEATURE_NAMES)}), optionally concatenated with SmolLM2-135M's hidden state at the "
             "first assistant position of a ChatML prompt (llama.cpp, LAST pooling, 576 dims; VITA's "
             "\"state token as the first output token\" learned as a linear head instead of prompted);",
             "3. a threshold on P(query), stricter while the assistant speaks.", "",
             "The baseline *rules only* uses the same hard rules, then calls a segment a query when it has a "
             "question mark, starts with a question word or starts with an imperative verb.", "",
             "Two views of every clip: *whole* (the synthesised line with 0.2 s of silence on each side, or the "
             "recording's piece) and *live*: a new rendering cut the way the session cuts it, from the VAD onset "
             "(3 Silero frames >= 0.5) minus the 0.3 s pre-roll to the moment the session transcribes and decides, "
             f"{speculate_after_s * 1000:.0f} ms (`speculate_after_s`) into the last pause. The heads are trained on "
             "both views, so the trailing silence's length does not move their inputs; the thresholds and every "
             "figure below are the live view's. A clip in which the VAD never starts a segment keeps its whole "
             "length in the live view (the session would not decide on it at all).", "",
             "Evaluation: 5-fold cross-validation; every rendition of one text (all voices, noisy copies, "
             "barge-in copies) and all pieces of one recording fall in the same fold. The heads are trained "
             "on the segments no hard rule decides (bare control commands excluded from training: they are the "
             "rule's job, and a misheard one would teach the head that any garbled word is a query). "
             "L2 strength and both thresholds are chosen on the "
             "out-of-fold predictions (idle: best F1; speaking: lowest threshold >= idle, at most 0.9, where <= 5 % of "
             "not-query segments reaching the head would pass), so the figures are slightly optimistic.", "",
             "## Data", "", "| category | label | segments |", "|---|---|---|"]
    for category in sorted(set(categories), key=lambda c: (-int(y[categories.index(c)]), c)):
        count = sum(1 for c in categories if c == category)
        lines.append(f"| {category} | {'QUERY' if y[categories.index(category)] else 'IGNORE'} | {count} |")
    lines += ["", f"{len(items)} segments; {len(corpus.QUERIES)} query texts, "
              f"{len(corpus.OTHER_ADDRESSED)} declarative / other-addressed texts, "
              f"{len(corpus.BACKCHANNELS)} backchannels, {len(corpus.ANSWERS)} assistant answers (echo), "
              f"{len(corpus.REPLIES)} short replies, {len(corpus.CONTROLS)} bare control commands. "
              "Voices: Piper en_US-joe-medium, espeak-ng en-us and en-gb+f3. "
              "Noise: the 13 files of noise/ (dishes, tap, cat, exercise bike, room tone, music, birdsong, "
              "whale song), cut in 1-4 s pieces; noisy copies mix the same noises at 5-15 dB SNR. Read speech: "
              "speech/ and noisy_speech/ (LibriSpeech, LJ Speech, CMU ARCTIC, VCTK, JFK, ...), labelled "
              "IGNORE because read sentences are not addressed to the assistant - a judgement: a few of them "
              "(\"Please call Stella.\") are commands in form.", "",
               "## Results (out-of-fold, live view)", "",
              "| method | P query | R query | P ignore | R ignore | accuracy | accuracy, whole view |",
              "|---|---|---|---|---|---|---|"]
    for name in names:
        m = metrics(y, results[name]["pred"])
        lines.append(f"| {name} | {m['P query']:.3f} | {m['R query']:.3f} | {m['P ignore']:.3f} | "
                     f"{m['R ignore']:.3f} | {m['accuracy']:.3f} | {clip_view[name]['accuracy']:.3f} |")
    lines += ["", "False interruptions (IGNORE segments decided QUERY) and query recall, per category:", "",
              "| category | label | n | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
    for category in sorted(set(categories), key=lambda c: (-int(y[categories.index(c)]), c)):
        mask = np.array([c == category for c in categories])
        label = int(y[mask][0])
        cells = []
        for name in names:
            pred = results[name]["pred"][mask]
            cells.append(f"{np.mean(pred == 1):.1%}" if label == 0 else f"recall {np.mean(pred == 1):.1%}")
        lines.append(f"| {category} | {'QUERY' if label else 'IGNORE'} | {int(mask.sum())} | "
                     + " | ".join(cells) + " |")
    decided = sum(r is not None for r in rules)
    lines += ["", f"Hard rules decided {decided} of {len(items)} segments; the rest went to the head.", "",
              f"Chosen settings (by `duplex.state.train`; the measured weights file, `{model_path.name}`, is "
              f"{model_path.stat().st_size / 1024:.0f} KB):", ""]
    for name in names[1:]:
        r = results[name]
        extra = f", embedding penalty x{r['embedding_penalty']}" if "embedding_penalty" in r else ""
        lines.append(f"- {name}: L2 {r['l2']}{extra}, threshold {r['threshold']}, "
                     f"while speaking {r['speaking_threshold']}")
    if embedder_name:
        lines.append(f"- embedder: `{embedder_name}`")
    else:
        lines.append("- no embedder was available (llama-cpp-python missing): only the features variant was trained")
    for name in names[1:]:
        lines += ["", f"Speaking threshold sweep, {name} (out-of-fold; the barge-in queries are the same audio as "
                  "idle queries, heard while the assistant says an unrelated answer):", ""]
        lines += threshold_sweep(results[name]["oof"], y, rules, categories)
    for name in names:
        if "sure" in results[name]:
            sure_query, sure_ignore, sure_rows = results[name]["sure"]
            lines += ["", f"Skipping the embedding when the features head is sure ({name}, out-of-fold, segments "
                      "no hard rule decides; shipped: "
                      + (f"P >= {sure_query} or <= {sure_ignore}" if sure_query <= 1 else "never") + "):", ""]
            lines += sure_rows
    if held_rows:
        lines += ["", "## Held out of training (live view)", "",
                  "The model file's own decisions on the voices and recordings it was trained without:", ""]
        lines += held_rows
    lines += ["", "## Cost per decision", "",
              "`decide()` on 150 random live-view segments whose ASR and VAD had already run (the listener runs "
              "those anyway), one thread. The embedding variant skips its LLM pass where a hard rule decides or "
              "the features head is sure (above); the last row always runs it:", "",
              "| method | median ms | p90 ms | max ms |", "|---|---|---|---|"]
    for name, (med, p90, mx) in costs.items():
        lines.append(f"| {name} | {med:.2f} | {p90:.2f} | {mx:.2f} |")
    lines += ["", f"For scale, upstream per segment (median over the {len(items)} live-view segments, mean length "
              f"{np.mean(seconds):.1f} s): {asr_backend} tiny.en {np.median(asr_ms):.0f} ms (1 thread), "
              f"Silero VAD {np.median(vad_ms):.1f} ms. ASR + VAD over the distinct clips, both views, took "
              f"{extract_minutes:.1f} min in all (cached afterwards, so re-runs only retrain). "
              "The embedding head adds one SmolLM2 forward pass over the "
              "transcript (the prompt prefix stays in the KV cache).", "",
              "## Largest feature weights (features-only head, standardised inputs)", ""]
    order = np.argsort(-np.abs(head_feat.weights))
    lines.append(", ".join(f"{FEATURE_NAMES[i]} {head_feat.weights[i]:+.2f}" for i in order[:12]))
    lines += ["", "## Limits", "",
              "- Queries, declaratives and backchannels are synthetic (Piper + espeak-ng); whisper tiny.en "
              "mishears espeak far more than real voices, which lowers recall on those renditions.",
              "- Talk addressed to another person is largely indistinguishable from a query by words alone; "
              "the per-category table shows how much of it still gets through. Speaker identity, loudness "
              "relative to the enrolled user, gaze, or a wake word are the cues that would help; none is used here.",
              "- Echo is simulated (attenuated Piper audio + light noise, assistant_text known); real acoustic "
              "echo after an echo canceller may be more garbled. The echo rule needs the assistant_text the "
              "duplex core already has.",
              "- No coughs, typing, TV or babble recordings exist in the shared data; those categories are untested.",
              "- Read speech labelled IGNORE is a judgement (see Data).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
