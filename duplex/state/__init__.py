"""The listener's state decision: is this speech segment a query for the assistant (``<1>``) or not (``<2>``)?

``lexicon`` (the words it knows), ``features`` (what it measures in a segment), ``rules`` (the hard rules
that always hold), ``head`` (the logistic head and its fitting), ``decider`` (the deciders and the shipped
weights, ``state_model.json``), ``train`` (the command that writes those weights) and ``dataset`` /
``corpus`` (the labelled segments it trains on). Measured in docs/state-decision.md.
"""

from duplex.state.decider import LearnedStateDecider, RuleStateDecider
from duplex.state.lexicon import asks_for_silence

__all__ = ["LearnedStateDecider", "RuleStateDecider", "asks_for_silence"]
