"""Does a transcript read like a finished turn? Used to tell a pause inside a sentence from its end."""

from __future__ import annotations

import re

FILLERS = {"um", "uh", "er", "erm", "hmm", "mm", "ah", "eh"}
# Words a finished English sentence rarely ends with: conjunctions, articles, prepositions, auxiliaries.
OPEN_ENDINGS = {
    "and", "or", "but", "so", "because", "if", "when", "while", "that", "which", "who", "the", "a", "an",
    "to", "for", "of", "with", "in", "on", "at", "from", "by", "about", "into", "my", "your", "our", "their",
    "is", "are", "was", "were", "be", "can", "could", "would", "should", "will", "like", "than", "then",
    "some", "any", "i", "we", "you", "want", "need", "also", "maybe",
}


# "I want to book", "we need to get": an infinitive verb that usually takes an object still to come.
_DANGLING_INFINITIVE = re.compile(r"\b(want|wants|need|needs|like|going|have|has|trying|try|wanna|gonna) to \w+$")


def turn_looks_complete(text: str) -> bool:
    stripped = text.strip()
    if not stripped:
        return False
    if stripped.endswith(("...", "…", ",", "-", "—")):
        return False
    words = re.findall(r"[a-z']+", stripped.lower())
    if not words:
        return True
    if words[-1] in FILLERS or words[-1] in OPEN_ENDINGS:
        return False
    if _DANGLING_INFINITIVE.search(" ".join(words)):  # whisper ends it with "." all the same
        return False
    return True
