"""What the duplex core needs from a language model: a chat that streams text and can be cancelled.

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


class LanguageModel(Protocol):
    name: str

    def stream_chat(self, messages: Sequence[ChatMessage], options: GenerationOptions,
                    cancel: threading.Event | None = None) -> Iterator[str]:
        """Yield text pieces of the assistant's reply. Blocking: run it in a worker thread.

        Generation stops promptly (within one token) once ``cancel`` is set.
        """
