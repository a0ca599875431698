"""The conversation history shared by both workers, kept within a token budget.

An interrupted answer keeps only the words the user heard, cut off with "…", and the user's next message
says it interrupted, so the next answer knows what the user did and did not hear (VITA keeps only the last turn and loses the cut-off answer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from duplex.llm import ChatMessage

# Said on the user's side, not appended to the cut answer: small models copy an end-of-answer marker into
# their own later answers ("The answer... [interrupted by the user]").
INTERRUPTION_NOTE = "(I interrupted your last answer.) "


@dataclass
class Turn:
    role: str  # "user" or "assistant"
    text: str
    time: float
    interrupted: bool = False
    typed: bool = False
    visual_context: str = ""

    def as_message(self) -> ChatMessage:
        text = self.text
        if self.visual_context and self.role == "user":
            text = f"{text}\n(The camera shows: {self.visual_context})"
        if self.interrupted:
            text = text + "…" if text else "…"
        return ChatMessage("assistant" if self.role == "assistant" else "user", text)


def approximate_tokens(text: str) -> int:
    return len(text) // 4 + 1  # ~4 characters per token for English BPE vocabularies


class Conversation:
    def __init__(self, system_prompt: str, token_budget: int = 1500,
                 count_tokens: Callable[[str], int] = approximate_tokens) -> None:
        self.system_prompt = system_prompt
        self.token_budget = token_budget
        self.count_tokens = count_tokens
        self.turns: list[Turn] = []

    def add_user(self, text: str, time: float, typed: bool = False, visual_context: str = "") -> Turn:
        turn = Turn("user", text, time, typed=typed, visual_context=visual_context)
        self.turns.append(turn)
        return turn

    def add_assistant(self, text: str, time: float, interrupted: bool = False) -> Turn:
        turn = Turn("assistant", text, time, interrupted=interrupted)
        self.turns.append(turn)
        return turn

    def messages(self, extra_system: str = "") -> list[ChatMessage]:
        """System prompt plus the newest turns that fit the budget (oldest dropped first)."""
        system = self.system_prompt + (f"\n{extra_system}" if extra_system else "")
        budget = self.token_budget - self.count_tokens(system)
        rendered = []
        for previous, turn in zip([None, *self.turns], self.turns):
            message = turn.as_message()
            if turn.role == "user" and previous is not None and previous.role == "assistant" and previous.interrupted:
                message = ChatMessage("user", INTERRUPTION_NOTE + message.content)
            if rendered and rendered[-1].role == message.role == "user":
                # "Stop." starts no answer; many chat templates demand that the roles alternate
                message = ChatMessage("user", f"{rendered.pop().content} {message.content}")
            rendered.append(message)
        kept: list[ChatMessage] = []
        for message in reversed(rendered):
            cost = self.count_tokens(message.content) + 4
            if cost > budget and kept:
                break
            kept.append(message)
            budget -= cost
        kept.reverse()
        while kept and kept[0].role == "assistant":  # a chat must not open with an orphaned answer
            kept.pop(0)
        return [ChatMessage("system", system), *kept]

    def tail(self, count: int = 4) -> tuple[str, ...]:
        return tuple(f"{t.role}: {t.as_message().content}" for t in self.turns[-count:])
