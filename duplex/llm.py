"""What the duplex core needs from a language model: a chat that streams text and can be cancelled, and a
count of its own tokens (the history's budget is in those, not in characters).

Backends (llama.cpp, transformers, OpenAI-compatible servers) live in ``assistant.llm``; the core only
sees this interface, so a bigger model is a configuration change, not a code change.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class GenerationOptions:
    max_tokens: int = 160
    temperature: float = 0.0  # greedy by default: replays and tests stay reproducible
    top_p: float = 1.0
    stop: tuple[str, ...] = field(default_factory=tuple)


def approximate_tokens(text: str) -> int:
    """A token count for models whose tokenizer is not at hand: ~4 characters a token in English BPE."""
    return len(text) // 4 + 1


class LanguageModel(Protocol):
    name: str

    def stream_chat(self, messages: Sequence[ChatMessage], options: GenerationOptions,
                    cancel: threading.Event | None = None) -> Iterator[str]:
        """Yield text pieces of the assistant's reply. Blocking: run it in a worker thread.

        An empty piece means "still working" (a long prompt being read, a turn in the queue behind a request
        that is moving): the caller's stall watch counts it as progress. Generation (and prompt reading)
        stops promptly once ``cancel`` is set.
        """

    def count_tokens(self, text: str) -> int:
        """How many of this model's tokens ``text`` takes (an estimate where the model is remote)."""

    def prepare(self, messages: Sequence[ChatMessage], cancel: threading.Event | None = None) -> None:
        """Idle time: read the prompt of ``messages`` ahead, so that a later chat starting with it answers
        sooner. Best effort (a no-op for models that keep no prompt cache); gives way to real requests and
        returns once ``cancel`` is set. Blocking: run it in a worker thread."""
