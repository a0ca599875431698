"""When the words heard are too unsure to answer: the assistant asks the user to say them again.

A person who half-hears a question says "sorry?" rather than answering a guess; the bundled model answered
the mishearing "Bree Cotton's on fruit." by repeating it, and a noise heard as "the" by describing the
camera (issue #16). Typed text is never unsure. Two signals, each switchable in ``DuplexOptions``:
- whisper's own confidence: the transcript's mean token log-probability below ``repeat_below_logprob``;
- a lone function word ("the", "and", "of"): no question a person asks is that alone.
"""

from __future__ import annotations

from duplex.state.lexicon import words_of

# Words that carry no request on their own (a noise or a clipped start is often heard as one of these).
FUNCTION_WORDS = frozenset(
    "the a an and or but of to in on at for with by from as so if then than that this it is be".split())


def repeat_reason(text: str, avg_logprob: float | None, typed: bool, below_logprob: float | None,
                  lone_function_word: bool = True) -> str:
    """Why the query ``text`` should be asked again instead of answered ("" when it should be answered)."""
    if typed:
        return ""
    words = words_of(text)
    if lone_function_word and len(words) == 1 and words[0] in FUNCTION_WORDS:
        return f"a lone function word ({words[0]!r})"
    if below_logprob is not None and avg_logprob is not None and avg_logprob < below_logprob:
        return f"unsure words (mean log-probability {avg_logprob:.2f} < {below_logprob:.2f})"
    return ""
