"""Which questions bring the camera's view into the prompt (issue #16: the small model parroted the view
on unrelated questions)."""

from __future__ import annotations

import pytest

from duplex.view_reference import about_view, follows_up, points_at_view

ABOUT_THE_VIEW = [
    "What is this?", "What's this?", "What does the label say?", "Can you see my shirt?", "What am I holding?",
    "What colour is this mug?", "Read that for me.", "What is written on the sign?", "How many fingers am I "
    "holding up?", "What do you see?", "Is this ripe?", "What's in my hand?", "Look at this, what is it?",
    "What does it say?", "Describe the picture.", "What is that?", "Are these the right screws?",
]
NOT_ABOUT_THE_VIEW = [
    "What is 2 plus 3?", "Please name three kinds of fruit.", "What colour is the sky?", "What is the capital "
    "of France?", "How many legs does a spider have?", "What's the weather like this week?", "Tell me a joke.",
    "Where do penguins live?", "What should I cook this evening?", "Who wrote Hamlet?",
]


@pytest.mark.parametrize("question", ABOUT_THE_VIEW)
def test_questions_that_point_at_the_view(question):
    assert points_at_view(question)
    assert about_view(question, None, 0.0, 30.0)


@pytest.mark.parametrize("question", NOT_ABOUT_THE_VIEW)
def test_everyday_questions_do_not_point_at_the_view(question):
    assert not points_at_view(question)
    assert not about_view(question, None, 0.0, 30.0)


def test_a_short_follow_up_soon_after_a_view_question_is_about_the_view_too():
    assert follows_up("And what colour is it?") and follows_up("What about the other one?")
    assert not follows_up("How many days are in a week?")
    assert about_view("And what colour is it?", last_about_view_at=10.0, now=20.0, follow_up_s=30.0)
    assert not about_view("And what colour is it?", last_about_view_at=10.0, now=50.0, follow_up_s=30.0)
    assert not about_view("And what colour is it?", last_about_view_at=None, now=20.0, follow_up_s=30.0)
    long_one = "And how long does it take to fly from London to New York on a normal day?"
    assert not about_view(long_one, last_about_view_at=10.0, now=20.0, follow_up_s=30.0)


HELD_UP = ["What is it?", "Is it ripe?", "How old is it?", "What are they?", "Is that one broken?",
           "Can I eat it?"]
EMPTY_IT_QUESTIONS = ["What time is it?", "Is it going to rain tomorrow?", "Is it raining outside?",
                      "How's it going?", "Is it cold today?", "Is it possible to learn French in a month?"]


@pytest.mark.parametrize("question", HELD_UP)
def test_a_question_about_an_unnamed_thing_just_shown_is_about_the_view(question):
    assert not points_at_view(question)
    assert about_view(question, None, 0.0, 30.0, just_shown=True)
    assert not about_view(question, None, 0.0, 30.0, just_shown=False)  # nothing shown: nothing to see


@pytest.mark.parametrize("question", EMPTY_IT_QUESTIONS + NOT_ABOUT_THE_VIEW)
def test_a_view_just_changed_does_not_bring_it_to_other_questions(question):
    assert not about_view(question, None, 0.0, 30.0, just_shown=True)
    assert not about_view(question, last_about_view_at=0.0, now=5.0, follow_up_s=30.0)  # nor a follow-up


def test_the_prompt_is_shown_the_newest_view_only():
    from duplex.view_reference import MOMENT_BEFORE, latest_view

    assert latest_view(f'Text in view: "BANANA BREAD".{MOMENT_BEFORE}A bright view, mostly red.)') == \
        'Text in view: "BANANA BREAD".'
    assert latest_view("A bright view.") == "A bright view."
