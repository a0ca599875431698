"""Cut a stream of LLM tokens into clauses so speech can start before the answer is complete."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

# A clause ends at sentence punctuation, or at a comma/colon/semicolon once it is long enough to be
# worth a separate TTS call (a 1-2 word clause sounds choppy and saves almost nothing).
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_SOFT_END = re.compile(r"[,;:—]\s")


class ClauseChunker:
    def __init__(self, min_words_soft: int = 4, max_words: int = 30) -> None:
        self.min_words_soft = min_words_soft
        self.max_words = max_words
        self._buffer = ""

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
        words = self._buffer.split(" ")
        if len(words) > self.max_words:  # no punctuation at all: cut at a word boundary
            return len(" ".join(words[: self.max_words])) + 1
        return None


def iter_clauses(tokens: Iterable[str], **options) -> Iterator[str]:
    chunker = ClauseChunker(**options)
    for token in tokens:
        yield from chunker.push(token)
    yield from chunker.flush()
