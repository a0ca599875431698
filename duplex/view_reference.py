"""Whether a question is about what the camera shows: only then does the view reach the answer's prompt.

A small model repeats what its prompt holds. With the camera's description in every prompt, "What is 2 plus
3?" was answered 'The user's camera shows: Text in view: "2+3"' (issue #16). So the view goes into the prompt
when the words point at it ("what is this?", "what does the label say?", "can you see my shirt?") or when
the question follows up on one that did, soon after it ("and what colour is it?"). Otherwise the history
still notes what was seen (``Turn.visual_context``, the event log), but the model is not shown it.
"""

from __future__ import annotations

import re

from duplex.state.lexicon import normalise

# Words that are about seeing or about a thing one shows. "colour" alone is not: "what colour is the sky?"
VIEW_WORDS = frozenset(
    "camera cam picture photo photograph image screen label labels sign written writing wearing holding "
    "showing shown see seeing seen look looks looking visible view".split())
# Pointing words: "what is this?", "are these ripe?", "read those for me".
POINTING_WORDS = frozenset("this these those".split())
VIEW_PHRASES = re.compile(
    r"\b(in front of (you|me|the camera)|in my hands?|my hand|over here|right here|in here|here is|here's"
    r"|what (is|s) that|what am i|what i m|am i (holding|wearing)|i m (holding|wearing|showing)"
    r"|read (it|that|this)|what does it say|what do(es)? (it|that|this) say)\b")
# "this" that points at a time, not a thing: "what's the weather this week?"
POINTING_AT_TIME = re.compile(
    r"\b(this|these) (morning|afternoon|evening|night|week|weekend|month|year|time|season|summer|winter"
    r"|spring|autumn|fall|days?|weeks|years)\b")
# A follow-up leans on the question before it: a pronoun for the thing, or "and ..." / "what about ...".
FOLLOW_UP_WORDS = frozenset("it its they them their that one ones".split())
FOLLOW_UP_OPENINGS = re.compile(r"^(and|also|what about|how about|so)\b")
FOLLOW_UP_MAX_WORDS = 10  # a longer question says what it is about
# "it" that stands for nothing: the time, the weather, how things go.
EMPTY_IT = re.compile(
    r"\b(what time is it|is it (going to|gonna|raining|snowing|sunny|cloudy|windy|cold|hot|warm|late|early"
    r"|true|ok|okay)|it (is|s) (raining|snowing|sunny|cloudy|windy|cold|hot|warm|late|early)|how (is|s) it going"
    r"|is it possible)\b")


MOMENT_BEFORE = " (a moment before: "  # how ``VisionInput.context`` joins the view before a change


def latest_view(context: str) -> str:
    """The newest view of a ``VisionInput.context``: what the answer's prompt is shown. The earlier one stays
    for the decision and the history; given both, the small model read them out mixed, and on and on."""
    return context.split(MOMENT_BEFORE, 1)[0]


def _plain(question: str) -> str:
    return normalise(question).replace("'", " ")


def points_at_view(question: str) -> bool:
    """The words themselves point at something seen."""
    text = _plain(question)
    words = set(POINTING_AT_TIME.sub(" ", text).split())
    return bool(words & VIEW_WORDS or words & POINTING_WORDS or VIEW_PHRASES.search(text))


def follows_up(question: str) -> bool:
    """A short question that leans on the one before it (or on a thing just shown). "What time is it?" does
    not: its "it" stands for nothing."""
    text = _plain(question)
    words = text.split()
    if not words or len(words) > FOLLOW_UP_MAX_WORDS or EMPTY_IT.search(text):
        return False
    return bool(FOLLOW_UP_OPENINGS.match(text) or set(words) & FOLLOW_UP_WORDS)


def asks_about_a_thing(question: str) -> bool:
    """A short question about a thing it does not name ("what is it?", "is it ripe?"): what a person asks of
    something they hold up. Not "what time is it?" or "is it raining?", where "it" stands for nothing."""
    return follows_up(question)


def about_view(question: str, last_about_view_at: float | None, now: float, follow_up_s: float,
               just_shown: bool = False) -> bool:
    """``question`` is about the view: it points at it, it follows up, within ``follow_up_s``, on a question
    that was (``last_about_view_at``: when that one was asked; None when none was), or the view has just
    changed (``just_shown``) and it asks about a thing it does not name."""
    if points_at_view(question):
        return True
    recent = last_about_view_at is not None and now - last_about_view_at <= follow_up_s
    return (recent and follows_up(question)) or (just_shown and asks_about_a_thing(question))
