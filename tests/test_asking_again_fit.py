"""benchmarks/asking_again.py's fitting: the rules it compares must be fitted and cut as it says."""

import numpy as np

from benchmarks.asking_again import GOAL_ASKED_AGAIN, fit_logistic, misheard, threshold_at_goal


def test_the_cut_asks_again_on_at_most_the_goal_of_the_rightly_heard():
    rng = np.random.default_rng(3)
    scores = np.concatenate([rng.normal(0, 1, 400), rng.normal(2, 1, 100)])
    misheard_flags = np.concatenate([np.zeros(400), np.ones(100)])
    cut = threshold_at_goal(scores, misheard_flags)
    asked = scores > cut
    assert asked[misheard_flags == 0].mean() <= GOAL_ASKED_AGAIN
    # the strictest such cut: one step lower would ask again on more than the goal
    assert (scores[misheard_flags == 0] >= cut).mean() > GOAL_ASKED_AGAIN - 1 / 400


def test_the_logistic_fit_learns_which_way_a_figure_points():
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, (300, 2))
    y = (x[:, 0] + 0.2 * rng.normal(0, 1, 300) < 0).astype(float)  # misheard when the first figure is low
    _, _, weights = fit_logistic(x, y)
    assert weights[0] < -1 and abs(weights[1]) < 0.5


def test_misheard_means_a_content_word_of_four_letters_or_more_missing():
    assert misheard("What do bees make?", "What do these make?")  # "bees" has 4 letters
    assert not misheard("What is 2 plus 3?", "What is two plus three?")
    assert not misheard("Who wrote Hamlet?", "")  # nothing heard is not a mishearing
