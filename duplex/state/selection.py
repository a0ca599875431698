"""Choosing the state head's settings on out-of-fold predictions: the folds, the thresholds, and the bounds
where the features head alone is sure enough to skip the embedding. Only training segments come in here."""

from __future__ import annotations

import hashlib

import numpy as np

from duplex.decision import StateToken
from duplex.state.head import fit_logistic
from duplex.state.rules import RuleVerdict


def fold_of(group: str, folds: int = 5) -> int:
    return int(hashlib.md5(group.encode()).hexdigest(), 16) % folds


def metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    tp = int(np.sum((pred == 1) & (y == 1)))
    fp = int(np.sum((pred == 1) & (y == 0)))
    fn = int(np.sum((pred == 0) & (y == 1)))
    tn = int(np.sum((pred == 0) & (y == 0)))
    safe = lambda a, b: a / b if b else float("nan")  # noqa: E731
    return {"P query": safe(tp, tp + fp), "R query": safe(tp, tp + fn),
            "P ignore": safe(tn, tn + fn), "R ignore": safe(tn, tn + fp), "accuracy": safe(tp + tn, len(y))}


def decide_with(prob: np.ndarray, rule: list[RuleVerdict | None], speaking: np.ndarray, threshold: float,
                speaking_threshold: float) -> np.ndarray:
    pred = np.where(speaking, prob >= speaking_threshold, prob >= threshold).astype(int)
    for i, verdict in enumerate(rule):
        if verdict is not None:
            pred[i] = int(verdict.token == StateToken.QUERY)
    return pred


def cross_validate(x: np.ndarray, y: np.ndarray, folds: np.ndarray, train_mask: np.ndarray, l2: float,
                   penalty_scale: np.ndarray | None) -> np.ndarray:
    oof = np.zeros(len(y))
    for k in range(folds.max() + 1):
        train = (folds != k) & train_mask
        head = fit_logistic(x[train], y[train], l2=l2, penalty_scale=penalty_scale)
        test = folds == k
        oof[test] = head.probability(x[test])
    return oof


def pick_thresholds(prob, y, rule, speaking) -> tuple[float, float]:
    free = np.array([r is None for r in rule])
    grid = np.round(np.arange(0.2, 0.951, 0.05), 2)
    best, best_f1 = 0.5, -1.0
    idle = free & ~speaking
    for t in grid:
        pred = prob[idle] >= t
        tp = np.sum(pred & (y[idle] == 1))
        fp = np.sum(pred & (y[idle] == 0))
        fn = np.sum(~pred & (y[idle] == 1))
        f1 = 2 * tp / max(1, 2 * tp + fp + fn)
        if f1 > best_f1 + 1e-9:
            best, best_f1 = float(t), f1
    # while speaking a false barge-in cuts the assistant off: the lowest threshold (>= idle, <= 0.9) at which
    # at most 5 % of the not-query segments that reach the head would interrupt
    negatives = free & (y == 0)
    speaking_t = best
    for t in grid[(grid >= best) & (grid <= 0.9)]:
        speaking_t = float(t)
        if np.mean(prob[negatives] >= t) <= SPEAKING_FALSE_RATE:
            break
    return best, speaking_t


SPEAKING_FALSE_RATE = 0.05

def sure_bounds(prob_feat, pred_both, y, rules, speaking, categories) -> tuple[list[str], tuple[float, float]]:
    """When may the embedding be skipped? A segment whose features-only P(query) is >= ``query`` or <= ``ignore``
    is decided on the features alone (the embedding costs one LLM pass, on the path to every answer). Picks the
    pair that skips the most segments while costing at most 0.5 % accuracy and no barge-in recall, and letting
    no more not-query segments through while the assistant speaks."""
    free = np.array([r is None for r in rules])
    barge = np.array([c == "query (barge-in)" for c in categories])
    speaking_negative = speaking & (y == 0)

    def figures(pred):
        return (metrics(y, pred)["accuracy"], float(np.mean(pred[barge] == 1)),
                float(np.mean(pred[speaking_negative] == 1)))

    base = figures(pred_both)
    rows = ["| features P >= (query) | features P <= (ignore) | decided without the embedding | accuracy | "
            "barge-in recall | not-query while speaking called query |", "|---|---|---|---|---|---|",
            f"| (never) | (never) | 0.0% | {base[0]:.3f} | {base[1]:.1%} | {base[2]:.1%} |"]
    chosen, most = (1.01, -0.01), 0.0
    for high in (0.9, 0.95, 0.98, 0.99):
        for low in (0.01, 0.02, 0.05, 0.1):
            pred = pred_both.copy()
            early_query, early_ignore = free & (prob_feat >= high), free & (prob_feat <= low)
            pred[early_query], pred[early_ignore] = 1, 0
            share = float(np.mean((early_query | early_ignore)[free]))
            accuracy, recall, false_rate = figures(pred)
            rows.append(f"| {high} | {low} | {share:.1%} | {accuracy:.3f} | {recall:.1%} | {false_rate:.1%} |")
            if accuracy >= base[0] - 0.005 and recall >= base[1] and false_rate <= base[2] and share > most:
                chosen, most = (high, low), share
    return rows, chosen
