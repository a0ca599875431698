"""The echo guard: an answer whose first sentence only says the question back is not spoken.

The bundled 135M model, given a question it cannot make sense of (most often a mishearing: "But in thawman
what are called?"), tends to answer with the question itself, restated. Said aloud, that is worse than
"sorry, say that again?", which is what a person would say. So the answer's first clauses are held while
they bring no word of their own (every content word is one of the question's): the first clause that adds a
word releases them all and the answer goes on as usual; a first sentence that ends without adding one is an
echo, and ``replacement`` is said instead while the model is stopped.

Holding costs time only on answers that begin by restating ("The capital of France | is Paris.": the first
phrase waits for "Paris" to be written, ``see``), a few of the model's tokens; an answer that starts with
anything new is not held at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Words that carry no content of their own: an answer made of the question's words and these adds nothing.
# (yes, no and not are content: "Yes, it is." answers "Is it raining?")
FUNCTION_WORDS = frozenset("""
a an the this that these those there here it its it's they them their he him his she her we us our you your
i me my is are was were be been being am do does did done has have had having can could will would shall
should may might must of to in on at by for with from into onto about as than then so and or but if when
where what which who whom whose why how also just very too well oh um uh ah okay ok let let's
""".split())

_NUMBERS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
            "sixteen seventeen eighteen nineteen twenty").split()
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s*$")


def _word_key(word: str) -> str:
    """One spelling per word: lower case, digits as words, a plural's s dropped ("slugs" = "slug")."""
    word = word.lower().strip("'")
    if word.isdigit() and int(word) < len(_NUMBERS):
        return _NUMBERS[int(word)]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def content_words(text: str) -> set[str]:
    return {_word_key(w) for w in re.findall(r"[A-Za-z0-9']+", text) if w.lower() not in FUNCTION_WORDS}


def adds_a_word(question: str, text: str) -> bool:
    """Does ``text`` hold a content word that ``question`` does not?"""
    return _adds_to(content_words(question), text)


def _adds_to(question_words: set[str], text: str) -> bool:
    return bool(content_words(text) - question_words)


class EchoGuard:
    """Sits between the clause chunker and the voice for one answer: ``push`` each clause and speak what it
    returns; at the model's end, ``flush``. Once ``echoed``, the model should be stopped; ``on_echo`` is told
    what it had written, the moment that is known."""

    def __init__(self, question: str, replacement: str, on_echo: Callable[[str], None] | None = None) -> None:
        self.question, self.replacement, self.on_echo = question, replacement, on_echo
        self._question_words = content_words(question)  # once: ``see`` runs at every piece of the answer
        self.held: list[str] = []
        self.decided = False
        self.echoed = False

    def push(self, clause: str) -> list[str]:
        if self.decided:
            return [clause]
        self.held.append(clause)
        text = " ".join(self.held)
        if _adds_to(self._question_words, text):
            return self._release()
        if _SENTENCE_END.search(clause):
            return self._replace()
        return []

    def see(self, written: str) -> list[str]:
        """The model's whole text so far, at each piece: a finished word of its own (one followed by a space
        or a mark; the last may be a fragment, "thaw" of "thawman") releases what is held without waiting
        for its clause to end."""
        if self.decided or not self.held:
            return []
        finished = re.sub(r"[A-Za-z0-9']+$", "", written)
        return self._release() if _adds_to(self._question_words, finished) else []

    def flush(self) -> list[str]:
        """The model has finished: what is still held is its whole answer."""
        if self.decided or not self.held:
            self.decided = True
            return []
        return self._replace() if not _adds_to(self._question_words, " ".join(self.held)) else self._release()

    @property
    def written(self) -> str:
        """The echo that was not said (while held or once replaced)."""
        return " ".join(self.held)

    def _release(self) -> list[str]:
        self.decided = True
        released, self.held = self.held, []
        return released

    def _replace(self) -> list[str]:
        self.decided = self.echoed = True
        if self.on_echo is not None:
            self.on_echo(self.written)
        return [self.replacement]
