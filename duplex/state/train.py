"""Train the state decision's heads and write the weights file that ``LearnedStateDecider`` loads.

    python -m duplex.state.train [--cache DIR] [--out FILE] [--hold-out-voice VOICE] ...

retrains from the segments a run of ``assistant train-state`` heard (``DIR/segments.pkl``); that command
makes and hears the clips first (TTS voices, ASR, VAD and the LLM embedder are the assistant's to load).

The heads learn from the segments no hard rule decides (bare control commands left out: they are the
rule's job, and a misheard one would teach the head that any garbled word is a query). Cross-validation
keeps every rendition of one text (all voices, noisy and barge-in copies) and all pieces of one recording
in one fold; the L2 strength, both thresholds and the embedding-skip bounds are chosen on the out-of-fold
predictions of the training segments. Held-out voices or recordings (``--hold-out-*``) take no part in any
of it, so ``benchmarks/state_decision.py`` can evaluate the written file on them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from duplex.decision import StateToken
from duplex.state import corpus
from duplex.state.dataset import HeardDataset, HeldOut, LabelledSegments, labelled_segments
from duplex.state.decider import DEFAULT_MODEL_PATH
from duplex.state.features import FEATURE_NAMES, segment_features
from duplex.state.head import LogisticHead, fit_logistic
from duplex.state.hearing import DATASET_FILE, Log, load_cache
from duplex.state.rules import RuleVerdict, hard_rule, rules_only_query
from duplex.state.selection import cross_validate, decide_with, fold_of, metrics, pick_thresholds, sure_bounds

DEFAULT_CACHE_DIR = Path("/tmp/state-decision-cache")

# Silero is surer of the synthetic voices (max ~0.99) than of the real recordings, which are all labelled IGNORE
# here: left free, a head learns "a real voice is not a query" from the VAD's confidence. In a replay, a Piper
# "What is the capital of Italy?" with VAD max 0.91 scored P=0.30. These stay in the hard rules (noise), and
# are penalised to ~0 weight in the heads (out-of-fold accuracy 0.884 -> 0.892 when tried, 2026-11-22).
UNUSED_BY_THE_HEAD = ("vad_fraction", "vad_max", "vad_mean")
UNUSED_PENALTY = 1e4
FEATURES_L2_GRID = (0.3, 1.0, 3.0, 10.0)
EMBEDDING_L2_GRID = (1.0, 3.0)
EMBEDDING_PENALTY_GRID = (10.0, 30.0, 100.0)  # the embedding columns' L2, as a multiple of the features'


@dataclass(frozen=True)
class TrainingOptions:
    speculate_after_s: float  # where the segments were cut: recorded in the file, checked by the tests
    assistant_speaking_threshold: float = 0.7  # the assistant's barge-in bar (state_speaking_threshold)
    folds: int = 5
    held_out: HeldOut = field(default_factory=HeldOut)


@dataclass
class Training:
    model: dict  # the weights file's content
    results: dict[str, dict]  # per method: "pred" (all segments), and for the heads "oof", "l2", thresholds
    rules: list[RuleVerdict | None]
    features_head: LogisticHead


def train(segments: LabelledSegments, options: TrainingOptions, log: Log = lambda message: None) -> Training:
    """Choose the settings out of fold and fit each head on all ``segments`` (training segments only)."""
    live = segments.live
    feats = [segment_features(e) for e in segments.evidences]
    rules = [hard_rule(e, f) for e, f in zip(segments.evidences, feats)]
    x_feat = np.stack([f.values for f in feats])
    y = segments.labels
    speaking = np.array([e.assistant_speaking for e in segments.evidences])
    folds = np.array([fold_of(g, options.folds) for g in segments.groups])
    categories = segments.categories
    free = np.array([r is None for r in rules])
    trainable = free & np.array([not c.startswith("control") for c in categories])
    live_rules = [r for r, is_live in zip(rules, live) if is_live]
    negatives_at_head = free & (y == 0) & live
    shipped_speaking = options.assistant_speaking_threshold

    rules_only = [int(r.token == StateToken.QUERY) if r is not None else int(rules_only_query(f))
                  for r, f in zip(rules, feats)]
    results: dict[str, dict] = {"rules only": {"pred": np.array(rules_only)}}

    def search(x: np.ndarray, grid, label: str):
        """The (l2, per-column penalty scale) setting with the best F1 on queries, out of fold; among those
        within 0.005 of it (differences that size are noise here), the one letting the fewest not-query
        segments through at the assistant's while-speaking threshold (a false barge-in is the costlier error)."""
        tried = []
        for l2, scale, name in grid:
            oof = cross_validate(x, y, folds, trainable, l2, scale)
            t, ts = pick_thresholds(oof[live], y[live], live_rules, speaking[live])
            pred = decide_with(oof, rules, speaking, t, ts)
            score = metrics(y[live], pred[live])
            f1 = 2 * score["P query"] * score["R query"] / (score["P query"] + score["R query"])
            passing = float(np.mean(oof[negatives_at_head] >= shipped_speaking))
            log(f"{label} {name}: F1 query {f1:.3f} (thresholds {t}/{ts}), not-query passing at "
                f"{shipped_speaking}: {passing:.1%}")
            tried.append((f1, passing, (l2, scale), oof, t, ts, pred))
        top = max(f1 for f1, *_ in tried)
        chosen = min((entry for entry in tried if entry[0] >= top - 0.005), key=lambda entry: entry[1])
        return (chosen[0], *chosen[2:])

    # features only; the VAD's confidence is kept out of the heads (see UNUSED_BY_THE_HEAD)
    feature_scale = np.array([UNUSED_PENALTY if name in UNUSED_BY_THE_HEAD else 1.0 for name in FEATURE_NAMES])
    best = search(x_feat, [(l2, feature_scale, f"l2={l2}") for l2 in FEATURES_L2_GRID], "features")
    _, (l2_feat, _), oof_feat, t_feat, ts_feat, pred_feat = best
    results["features"] = {"pred": pred_feat, "oof": oof_feat, "l2": l2_feat, "threshold": t_feat,
                           "speaking_threshold": ts_feat}
    head_feat = fit_logistic(x_feat[trainable], y[trainable], l2=l2_feat, penalty_scale=feature_scale)
    variants = {"features": {"head": head_feat.to_json(), "threshold": t_feat, "speaking_threshold": ts_feat,
                             "l2": l2_feat}}

    if segments.embeddings is not None:
        dim = segments.embeddings.shape[1]
        x_both = np.hstack([x_feat, segments.embeddings])
        grid = [(l2, np.concatenate([feature_scale, np.full(dim, emb_scale)]), f"l2={l2} x{emb_scale} on embedding")
                for l2 in EMBEDDING_L2_GRID for emb_scale in EMBEDDING_PENALTY_GRID]
        best = search(x_both, grid, "features+embedding")
        _, (l2_both, scale_vector), oof_both, t_both, ts_both, pred_both = best
        scale_both = float(scale_vector[-1])
        head_both = fit_logistic(x_both[trainable], y[trainable], l2=l2_both, penalty_scale=scale_vector)
        sure_rows, (sure_query, sure_ignore) = sure_bounds(oof_feat[live], pred_both[live], y[live], live_rules,
                                                           speaking[live], [c for c, v in zip(categories, live) if v])
        results["features + SmolLM2 embedding"] = {
            "pred": pred_both, "oof": oof_both, "l2": l2_both, "embedding_penalty": scale_both, "threshold": t_both,
            "speaking_threshold": ts_both, "sure": (sure_query, sure_ignore, sure_rows)}
        variants["features+embedding"] = {"head": head_both.to_json(digits=4), "threshold": t_both,
                                          "speaking_threshold": ts_both, "l2": l2_both,
                                          "embedding_penalty": scale_both, "embedder": segments.embedder_name,
                                          "features_sure": {"query": sure_query, "ignore": sure_ignore}}

    model = {"version": 1, "trained": date.today().isoformat(), "feature_names": list(FEATURE_NAMES),
             "trained_on": f"{int(live.sum())} segments, each whole and cut as the session hears it "
                           f"{options.speculate_after_s * 1000:.0f} ms into the pause, duplex.state.train",
             "speculate_after_s": options.speculate_after_s, "variants": variants}
    held_out = options.held_out
    if held_out.voices or held_out.recordings:
        model["held_out"] = {"voices": sorted(held_out.voices), "recordings": list(held_out.recordings)}
    return Training(model, results, rules, head_feat)


def write_model(model: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model, separators=(",", ":")) + "\n")


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of training proper (``assistant train-state`` adds those of hearing)."""
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_PATH,
                        help="the weights file to write (default: the one shipped in duplex/state/)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE_DIR,
                        help=f"where the heard segments are kept ({DATASET_FILE} and per-clip caches; "
                             "default %(default)s)")
    parser.add_argument("--hold-out-voice", action="append", default=[], choices=corpus.VOICES, metavar="VOICE",
                        help="leave this voice's clips out of training (repeatable; one of "
                             f"{', '.join(corpus.VOICES)})")
    parser.add_argument("--hold-out-recordings", action="append", default=[], metavar="PREFIX",
                        help="leave out the clips made from recordings under this path of the recordings folder, "
                             "e.g. speech/vctk (repeatable)")
    parser.add_argument("--folds", type=int, default=TrainingOptions.folds,
                        help="cross-validation folds (default %(default)s)")
    parser.add_argument("--assistant-speaking-threshold", type=float,
                        default=TrainingOptions.assistant_speaking_threshold,
                        help="the assistant's barge-in bar, which breaks ties between settings (default %(default)s, "
                             "state_speaking_threshold in assistant/config.py)")
    parser.add_argument("--no-embedding", action="store_true", help="train the features-only head alone")


def held_out_of(args: argparse.Namespace) -> HeldOut:
    return HeldOut(frozenset(args.hold_out_voice), tuple(args.hold_out_recordings))


def run(args: argparse.Namespace, dataset: HeardDataset, log: Log) -> Training:
    """Train on ``dataset`` (less what ``args`` holds out) and write ``args.out``."""
    segments = labelled_segments(dataset, held_out_of(args))
    if args.no_embedding:
        segments.embeddings, segments.embedder_name = None, None
    if not segments.evidences:
        raise ValueError("every segment is held out: nothing to train on")
    log(f"training on {int(segments.live.sum())} clips, both views"
        + (f", with the {segments.embedder_name} embedding" if segments.embedder_name else ", features only"))
    options = TrainingOptions(dataset.speculate_after_s, args.assistant_speaking_threshold, args.folds,
                              held_out_of(args))
    training = train(segments, options, log)
    write_model(training.model, args.out)
    log(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB)")
    return training


def stderr_log() -> Log:
    began = time.perf_counter()
    return lambda message: print(f"[{time.perf_counter() - began:6.0f} s] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m duplex.state.train", description=__doc__.split("\n\n")[0])
    add_training_arguments(parser)
    args = parser.parse_args(argv)
    path = args.cache / DATASET_FILE
    dataset = load_cache(path)
    if not isinstance(dataset, HeardDataset):
        parser.error(f"no heard segments in {path}: run `assistant train-state --cache {args.cache}` first "
                     "(it makes and hears the clips, then trains)")
    run(args, dataset, stderr_log())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
