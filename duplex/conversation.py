"""The conversation history shared by both workers, kept within a token budget of the model's own tokens.

An interrupted answer keeps only the words the user heard, cut off with "…", and the user's next message
says it interrupted, so the next answer knows what the user did and did not hear (VITA keeps only the last
turn and loses the cut-off answer).

Trimming drops the oldest turns in a block (down to ``trim_to`` of the budget), not one turn per answer: the
prompt's beginning then stays the same for many turns, and a model that caches the prompt's prefix
(llama.cpp) re-reads only the new turn. Dropping one turn per answer changed the prefix every time and made
each first token wait for the whole prompt to be read again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from duplex.models import ChatMessage, approximate_tokens
from duplex.text import clean_text
from duplex.view_reference import latest_view

# Said on the user's side, not appended to the cut answer: small models copy an end-of-answer marker into
# their own later answers ("The answer... [interrupted by the user]").
INTERRUPTION_NOTE = "(I interrupted your last answer.) "
MESSAGE_OVERHEAD_TOKENS = 4  # the chat template's role markers around each message


class MessageTooLong(ValueError):
    """A typed message longer than one message may be (in the model's tokens)."""


@dataclass
class Turn:
    role: str  # "user" or "assistant"
    text: str
    time: float
    interrupted: bool = False
    typed: bool = False
    visual_context: str = ""  # what the camera showed as it was asked (kept whether or not the model saw it)
    about_view: bool = False  # the question was about the view: the model is shown it with the question

    def as_message(self) -> ChatMessage:
        text = self.text
        if self.visual_context and self.about_view and self.role == "user":
            text = f"{text}\n(The camera shows: {latest_view(self.visual_context)})"
        if self.interrupted:
            text = text + "…" if text else "…"
        return ChatMessage("assistant" if self.role == "assistant" else "user", text)


class Conversation:
    def __init__(self, system_prompt: str, token_budget: int = 800,
                 count_tokens: Callable[[str], int] = approximate_tokens, trim_to: float = 0.6,
                 max_message_tokens: int | None = None) -> None:
        """``max_message_tokens``: the longest one message may be (None: a third of the budget)."""
        self.system_prompt = system_prompt
        self.token_budget = token_budget
        self._max_message_tokens = max_message_tokens
        self.count_tokens = lru_cache(maxsize=1024)(count_tokens)  # each message is counted once
        self.trim_to = trim_to
        self.turns: list[Turn] = []
        self._first_sent = 0  # turns before this one no longer reach the model (trimmed in a block)

    @property
    def max_message_tokens(self) -> int:
        """The longest one message may be (by default a third of the budget, so that one never crowds out the
        rest); the newest question is sent whole even when it alone is over the budget's trimming target."""
        return self._max_message_tokens or self.token_budget // 3

    def check_typed(self, text: str) -> str:
        """``text`` cleaned for the history; raises MessageTooLong (a ValueError) when it is too long."""
        text = clean_text(text)
        tokens = self.count_tokens(text)
        if tokens > self.max_message_tokens:
            raise MessageTooLong(f"message too long ({tokens} tokens, the limit is {self.max_message_tokens})")
        return text

    def add_user(self, text: str, time: float, typed: bool = False, visual_context: str = "",
                 about_view: bool = False) -> Turn:
        turn = Turn("user", self._fit(clean_text(text)), time, typed=typed, visual_context=visual_context,
                    about_view=about_view)
        self.turns.append(turn)
        return turn

    def last_view_question_time(self) -> float | None:
        """When the user last asked about the view (None: never, in what is kept)."""
        return next((t.time for t in reversed(self.turns) if t.role == "user" and t.about_view), None)

    def add_assistant(self, text: str, time: float, interrupted: bool = False) -> Turn:
        turn = Turn("assistant", self._fit(text), time, interrupted=interrupted)
        self.turns.append(turn)
        return turn

    def cut_answer(self, turn: Turn, heard: str) -> None:
        """The user heard only ``heard`` of the answer ``turn``: the history keeps that, marked cut off."""
        if turn.role == "assistant" and len(heard) < len(turn.text):
            turn.text, turn.interrupted = heard, True

    def drop(self, turn: Turn) -> None:
        """Forget ``turn`` (a question whose answer failed: asked again, it must not fail again)."""
        index = next((i for i, t in enumerate(self.turns) if t is turn), None)
        if index is not None:
            del self.turns[index]
            if index < self._first_sent:
                self._first_sent -= 1

    def _fit(self, text: str) -> str:
        """``text`` cut (in characters, by halves) until it is within one message's share of the budget."""
        while text and self.count_tokens(text) > self.max_message_tokens:
            text = text[: len(text) // 2]
        return text

    def _render(self) -> list[tuple[int, ChatMessage]]:
        """The turns still sent, as chat messages, each with the index of the turn it starts at."""
        rendered: list[tuple[int, ChatMessage]] = []
        previous: Turn | None = None
        for index in range(self._first_sent, len(self.turns)):
            turn = self.turns[index]
            message = turn.as_message()
            if turn.role == "user" and previous is not None and previous.role == "assistant" and previous.interrupted:
                message = ChatMessage("user", INTERRUPTION_NOTE + message.content)
            if rendered and rendered[-1][1].role == message.role == "user":
                # "Stop." starts no answer; many chat templates demand that the roles alternate
                start, earlier = rendered.pop()
                rendered.append((start, ChatMessage("user", f"{earlier.content} {message.content}")))
            else:
                rendered.append((index, message))
            previous = turn
        return rendered

    def _cost(self, message: ChatMessage) -> int:
        return self.count_tokens(message.content) + MESSAGE_OVERHEAD_TOKENS

    def messages(self, extra_system: str = "", reserve_tokens: int = 0) -> list[ChatMessage]:
        """System prompt plus the turns still sent; over the budget (less ``reserve_tokens``, room kept for
        a message still to come), the oldest are dropped in a block."""
        system = self.system_prompt + (f"\n{extra_system}" if extra_system else "")
        budget = self.token_budget - reserve_tokens - self._cost(ChatMessage("system", system))
        rendered = self._render()
        costs = [self._cost(message) for _, message in rendered]
        if sum(costs) > budget:
            # the newest question stays, whatever its answer costs
            last_question = max((i for i, (_, m) in enumerate(rendered) if m.role == "user"), default=len(rendered) - 1)
            target, total, keep_from = self.trim_to * budget, sum(costs), 0
            while keep_from < last_question and total > target:
                total -= costs[keep_from]
                keep_from += 1
            while keep_from < last_question and rendered[keep_from][1].role == "assistant":
                keep_from += 1  # a chat must not open with an orphaned answer
            self._first_sent = rendered[keep_from][0]
            rendered = rendered[keep_from:]
        kept = [message for _, message in rendered]
        while kept and kept[0].role == "assistant":
            kept.pop(0)
        return [ChatMessage("system", system), *kept]

    def tail(self, count: int = 4) -> tuple[ChatMessage, ...]:
        """The last ``count`` turns as chat messages, oldest first (untrimmed, unmerged: for the state decision)."""
        return tuple(turn.as_message() for turn in self.turns[-count:])
