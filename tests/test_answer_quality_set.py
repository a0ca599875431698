"""The answer-quality benchmark's fixed question set and its judge (benchmarks/answer_quality.py)."""

from __future__ import annotations

from benchmarks.answer_quality import Outcome, Question, judge, load_questions, scenario_text


def test_the_set_has_sixty_everyday_questions_and_some_about_the_view_each_with_accepted_answers():
    questions = load_questions()
    general = [q for q in questions if q.about == "general"]
    assert len(general) >= 60 and len({q.text for q in questions}) == len(questions)
    assert {q.about for q in questions} == {"general", "label", "red"}
    assert all(q.accepted and all(a.strip() for a in q.accepted) for q in questions)


def test_the_judge_tells_an_accepted_answer_from_a_parroted_view_and_an_echo():
    sum_question = Question("What is two plus three?", ("5", "five"), "general")

    def flags(answer, heard="What is 2 plus 3?", condition="unrelated"):
        return judge(Outcome(sum_question, "espeak:en-029", condition, transcript=heard, heard=heard, answer=answer))

    assert flags("Two plus three is five.")["accepted"] and not flags("Two plus three is five.")["parrots_view"]
    parroted = flags('The user\'s camera shows: Text in view: "BANANA BREAD".')
    assert parroted["parrots_view"] and not parroted["accepted"]
    assert not flags('Text in view: "BANANA BREAD".', condition="off")["parrots_view"]  # no camera: not the view
    assert flags("What is 2 plus 3?")["echoes"]
    assert not flags("Two plus three is five.", heard="What is two plus three?")["echoes"]
    assert flags("", heard="")["no_turn"] and not flags("", heard="")["misheard"]
    assert flags("Sorry, could you say that again?")["say_again"]
    assert flags("Five.", heard="What is two plus tree?")["misheard"]
    assert not flags("Five.", heard="What is 2 plus 3?")["misheard"]  # whisper writes digits
    ripe = Question("What colour is a banana when it is ripe?", ("yellow",), "general")
    assert not judge(Outcome(ripe, "piper", "unrelated", transcript=ripe.text, heard=ripe.text,
                             answer="A ripe banana is yellow."))[
        "parrots_view"]


def test_a_scenario_puts_the_view_in_only_where_the_condition_asks(tmp_path):
    label = Question("What does the label say?", ("banana",), "label")
    general = Question("What is two plus three?", ("5",), "general")
    assert "image:" not in scenario_text(general, "off", None)
    assert "label_banana_bread.png" in scenario_text(general, "unrelated", None)
    assert "label_banana_bread.png" in scenario_text(label, "about", tmp_path / "q.wav")
    assert "audio:" in scenario_text(label, "about", tmp_path / "q.wav")


def test_the_judge_tells_an_answer_caught_in_a_loop():
    from benchmarks.answer_quality import repeats_itself, words

    assert repeats_itself(words("The camera shows a bright view, mostly yellow, with a bright view, mostly yellow."))
    assert not repeats_itself(words("The capital of France is Paris, and Paris is its largest city."))
