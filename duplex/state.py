"""The listener's state decision: is this speech segment a query for the assistant (``<1>``) or not (``<2>``)?

VITA lets the LLM emit a state token as the first output token for every segment it hears. Here the same
decision is a small logistic head trained on two kinds of evidence:

- acoustic and text features of the segment (whisper's confidence, the segment's length and speaking
  rate, question words, imperative openings, backchannels, overlap with what the assistant itself is
  saying, whether the assistant has just asked something), computed by ``segment_features``; Silero's
  figures are computed too, for the hard rules, but trained out of the heads (they told the synthetic
  training voices from the real recordings);
- optionally the LLM's hidden state at the position where its first output token would be produced
  (``TextEmbedder``; SmolLM2 through llama.cpp in ``assistant.llm.embedding``). A linear head on that
  state is the "state token as the first output token" of VITA, learned instead of prompted: a zero-shot
  prompt to a 135M model calls everything a query.

Hard rules come first and always hold: an empty or noise-looking transcript with little VAD speech is
ignored, so is a transcript that is mostly the assistant's own current words (echo) and a pure
backchannel ("uh-huh", "yeah", "I see"). Two rules say QUERY: a short yes/no reply right after the
assistant asked a question (a reply, not a backchannel), and a bare control command ("stop", "pause",
"never mind"), which a barge-in must never lose; and with the assistant silent, a request phrased as a
statement ("I want to book a table for two").

Where the features head alone is sure (P beyond the ``features_sure`` bounds the benchmark picked), its
verdict stands and the embedding's LLM pass, ~0.1 s on the way to every answer, is skipped.

The trained weights ship in ``duplex/state_model.json`` (made by ``benchmarks/state_decision.py``), with
one variant for features only and one for features + the embedding; the decider picks the one that fits
the embedder it is given and falls back to features only when none is given or it does not match.
"""

from __future__ import annotations

import json
import math
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from duplex.decision import SegmentEvidence, StateDecision, StateToken
from duplex.models import TextEmbedder

DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "state_model.json"


# --- lexicons -------------------------------------------------------------------------------------------

QUESTION_WORDS = frozenset(
    "what whats what's who whos who's whom whose where wheres where's when whens why how hows how's which "
    "is isnt are arent am was were can cant could couldnt would wouldnt will wont shall should shouldnt "
    "do dont does doesnt did didnt may might have has hadnt".split())
IMPERATIVE_VERBS = frozenset(
    "set tell play turn call remind open show give find read stop start add send check search look "
    "put make take switch pause resume skip cancel repeat explain describe translate define spell "
    "calculate convert list name help let lets go navigate book order schedule text email message "
    "increase decrease lower raise mute unmute dim brighten wake note write save delete remove record "
    "count say sing recommend suggest compare summarize summarise keep move change create update "
    "get buy pick choose answer continue try bring use shuffle".split())
FILLERS = frozenset("uh um umm uhm er erm ah ahh oh ooh hm hmm hmmm mm mmm mhm huh eh".split())
# whole-utterance backchannels (normalised: lower case, letters/digits/apostrophes, single spaces)
BACKCHANNELS = frozenset([
    "uh huh", "uhhuh", "uh-huh", "mm hmm", "mmhmm", "mhm", "mm hm", "hmm", "hm", "mm", "mmm", "yeah", "yea",
    "yep", "yup", "yes", "right", "okay", "ok", "o k", "i see", "sure", "got it", "cool", "wow", "oh",
    "ah", "oh okay", "oh ok", "oh i see", "alright", "all right", "exactly", "true", "nice", "great",
    "good", "oh wow", "i know", "that's right", "thats right", "makes sense", "that makes sense",
    "interesting", "really", "oh really", "no way", "oh yeah", "yeah yeah", "right right", "okay okay",
    "uh huh uh huh", "mm hmm mm hmm", "indeed", "fair enough", "gotcha", "i got it", "oh nice", "perfect",
    "awesome", "fine", "thank you", "thanks", "ok thanks", "okay thanks", "okay thank you", "yeah right",
    "right okay", "okay right", "yeah okay", "okay yeah", "uh", "um", "oh right", "ah okay", "ah i see",
    "no", "nope", "yes yes", "sure sure", "of course", "absolutely", "definitely", "totally", "mm okay",
])
# short replies that answer a yes/no question from the assistant
REPLIES = frozenset([
    "yes", "yeah", "yep", "yup", "sure", "okay", "ok", "no", "nope", "yes please", "no thanks",
    "no thank you", "yes thank you", "please", "please do", "go ahead", "of course", "absolutely",
    "definitely", "not now", "not really", "alright", "all right", "sure thing", "do it", "yeah sure",
    "sure go ahead", "yes do", "no don't", "no dont",
])
# Statements that are requests when nobody else is being talked to.
REQUEST_OPENING = re.compile(r"^(i want to|i wanna|i would like|i'd like|id like|i need you to|i need to know|"
                             r"can you|could you|would you|will you|please|help me|let me know|remind me)\b")
# whisper tiny.en often hears "I want to book..." as "I went to book...": "went to" + a request verb counts too
MISHEARD_REQUEST_OPENING = re.compile(r"^i went to (\w+)\b")
# The whole utterance greets nobody by name: "Hello.", "Hi there, how are you?", "Good morning." Said to a
# silent assistant it opens a conversation ("Hey Mike, how's it going?" names someone else: the head decides).
GREETING = re.compile(r"^(?=.)((hi|hello|hey|hiya|howdy|good (morning|afternoon|evening))( there| assistant| again)?)?"
                      r"( ?(how are you( doing)?( today)?|how's it going|hows it going|how are things))?$")

# The controls that ask only for silence: they stop the answer and start no new one (answering "Stop."
# would be talking again; a question said right after it is its own turn).
SILENCE_COMMANDS = frozenset([
    "stop", "stop it", "stop talking", "stop please", "please stop", "pause", "cancel", "be quiet", "quiet",
    "shut up", "never mind", "nevermind", "that's enough", "thats enough", "enough",
])
# one-word/two-word controls that always address the assistant (a barge-in "stop" must never be ignored)
CONTROL_COMMANDS = SILENCE_COMMANDS | frozenset([
    "skip", "next", "louder", "quieter", "volume up", "volume down", "repeat", "repeat that", "say that again",
    "go on", "continue",
])
VOCATIVES = frozenset(
    "honey mom mommy mum dad daddy babe baby sweetie sweetheart darling dear guys kids buddy dude man "
    "bro sis grandma grandpa son kiddo love folks everyone everybody".split())
FIRST_PERSON = frozenset("i i'm im i'll ill i've ive i'd id we we're were we'll my our me".split())


def normalise(text: str) -> str:
    text = text.lower().replace("-", " ").replace("’", "'")
    return " ".join(re.findall(r"[a-z0-9']+", text)).replace(" '", " ").strip("' ")


def asks_for_silence(text: str) -> bool:
    return normalise(text) in SILENCE_COMMANDS


def words_of(text: str) -> list[str]:
    return [w.strip("'") for w in normalise(text).split() if w.strip("'")]


def is_backchannel(text: str) -> bool:
    """The whole utterance is a backchannel or filler ("uh-huh", "yeah, okay", "mm", "I see")."""
    norm = normalise(text)
    if not norm:
        return False
    if norm in BACKCHANNELS:
        return True
    # "yeah, yeah, right" / "oh, okay" : every comma-separated piece is a backchannel
    pieces = [normalise(p) for p in re.split(r"[,.!?;]+", text) if normalise(p)]
    return bool(pieces) and all(p in BACKCHANNELS or all(w in FILLERS for w in p.split()) for p in pieces)


def is_filler_only(text: str) -> bool:
    words = words_of(text)
    return bool(words) and all(w in FILLERS for w in words)


def is_short_reply(text: str) -> bool:
    return normalise(text) in REPLIES


def echo_overlap(transcript: str, assistant_text: str) -> float:
    """Share of the transcript's words that repeat the assistant's text in order (bigram matches).

    A one-word transcript counts as covered when the word occurs in the assistant's text. Plain word
    overlap would call "what is the capital of Spain?" an echo of "The capital of France is Paris";
    bigrams need the same words in the same order.
    """
    heard, said = words_of(transcript), words_of(assistant_text)
    if not heard or not said:
        return 0.0
    if len(heard) == 1:
        return 1.0 if heard[0] in set(said) else 0.0
    said_bigrams = set(zip(said, said[1:]))
    covered = [False] * len(heard)
    for i, pair in enumerate(zip(heard, heard[1:])):
        if pair in said_bigrams:
            covered[i] = covered[i + 1] = True
    return sum(covered) / len(heard)


def last_assistant_asked(conversation_tail: tuple[str, ...]) -> bool:
    """Whether the last assistant message of the tail ends with a question.

    Tail entries may be plain strings (taken as alternating, the last one the assistant's when it ends
    with '?') or "assistant: ..." / "user: ..." prefixed; the prefixed form is used when present.
    """
    for message in reversed(conversation_tail):
        text = str(message).strip()
        role, sep, content = text.partition(":")
        if sep and role.strip().lower() in ("assistant", "system"):
            return content.strip().endswith("?")
        if sep and role.strip().lower() == "user":
            return False
        return text.endswith("?")
    return False


# --- features ---------------------------------------------------------------------------------------------

FEATURE_NAMES: tuple[str, ...] = (
    "no_speech_prob", "avg_logprob", "compression_ratio", "looks_like_noise",
    "vad_fraction", "vad_max", "vad_mean", "log_duration", "words_per_second",
    "log_words", "question_mark", "question_word_start", "imperative_start", "please",
    "second_person", "first_person_start", "vocative", "backchannel", "filler_only",
    "assistant_speaking", "echo_overlap", "assistant_asked", "short_reply_after_question",
)


@dataclass(frozen=True)
class SegmentFeatures:
    values: np.ndarray  # in FEATURE_NAMES order
    text: str
    word_count: int
    vad_fraction: float
    vad_max: float
    has_vad: bool

    def __getitem__(self, name: str) -> float:
        return float(self.values[FEATURE_NAMES.index(name)])

    def as_dict(self) -> dict[str, float]:
        return {name: float(v) for name, v in zip(FEATURE_NAMES, self.values)}


def segment_features(evidence: SegmentEvidence, vad_threshold: float = 0.5) -> SegmentFeatures:
    transcript = evidence.transcript
    text = transcript.text.strip()
    words = words_of(text)
    probs = np.asarray(evidence.speech_probabilities, dtype=np.float64).reshape(-1)
    has_vad = probs.size > 0
    if has_vad:
        vad_fraction, vad_max, vad_mean = float(np.mean(probs >= vad_threshold)), float(probs.max()), float(probs.mean())
    else:  # no VAD given: a proxy from whisper's no-speech probability; the VAD-based hard rule is skipped
        proxy = 1.0 - float(transcript.no_speech_prob)
        vad_fraction, vad_max, vad_mean = 0.8 * proxy, proxy, 0.75 * proxy
    audio_seconds = transcript.audio_seconds or (len(evidence.audio_16k) / 16000.0)
    duration = max(float(audio_seconds), 0.05)
    first = words[0] if words else ""
    asked = last_assistant_asked(evidence.conversation_tail)
    echo = echo_overlap(text, evidence.assistant_text) if evidence.assistant_speaking else 0.0
    values = np.array([
        transcript.no_speech_prob,
        float(np.clip(transcript.avg_logprob, -3.0, 0.0)),
        float(np.clip(transcript.compression_ratio, 0.0, 3.0)),
        float(transcript.looks_like_noise),
        vad_fraction, vad_max, vad_mean,
        float(np.log1p(duration)),
        float(min(len(words) / duration, 6.0)),
        float(np.log1p(len(words))),
        float(text.endswith("?") or "?" in text),
        float(first in QUESTION_WORDS),
        float(first in IMPERATIVE_VERBS or (first == "please" and len(words) > 1 and words[1] in IMPERATIVE_VERBS)),
        float("please" in words),
        float(any(w in ("you", "your", "yourself") for w in words)),
        float(first in FIRST_PERSON),
        float(first in VOCATIVES or (len(words) > 1 and words[-1] in VOCATIVES and len(words) > 2)),
        float(is_backchannel(text)),
        float(is_filler_only(text)),
        float(evidence.assistant_speaking),
        echo,
        float(asked),
        float(asked and is_short_reply(text)),
    ], dtype=np.float64)
    return SegmentFeatures(values, text, len(words), vad_fraction, vad_max, has_vad)


# --- hard rules -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RuleVerdict:
    token: StateToken
    reason: str


def hard_rule(evidence: SegmentEvidence, features: SegmentFeatures, *, min_speech_fraction: float = 0.2,
              echo_threshold: float = 0.6, replies_after_question: bool = True) -> RuleVerdict | None:
    """The rules that override any model. ``None`` when none applies."""
    transcript = evidence.transcript
    if not features.text or features.word_count == 0:
        return RuleVerdict(StateToken.IGNORE, "no words recognised")
    if features.has_vad:
        if transcript.looks_like_noise and features.vad_fraction < min_speech_fraction:
            return RuleVerdict(StateToken.IGNORE, f"noise: whisper no-speech {transcript.no_speech_prob:.2f}, "
                                                  f"VAD speech {features.vad_fraction:.0%}")
        if features.vad_max < 0.3:
            return RuleVerdict(StateToken.IGNORE, f"noise: VAD never heard speech (max {features.vad_max:.2f})")
    elif transcript.looks_like_noise:
        return RuleVerdict(StateToken.IGNORE, f"noise: whisper no-speech {transcript.no_speech_prob:.2f}")
    if evidence.assistant_speaking and features.word_count >= 2 and features["echo_overlap"] >= echo_threshold:
        return RuleVerdict(StateToken.IGNORE, f"echo of the assistant's own words ({features['echo_overlap']:.0%})")
    if replies_after_question and not evidence.assistant_speaking and features["short_reply_after_question"]:
        return RuleVerdict(StateToken.QUERY, f"reply to the assistant's question: {features.text!r}")
    if normalise(features.text) in CONTROL_COMMANDS:
        return RuleVerdict(StateToken.QUERY, f"control command: {features.text!r}")
    if not evidence.assistant_speaking and features.word_count >= 5 and is_request_opening(normalise(features.text)):
        # Alone with the assistant, "I want to book a table" is a request to it, though phrased as a
        # statement (the trained head, which saw such statements as talk to others, says no).
        return RuleVerdict(StateToken.QUERY, f"request: {features.text!r}")
    if not evidence.assistant_speaking and GREETING.match(normalise(features.text)):
        return RuleVerdict(StateToken.QUERY, f"greeting: {features.text!r}")
    if features["backchannel"] or features["filler_only"]:
        return RuleVerdict(StateToken.IGNORE, f"backchannel: {features.text!r}")
    if not evidence.assistant_speaking and asks_about_the_view(evidence, features):
        # "What does the label say?" reads like talk to someone else without the camera; with a view to
        # talk about, and the assistant silent, it is a question for the assistant.
        return RuleVerdict(StateToken.QUERY, f"question about what the camera shows: {features.text!r}")
    return None


def is_request_opening(normalised: str) -> bool:
    """ "I want to...", "Can you...", or whisper's "I went to book..." for "I want to book..."."""
    if REQUEST_OPENING.match(normalised):
        return True
    misheard = MISHEARD_REQUEST_OPENING.match(normalised)
    return misheard is not None and misheard.group(1) in IMPERATIVE_VERBS


VISUAL_WORDS = frozenset(
    "this that these those here label sign page text written read say says see look looks looking showing "
    "show holding hold hand camera picture photo image screen colour color wearing".split())


def asks_about_the_view(evidence: SegmentEvidence, features: SegmentFeatures) -> bool:
    """A question or command that points at something seen, while the camera shows something."""
    if not evidence.visual_context:
        return False
    asking = features["question_mark"] or features["question_word_start"] or features["imperative_start"]
    return bool(asking) and any(word in VISUAL_WORDS for word in words_of(features.text))


def rules_only_query(features: SegmentFeatures) -> bool:
    """The hand-written baseline after the hard rules: a question or a command is a query."""
    return bool(features["question_mark"] or features["question_word_start"] or features["imperative_start"])


# --- logistic head ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LogisticHead:
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    bias: float

    def probability(self, x: np.ndarray) -> np.ndarray:
        z = ((np.asarray(x, dtype=np.float64) - self.mean) / self.std) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))

    def to_json(self, digits: int = 5) -> dict:
        return {"mean": _round(self.mean, digits), "std": _round(self.std, digits),
                "weights": _round(self.weights, digits), "bias": round(float(self.bias), digits)}

    @classmethod
    def from_json(cls, data: dict) -> LogisticHead:
        return cls(np.asarray(data["mean"], dtype=np.float64), np.asarray(data["std"], dtype=np.float64),
                   np.asarray(data["weights"], dtype=np.float64), float(data["bias"]))


def _round(values: np.ndarray, digits: int) -> list[float]:
    return [float(f"{v:.{digits}g}") for v in np.asarray(values, dtype=np.float64)]


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, penalty_scale: np.ndarray | None = None,
                 iterations: int = 50, sample_weight: np.ndarray | None = None) -> LogisticHead:
    """L2-regularised logistic regression by Newton's method (IRLS) on standardised inputs; numpy only.

    ``l2`` multiplies the squared weights (not the bias); ``penalty_scale`` gives each column its own
    multiple of it (e.g. a stronger penalty on the 576 embedding columns than on the hand features).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-6] = 1.0
    z = (x - mean) / std
    n, d = z.shape
    design = np.hstack([z, np.ones((n, 1))])
    penalty = np.full(d + 1, l2, dtype=np.float64)
    if penalty_scale is not None:
        penalty[:d] *= np.asarray(penalty_scale, dtype=np.float64)
    penalty[d] = 0.0
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    theta = np.zeros(d + 1)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ theta, -40, 40)))
        gradient = design.T @ (sw * (p - y)) + penalty * theta
        hessian = (design * (sw * p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.max(np.abs(step)) < 1e-7:
            break
    return LogisticHead(mean, std, theta[:d], float(theta[d]))


# --- the decider ------------------------------------------------------------------------------------------

def text_query(text: str) -> StateDecision:
    """Typed text is a query by definition (VITA's ``<3>``); empty text is ignored."""
    if not text.strip():
        return StateDecision(StateToken.IGNORE, 0.0, "empty typed text")
    return StateDecision(StateToken.TEXT_QUERY, 1.0, "typed text")


class LearnedStateDecider:
    """Hard rules, then a logistic head on segment features (+ the LLM's embedding when available).

    - ``model_path``: the weights JSON (default: ``duplex/state_model.json`` shipped beside this file).
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
        with open(path) as handle:
            data = json.load(handle)
        if tuple(data["feature_names"]) != FEATURE_NAMES:
            raise ValueError(f"{path}: trained on other features ({len(data['feature_names'])}); retrain it with "
                             "benchmarks/state_decision.py")
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
        # sure, its verdict stands without it (bounds chosen by the benchmark; absent: always embed).
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
        self.last_cost_ms = 0.0

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
        start = time.perf_counter()
        try:
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
        finally:
            self.last_cost_ms = (time.perf_counter() - start) * 1000.0


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
