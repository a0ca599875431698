"""Duplex metrics from a replay's event log and loudspeaker signal, defined as the published benchmarks do.

Full-Duplex-Bench v1 (Lin et al., arXiv 2503.04721) scores four behaviours with a takeover rate (TOR: the
share of samples in which the model takes the turn, i.e. starts speaking):
- pause handling: the user pauses mid-sentence; a takeover during the pause is wrong (lower is better);
- backchannel: the user says "uh-huh"; taking the turn over it is wrong (lower is better). FDB v1 plays the
  backchannel opportunity while the user speaks; ours is the overlap case of FDB v1.5 (the user backchannels
  while the assistant speaks), so "takeover" here means the assistant dropped its answer for a new turn;
- smooth turn-taking: the user finishes a question; answering is right (higher is better), and its latency
  is first answer audio minus the end of the user's speech;
- user interruption: the user barges in with a new question; TOR counts the assistant stopping and
  answering it (higher is better), latency = first new answer audio minus the end of the interrupting speech.
  A bare "Stop." (role ``stop``) adds to the stop latency below, and to ``stops_answered`` if the assistant
  answers it rather than falling silent.
FD-Bench (Peng et al., arXiv 2507.19040) and FDB v1.5 add the stop latency: how long the assistant keeps
talking over the user after the interruption begins (the overlap), measured here on the loudspeaker signal;
and noise robustness: the share of noise events that interrupt the assistant or make it take a turn.

All times are seconds on the timeline (0 = the scenario's start). User speech starts and ends at the voiced
span of each clip (energy above -40 dBFS in 10 ms blocks), not at the clip's padding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from assistant.replay.scenario import USER_TURN_ROLES, ScenarioRole
from duplex.events import Event, Interrupt, PlaybackStarted, TurnStarted

BLOCK_S = 0.02  # the loudspeaker activity resolution
SPEAKER_ACTIVE_DBFS = -45.0
STOPPED_AFTER_S = 0.2  # the voice counts as stopped once it has been silent this long
REACTION_WINDOW_S = 3.0  # a noise or backchannel is blamed for an interruption this long after it ends
PAUSE_MARGIN_S = 0.3  # a decision already under way when the user resumes still counts as a takeover


@dataclass(frozen=True)
class PlacedItem:
    """One user action on the timeline, as the metrics see it."""

    role: ScenarioRole
    onset_s: float
    end_s: float
    text: str = ""
    line: int = 0


@dataclass
class ScenarioMeasures:
    turn_takeovers: list[bool] = field(default_factory=list)
    turn_latencies_s: list[float] = field(default_factory=list)
    interrupt_takeovers: list[bool] = field(default_factory=list)
    interrupt_latencies_s: list[float] = field(default_factory=list)
    interrupt_stops_s: list[float] = field(default_factory=list)  # only interruptions the voice stopped for
    interrupt_not_stopped: int = 0
    stops_answered: int = 0  # a bare "Stop." that started an answer of its own
    pause_takeovers: list[bool] = field(default_factory=list)
    backchannel_takeovers: list[bool] = field(default_factory=list)
    noise_interrupts: list[bool] = field(default_factory=list)
    side_talk_takeovers: list[bool] = field(default_factory=list)
    echo_interrupts: int = 0
    echo_answers: int = 0

    def to_json(self) -> dict:
        return asdict(self)


def voiced_span(samples: np.ndarray, rate: int = 16000, threshold_dbfs: float = -40.0) -> tuple[float, float]:
    """(first, last) voiced second of a mono float clip; the whole clip when nothing is that loud."""
    block = rate // 100
    usable = len(samples) // block * block
    if usable == 0:
        return 0.0, len(samples) / rate
    power = np.mean(samples[:usable].reshape(-1, block).astype(np.float64) ** 2, axis=1)
    loud = np.flatnonzero(10 * np.log10(power + 1e-12) > threshold_dbfs)
    return (loud[0] / 100, (loud[-1] + 1) / 100) if loud.size else (0.0, len(samples) / rate)


def speaker_activity(speaker: np.ndarray, rate: int = 16000) -> np.ndarray:
    """Per 20 ms block: was the assistant audible?"""
    block = int(rate * BLOCK_S)
    usable = len(speaker) // block * block
    power = np.mean(speaker[:usable].reshape(-1, block).astype(np.float64) ** 2, axis=1)
    return 10 * np.log10(power + 1e-12) > SPEAKER_ACTIVE_DBFS


def stop_time(active: np.ndarray, from_s: float, until_s: float) -> float | None:
    """First time >= ``from_s`` after which the voice stays silent for ``STOPPED_AFTER_S`` (None: it never did)."""
    need = round(STOPPED_AFTER_S / BLOCK_S)
    first = int(np.floor(from_s / BLOCK_S))
    last = min(len(active), int(np.ceil(until_s / BLOCK_S)) + need)
    run = 0
    for k in range(max(first, 0), last):
        run = 0 if active[k] else run + 1
        if run >= need:
            return (k - need + 1) * BLOCK_S
    return None


class _Log:
    """The events a replay needs, on timeline seconds."""

    def __init__(self, events: list[Event], start_time: float) -> None:
        self.start_time = start_time
        self.turns = [e for e in events if isinstance(e, TurnStarted)]
        self.interrupts = [e for e in events if isinstance(e, Interrupt)]
        first_playback: dict[int, float] = {}
        for event in events:
            if isinstance(event, PlaybackStarted):
                first_playback.setdefault(event.turn_id, self.at(event))
        self.first_playback = first_playback  # turn id -> first audio of that turn

    def at(self, event: Event) -> float:
        return event.time - self.start_time

    def answers_after(self, from_s: float, until_s: float) -> list[float]:
        """First-audio times of turns that started in [from_s, until_s] (the answers to speech at ``from_s``)."""
        return sorted(self.first_playback[t.turn_id] for t in self.turns
                      if from_s <= self.at(t) <= until_s and t.turn_id in self.first_playback)

    def interrupts_in(self, from_s: float, until_s: float) -> list[Interrupt]:
        return [i for i in self.interrupts if from_s <= self.at(i) <= until_s]

    def turns_in(self, from_s: float, until_s: float) -> list[TurnStarted]:
        return [t for t in self.turns if from_s <= self.at(t) <= until_s]


def measure(items: list[PlacedItem], events: list[Event], start_time: float, speaker: np.ndarray,
            duration_s: float, echo: bool = False, rate: int = 16000) -> ScenarioMeasures:
    """Score one replay: every user item yields a sample of the metric its role belongs to."""
    log = _Log(events, start_time)
    active = speaker_activity(speaker, rate)
    result = ScenarioMeasures()
    ordered = sorted(items, key=lambda i: i.onset_s)
    reactions = {ScenarioRole.BACKCHANNEL: result.backchannel_takeovers, ScenarioRole.NOISE: result.noise_interrupts,
                 ScenarioRole.SIDE_TALK: result.side_talk_takeovers}  # taking the turn over these is wrong

    def next_user_onset(item: PlacedItem) -> float:
        later = [o.onset_s for o in ordered if o.onset_s > item.onset_s and o.role in USER_TURN_ROLES]
        return min(later) if later else duration_s

    def speaking_at(t: float) -> bool:
        k = int(t / BLOCK_S)
        return bool(active[max(0, k - 25):k + 1].any())  # audible within the last half second

    def record_stop(item: PlacedItem, window_end: float) -> None:
        """How long the voice went on over an interruption (or that it never stopped)."""
        stopped = stop_time(active, item.onset_s, window_end)
        if stopped is None or stopped > item.end_s + REACTION_WINDOW_S:
            result.interrupt_not_stopped += 1
        else:
            result.interrupt_stops_s.append(stopped - item.onset_s)

    for item in ordered:
        if item.role is ScenarioRole.TYPED:
            continue  # typed turns are not part of the spoken turn-taking figures
        window_end = next_user_onset(item)
        if item.role is ScenarioRole.QUERY or (item.role is ScenarioRole.INTERRUPTION
                                               and not speaking_at(item.onset_s)):
            answers = log.answers_after(item.onset_s, window_end)
            result.turn_takeovers.append(bool(answers))
            if answers:
                result.turn_latencies_s.append(answers[0] - item.end_s)
        elif item.role is ScenarioRole.STOP:  # "Stop.": the voice must stop, and nothing may answer it
            record_stop(item, window_end)
            result.stops_answered += bool(log.turns_in(item.onset_s, window_end))
        elif item.role is ScenarioRole.INTERRUPTION:
            cut = log.interrupts_in(item.onset_s, window_end)
            answers = log.answers_after(item.onset_s, window_end)
            result.interrupt_takeovers.append(bool(cut) and bool(answers))
            if cut and answers:
                result.interrupt_latencies_s.append(answers[0] - item.end_s)
            record_stop(item, window_end)
        elif item.role is ScenarioRole.BEFORE_PAUSE:
            resumed = window_end
            took = log.turns_in(item.end_s, resumed + PAUSE_MARGIN_S)
            result.pause_takeovers.append(bool(took))
        elif item.role in reactions:
            until = item.end_s + REACTION_WINDOW_S
            reacted = bool(log.interrupts_in(item.onset_s, until) or log.turns_in(item.onset_s, until))
            reactions[item.role].append(reacted)
    if echo:
        result.echo_answers = len(log.turns)
        blamed = [i for i in log.interrupts
                  if not any(o.onset_s <= log.at(i) <= o.end_s + REACTION_WINDOW_S for o in ordered)]
        result.echo_interrupts = len(blamed)
    return result


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def rate(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 3) if flags else None


def summarise(all_measures: list[ScenarioMeasures]) -> dict:
    """Pool every scenario's samples into the figures the eval prints and writes."""
    pooled = ScenarioMeasures()
    for m in all_measures:
        for name, value in vars(m).items():
            if isinstance(value, list):
                getattr(pooled, name).extend(value)
            else:
                setattr(pooled, name, getattr(pooled, name) + value)
    return {
        "turn_takeover_rate": rate(pooled.turn_takeovers), "turn_samples": len(pooled.turn_takeovers),
        "turn_latency_p50_s": percentile(pooled.turn_latencies_s, 50),
        "turn_latency_p90_s": percentile(pooled.turn_latencies_s, 90),
        "interrupt_takeover_rate": rate(pooled.interrupt_takeovers),
        "interrupt_samples": len(pooled.interrupt_takeovers),
        "interrupt_latency_p50_s": percentile(pooled.interrupt_latencies_s, 50),
        "interrupt_latency_p90_s": percentile(pooled.interrupt_latencies_s, 90),
        "interrupt_stop_p50_s": percentile(pooled.interrupt_stops_s, 50),
        "interrupt_stop_p90_s": percentile(pooled.interrupt_stops_s, 90),
        "interrupt_not_stopped": pooled.interrupt_not_stopped,
        "stops_answered": pooled.stops_answered,
        "pause_takeover_rate": rate(pooled.pause_takeovers), "pause_samples": len(pooled.pause_takeovers),
        "backchannel_takeover_rate": rate(pooled.backchannel_takeovers),
        "backchannel_samples": len(pooled.backchannel_takeovers),
        "noise_interrupt_rate": rate(pooled.noise_interrupts), "noise_samples": len(pooled.noise_interrupts),
        "side_talk_takeover_rate": rate(pooled.side_talk_takeovers),
        "side_talk_samples": len(pooled.side_talk_takeovers),
        "echo_interrupt_rate": (round(pooled.echo_interrupts / pooled.echo_answers, 3)
                                if pooled.echo_answers else None),
        "echo_answers": pooled.echo_answers,
    }


# Published figures to set ours beside. Full-Duplex-Bench v1.0's results table (arXiv 2503.04721; the same
# table, kept up to date, is in github.com/DanielLin94144/Full-Duplex-Bench v1_v1.5/README.md, which adds
# GPT-Realtime). Pause TOR = the synthetic set; turn-taking TOR = the Candor set. None = not reported there.
# FD-Bench (arXiv 2507.19040) evaluates Moshi, Freeze-Omni and VITA-1.5 with its own protocol; its figures are
# not reproduced here because we could not verify them against the paper's tables.
PUBLISHED_SOURCE = "Full-Duplex-Bench v1.0 results table (arXiv 2503.04721; GPT-Realtime from the benchmark's README)"
PUBLISHED = {
    "Moshi": {"pause_takeover_rate": 0.985, "backchannel_takeover_rate": 1.000, "turn_takeover_rate": 0.941,
              "turn_latency_s": 0.265, "interrupt_takeover_rate": 1.000, "interrupt_latency_s": 0.257},
    "Freeze-Omni": {"pause_takeover_rate": 0.642, "backchannel_takeover_rate": 0.636, "turn_takeover_rate": 0.336,
                    "turn_latency_s": 0.953, "interrupt_takeover_rate": 0.867, "interrupt_latency_s": 1.409},
    "Gemini Live 2.0": {"pause_takeover_rate": 0.255, "backchannel_takeover_rate": 0.091,
                        "turn_takeover_rate": 0.655, "turn_latency_s": 1.301, "interrupt_takeover_rate": 0.891,
                        "interrupt_latency_s": 1.183},
    "GPT-Realtime": {"pause_takeover_rate": 0.010, "backchannel_takeover_rate": 0.000, "turn_takeover_rate": 1.000,
                     "turn_latency_s": 1.470, "interrupt_takeover_rate": 0.970, "interrupt_latency_s": 1.500},
}
