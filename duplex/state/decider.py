"""The state deciders: hard rules, then a trained logistic head (``LearnedStateDecider``) or the hand-written
baseline (``RuleStateDecider``).

The learned head is VITA's "state token as the first output token", learned instead of prompted: a logistic
head on the segment's features, optionally with the LLM's hidden state at the position where its first
output token would be produced (``TextEmbedder``; SmolLM2 through llama.cpp in ``assistant.llm.embedding``).
A zero-shot prompt to a 135M model calls everything a query. Where the features head alone is sure (P
beyond the ``features_sure`` bounds chosen in training), its verdict stands and the embedding's LLM pass,
~0.1 s on the way to every answer, is skipped.

The trained weights ship in ``state_model.json`` beside this file (written by ``duplex.state.train``), with
one variant for features only and one for features + the embedding; the decider picks the one that fits
the embedder it is given and falls back to features only when none is given or it does not match.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np

from duplex.decision import SegmentEvidence, StateDecision, StateToken
from duplex.models import TextEmbedder
from duplex.state.features import FEATURE_NAMES, SegmentFeatures, segment_features
from duplex.state.head import LogisticHead
from duplex.state.rules import hard_rule, rules_only_query

DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "state_model.json"


def read_model(path: Path) -> dict:
    """A weights file as ``duplex.state.train`` writes it; refused when trained on other features."""
    with open(path) as handle:
        data = json.load(handle)
    if tuple(data["feature_names"]) != FEATURE_NAMES:
        raise ValueError(f"{path}: trained on other features ({len(data['feature_names'])}); retrain it with "
                         "`assistant train-state`")
    return data


class LearnedStateDecider:
    """Hard rules, then a logistic head on segment features (+ the LLM's embedding when available).

    - ``model_path``: the weights JSON (default: ``state_model.json`` shipped beside this module).
    - ``embedder``: a ``TextEmbedder`` whose ``name`` matches the shipped embedding head, or ``None``.
      A missing or non-matching embedder falls back to the features-only head (with a warning when one
      was given but does not match).
    - ``threshold`` / ``speaking_threshold``: P(query) needed to call a query while the assistant is silent /
      while it speaks (stricter: a false barge-in cuts the assistant off). ``None`` = the trained defaults.
    """

    def __init__(self, embedder: TextEmbedder | None = None, model_path: str | Path | None = None,
                 threshold: float | None = None, speaking_threshold: float | None = None,
                 min_speech_fraction: float = 0.2, echo_threshold: float = 0.6,
                 replies_after_question: bool = True, echo_like_share: float = 0.4,
                 echo_like_threshold: float = 0.9, echo_dominant_share: float = 0.45) -> None:
        path = Path(model_path) if model_path else DEFAULT_MODEL_PATH
        data = read_model(path)
        self.model_path = path
        self.embedder = None
        variant = data["variants"]["features"]
        if embedder is not None:
            emb_variant = data["variants"].get("features+embedding")
            wanted = emb_variant and emb_variant.get("embedder")
            if emb_variant and getattr(embedder, "name", None) == wanted:
                self.embedder, variant = embedder, emb_variant
            else:
                warnings.warn(f"state head has no weights for embedder {getattr(embedder, 'name', embedder)!r} "
                              f"(trained for {wanted!r}); deciding on features only", stacklevel=2)
        self.variant = "features+embedding" if self.embedder is not None else "features"
        self.head = LogisticHead.from_json(variant["head"])
        # The embedding costs an LLM pass on the way to every answer; where the features-only head is this
        # sure, its verdict stands without it (bounds chosen in training; absent: always embed).
        self.features_head = LogisticHead.from_json(data["variants"]["features"]["head"])
        sure = variant.get("features_sure") or {}
        self.sure_query = float(sure.get("query", math.inf))
        self.sure_ignore = float(sure.get("ignore", -math.inf))
        self.threshold = float(threshold if threshold is not None else variant["threshold"])
        self.speaking_threshold = float(speaking_threshold if speaking_threshold is not None
                                        else variant["speaking_threshold"])
        self.min_speech_fraction = min_speech_fraction
        self.echo_threshold = echo_threshold
        self.replies_after_question = replies_after_question
        # Over open speakers, a fragment of the assistant's own voice can come back misheard as new words
        # ("100 foot."): when much of a segment's sound matched what was playing, ask for more certainty.
        self.echo_like_share = echo_like_share
        self.echo_like_threshold = echo_like_threshold
        self.echo_dominant_share = echo_dominant_share

    def query_probability(self, evidence: SegmentEvidence, features: SegmentFeatures | None = None) -> float:
        """P(query) from the full head (with the embedding when there is one)."""
        features = features or segment_features(evidence)
        row = features.values
        if self.embedder is not None:
            vector = np.asarray(self.embedder.embed(features.text), dtype=np.float64).reshape(-1)
            row = np.concatenate([row, vector])
        return float(self.head.probability(row[None, :])[0])

    def _features_probability(self, features: SegmentFeatures) -> float:
        return float(self.features_head.probability(features.values[None, :])[0])

    def _probability(self, evidence: SegmentEvidence, features: SegmentFeatures, limit: float) -> tuple[float, str]:
        """P(query) and the head that gave it: the features head alone when it is sure, else the full head."""
        quick = self._features_probability(features)
        if self.embedder is None:  # the full head is the features head
            return quick, self.variant
        if quick >= max(self.sure_query, limit) or quick <= self.sure_ignore:
            return quick, "features, sure without the embedding"
        return self.query_probability(evidence, features), self.variant

    def decide(self, evidence: SegmentEvidence) -> StateDecision:
        features = segment_features(evidence)
        rule = hard_rule(evidence, features, min_speech_fraction=self.min_speech_fraction,
                         echo_threshold=self.echo_threshold, replies_after_question=self.replies_after_question)
        if rule is not None and rule.token == StateToken.IGNORE:
            return StateDecision(StateToken.IGNORE, 0.0, rule.reason)
        if evidence.assistant_speaking and evidence.echo_share >= self.echo_dominant_share:
            # Mostly the assistant's own voice coming back: whisper makes words of it ("in the 100th")
            # that the head may score as a query. Real barge-ins in the scenario library stay <= 0.33.
            return StateDecision(StateToken.IGNORE, 0.0, f"own voice: {evidence.echo_share:.0%} of the voiced "
                                                         "audio is like the assistant's own output")
        if rule is not None:  # a rule's QUERY: the probability is only reported, so the cheap head's will do
            return StateDecision(rule.token, max(self._features_probability(features), 0.5), rule.reason)
        limit = self.speaking_threshold if evidence.assistant_speaking else self.threshold
        when = "while speaking" if evidence.assistant_speaking else "idle"
        if evidence.assistant_speaking and evidence.echo_share >= self.echo_like_share:
            limit = max(limit, self.echo_like_threshold)
            when = f"while speaking, {evidence.echo_share:.0%} of it like the assistant's own voice"
        probability, head = self._probability(evidence, features, limit)
        token = StateToken.QUERY if probability >= limit else StateToken.IGNORE
        verdict = "query" if token == StateToken.QUERY else "not a query"
        return StateDecision(token, probability, f"{verdict}: P={probability:.2f} vs {limit:.2f} {when} "
                                                 f"({head})")


class RuleStateDecider:
    """No trained weights: the hard rules, then "question or command = query". The baseline of the benchmark."""

    def decide(self, evidence: SegmentEvidence) -> StateDecision:
        features = segment_features(evidence)
        rule = hard_rule(evidence, features)
        if rule is not None:
            return StateDecision(rule.token, 1.0 if rule.token == StateToken.QUERY else 0.0, rule.reason)
        if rules_only_query(features):
            return StateDecision(StateToken.QUERY, 1.0, "question or command")
        return StateDecision(StateToken.IGNORE, 0.0, "neither a question nor a command")
