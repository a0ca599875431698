"""Cut a stream of LLM tokens into clauses so speech can start before the answer is complete."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

# A clause ends at sentence punctuation, or at a comma/colon/semicolon once it is long enough to be
# worth a separate TTS call (a 1-2 word clause sounds choppy and saves almost nothing).
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_SOFT_END = re.compile(r"[,;:—]\s")
# Words a phrase starts with: a cut just before one falls between subject and verb, or before a
# prepositional phrase or a subordinate clause ("The capital of France | is Paris.").
PHRASE_STARTERS = frozenset(
    "is are was were has have had can could will would should may might must does do did "
    "and but or because so which that who where when while with in on at for to from of by as than".split())
_WORD = re.compile(r"\S+")


class ClauseChunker:
    def __init__(self, min_words_soft: int = 4, max_words: int = 30, first_phrase_words: int | None = None) -> None:
        """``first_phrase_words``: the answer's first clause may end before a phrase starter once it has this
        many words, so the voice starts before the first sentence is written (None: sentences and clauses
        only). The cost is a small break in that sentence's intonation."""
        self.min_words_soft = min_words_soft
        self.max_words = max_words
        self.first_phrase_words = first_phrase_words
        self._buffer = ""
        self._released = False

    def push(self, text: str) -> list[str]:
        """Add streamed text; return the clauses it completed (possibly none)."""
        self._buffer += text
        clauses = []
        while True:
            cut = self._find_cut()
            if cut is None:
                break
            clause, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            if clause:
                clauses.append(clause)
                self._released = True
        return clauses

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []

    def _find_cut(self) -> int | None:
        match = _SENTENCE_END.search(self._buffer)
        if match:
            return match.end()
        for soft in _SOFT_END.finditer(self._buffer):
            if len(self._buffer[:soft.end()].split()) >= self.min_words_soft:
                return soft.end()
        if self.first_phrase_words is not None and not self._released:
            cut = self._phrase_cut(self.first_phrase_words)
            if cut is not None:
                return cut
        words = self._buffer.split(" ")
        if len(words) > self.max_words:  # no punctuation at all: cut at a word boundary
            return len(" ".join(words[: self.max_words])) + 1
        return None

    def _phrase_cut(self, first_phrase_words: int) -> int | None:
        """Where the first clause may end early: before a complete phrase-starting word."""
        words = list(_WORD.finditer(self._buffer))
        for index, word in enumerate(words):
            complete = word.end() < len(self._buffer)  # "is" may still become "island"
            if (index >= first_phrase_words and complete
                    and word.group().lower().strip("\"'(") in PHRASE_STARTERS):
                return word.start()
        return None


def iter_clauses(tokens: Iterable[str], **options) -> Iterator[str]:
    chunker = ClauseChunker(**options)
    for token in tokens:
        yield from chunker.push(token)
    yield from chunker.flush()
