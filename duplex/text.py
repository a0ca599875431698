"""Text from outside (typed messages, transcripts) made safe for tokenizers, prompts and JSON logs.

A lone surrogate ("\\ud800" is valid JSON) cannot be encoded as UTF-8 and made every later turn of a call fail
in the tokenizer; control characters can end a chat template's message early. Both are removed here, once,
before the text enters the history.
"""

from __future__ import annotations

import unicodedata

_KEPT_CONTROLS = {"\n", "\t"}


def _allowed(character: str) -> bool:
    code = ord(character)
    if 0xD800 <= code <= 0xDFFF:  # surrogates: never valid on their own in UTF-8
        return False
    if (code & 0xFFFE) == 0xFFFE or 0xFDD0 <= code <= 0xFDEF:  # Unicode noncharacters
        return False
    return character in _KEPT_CONTROLS or unicodedata.category(character) != "Cc"


def clean_text(text: str) -> str:
    """``text`` without surrogates, noncharacters and control characters (newline and tab kept), NFC-normalised
    and stripped. May return "" (then there was nothing to say)."""
    kept = "".join(c for c in text if _allowed(c)) if not text.isascii() or not text.isprintable() else text
    return unicodedata.normalize("NFC", kept).strip()
