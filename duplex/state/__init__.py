"""The listener's state decision: is this speech segment a query for the assistant (``<1>``) or not (``<2>``)?

Deciding: ``lexicon`` (the words it knows), ``features`` (what it measures in a segment), ``rules`` (the hard
rules that always hold), ``head`` (the logistic head), ``decider`` (the deciders; the shipped weights are
``state_model.json`` beside it). Training: ``corpus`` and ``dataset`` (the labelled clips), ``hearing`` (the
clips made and heard by real models), ``selection`` (settings chosen out of fold) and ``train`` (the command
that writes the weights). Measured in docs/state-decision.md.
"""

from duplex.state.decider import LearnedStateDecider, RuleStateDecider
from duplex.state.lexicon import asks_for_silence

__all__ = ["LearnedStateDecider", "RuleStateDecider", "asks_for_silence"]
