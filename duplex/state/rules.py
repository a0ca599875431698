"""The hard rules of the state decision: they come before any model and always hold.

An empty or noise-looking transcript with little VAD speech is ignored, so is a transcript that is mostly
the assistant's own current words (echo) and a pure backchannel ("uh-huh", "yeah", "I see"). Some say
QUERY: a short yes/no reply right after the assistant asked a question (a reply, not a backchannel), a bare
control command ("stop", "pause", "never mind"), which a barge-in must never lose; and, with the assistant
silent, a request phrased as a statement ("I want to book a table for two"), a greeting to nobody named,
and a question about what the camera shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from duplex.decision import SegmentEvidence, StateToken
from duplex.state.features import SegmentFeatures
from duplex.state.lexicon import (
    CONTROL_COMMANDS,
    GREETING,
    IMPERATIVE_VERBS,
    MISHEARD_REQUEST_OPENING,
    REQUEST_OPENING,
    VISUAL_WORDS,
    normalise,
    words_of,
)


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


def asks_about_the_view(evidence: SegmentEvidence, features: SegmentFeatures) -> bool:
    """A question or command that points at something seen, while the camera shows something."""
    if not evidence.visual_context:
        return False
    asking = features["question_mark"] or features["question_word_start"] or features["imperative_start"]
    return bool(asking) and any(word in VISUAL_WORDS for word in words_of(features.text))


def rules_only_query(features: SegmentFeatures) -> bool:
    """The hand-written baseline after the hard rules: a question or a command is a query."""
    return bool(features["question_mark"] or features["question_word_start"] or features["imperative_start"])
