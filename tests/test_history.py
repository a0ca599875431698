"""The conversation history under a long talk and hostile text: real-token budget, block trimming that keeps
the prompt's prefix stable, typed-text limits, and failed turns dropped."""

import pytest

from duplex.conversation import Conversation, MessageTooLong
from duplex.options import DuplexOptions
from duplex.text import clean_text


def words(text: str) -> int:
    return len(text.split()) + 1


def test_text_is_cleaned_of_what_breaks_tokenizers_and_templates():
    assert clean_text("  what\ud800 is\x00 this\x1b?\n ") == "what is this?"
    assert clean_text("tab\tand\nnewline") == "tab\tand\nnewline"
    assert clean_text("e\u0301t\u00e9") == "\u00e9t\u00e9"  # NFC
    assert clean_text("\ufffe\uffff\udfff") == ""
    assert clean_text("plain ascii") == "plain ascii"
    clean_text("中文" * 1000).encode("utf-8")  # encodes: no exception


def test_a_long_talk_trims_in_blocks_so_the_prompt_prefix_stays_the_same_for_many_turns():
    conversation = Conversation("system prompt", token_budget=600, count_tokens=words)
    prefixes = []
    for i in range(200):
        conversation.add_user(f"question number {i} about things", i)
        messages = conversation.messages()
        assert sum(words(m.content) + 4 for m in messages) <= 600, i
        assert messages[-1].content == f"question number {i} about things"
        prefixes.append(messages[1].content)
        conversation.add_assistant(f"answer number {i} with some words", i + 0.5)
    changes = sum(1 for a, b in zip(prefixes, prefixes[1:]) if a != b)
    assert 0 < changes <= 200 // 8  # dropping one turn per answer would change it on every turn past the budget
    for a, b in zip(prefixes, prefixes[1:]):  # and whenever it changes, a whole block went
        if a != b:
            assert int(b.split()[2]) - int(a.split()[2]) >= 8


def test_a_typed_message_too_long_in_real_tokens_is_refused_and_changes_nothing():
    def characters(text: str) -> int:  # CJK: about a token per character, not four characters a token
        return len(text)

    conversation = Conversation("sys", token_budget=1500, count_tokens=characters)
    with pytest.raises(MessageTooLong, match="500"):
        conversation.check_typed("中" * 1000)
    assert conversation.turns == []
    assert conversation.check_typed("hi\ud800 there") == "hi there"


def test_the_message_limit_can_be_set_apart_from_the_history_budget():
    """The session keeps a short history (prompts stay fast) but still takes a long typed message whole."""
    options = DuplexOptions()
    conversation = Conversation("sys", token_budget=options.history_token_budget, count_tokens=words,
                                max_message_tokens=options.max_message_tokens)
    for k in range(40):
        conversation.add_user(f"question {k} " + "word " * 20, 2 * k)
        conversation.add_assistant("answer " * 30, 2 * k + 1)
    long_text = conversation.check_typed("word " * (options.max_message_tokens - 10))
    assert words(long_text) > options.history_token_budget // 3  # over the default share: the set limit holds
    conversation.add_user(long_text, 100)
    sent = conversation.messages()
    assert sent[-1].content == long_text.strip()  # the newest question goes whole
    assert sum(words(m.content) for m in sent) <= options.history_token_budget
    with pytest.raises(MessageTooLong):
        conversation.check_typed("word " * (options.max_message_tokens + 1))


def test_a_spoken_or_answered_text_too_long_is_cut_to_its_share():
    conversation = Conversation("sys", token_budget=90, count_tokens=words)
    turn = conversation.add_user("word " * 500, 0)
    assert words(turn.text) <= conversation.max_message_tokens
    assert conversation.messages()[-1].role == "user"


def test_dropping_a_failed_question_keeps_the_rest():
    conversation = Conversation("sys", count_tokens=words)
    conversation.add_user("first", 0)
    conversation.add_assistant("one", 1)
    failed = conversation.add_user("broken", 2)
    conversation.drop(failed)
    conversation.add_user("second", 3)
    assert [m.content for m in conversation.messages()[1:]] == ["first", "one", "second"]
