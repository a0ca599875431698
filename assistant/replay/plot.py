"""A timeline picture of one replay: who spoke when, what the listener decided, where answers were cut."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from assistant.replay.metrics import PlacedItem
from assistant.replay.scenario import ScenarioRole
from duplex.decision import StateToken
from duplex.events import Duck, Event, Interrupt, Resume, StateDecided, TurnStarted

ROLE_COLOURS = {ScenarioRole.QUERY: "tab:blue", ScenarioRole.INTERRUPTION: "tab:purple", ScenarioRole.STOP: "tab:red",
                ScenarioRole.BACKCHANNEL: "tab:cyan", ScenarioRole.NOISE: "tab:gray",
                ScenarioRole.SIDE_TALK: "tab:olive",
                ScenarioRole.BEFORE_PAUSE: "tab:blue", ScenarioRole.AFTER_PAUSE: "tab:blue",
                ScenarioRole.TYPED: "tab:green", ScenarioRole.CAMERA: "tab:brown", ScenarioRole.CONTEXT: "tab:blue"}
TOKEN_COLOURS = {StateToken.QUERY: "tab:red", StateToken.IGNORE: "tab:gray", StateToken.TEXT_QUERY: "tab:green"}


def _envelope(samples: np.ndarray, rate: int = 16000, block_s: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    block = int(rate * block_s)
    usable = len(samples) // block * block
    rms = np.sqrt(np.mean(samples[:usable].reshape(-1, block).astype(np.float64) ** 2, axis=1))
    return np.arange(len(rms)) * block_s, rms


def plot_timeline(path: Path, title: str, placed: list[PlacedItem], events: list[Event], start_time: float,
                  mic: np.ndarray, speaker: np.ndarray) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    duration = max(len(mic), len(speaker)) / 16000
    width = min(40.0, max(10.0, duration / 3))
    figure, (user_axis, assistant_axis, decision_axis) = plt.subplots(
        3, 1, figsize=(width, 5.5), sharex=True, gridspec_kw={"height_ratios": [2, 2, 1]})
    t, level = _envelope(mic)
    user_axis.fill_between(t, level, color="tab:blue", alpha=0.5, linewidth=0)
    for item in placed:
        colour = ROLE_COLOURS[item.role]
        user_axis.axvspan(item.onset_s, max(item.end_s, item.onset_s + 0.05), color=colour, alpha=0.15)
        user_axis.text(item.onset_s, user_axis.get_ylim()[1] * 0.9 if level.size else 0.9, item.role.value,
                       fontsize=7, color=colour, va="top")
    user_axis.set_ylabel("user (mic)")
    t, level = _envelope(speaker)
    assistant_axis.fill_between(t, level, color="tab:orange", alpha=0.6, linewidth=0)
    assistant_axis.set_ylabel("assistant")

    def at(event: Event) -> float:
        return event.time - start_time

    for event in events:
        if isinstance(event, Interrupt):
            for axis in (user_axis, assistant_axis, decision_axis):
                axis.axvline(at(event), color="red", linewidth=1.2)
        elif isinstance(event, Duck):
            assistant_axis.axvline(at(event), color="tab:red", linestyle=":", linewidth=0.8)
        elif isinstance(event, Resume):
            assistant_axis.axvline(at(event), color="tab:green", linestyle=":", linewidth=0.8)
        elif isinstance(event, TurnStarted):
            assistant_axis.text(at(event), 0, f"turn {event.turn_id}", fontsize=7, va="bottom")
        elif isinstance(event, StateDecided):
            colour = TOKEN_COLOURS[event.token]
            decision_axis.plot([at(event)], [0.5], marker="v", color=colour)
            label = f"{event.token.value} {event.text[:24]}"
            decision_axis.text(at(event), 0.62, label, fontsize=6, rotation=20, color=colour)
    decision_axis.set_ylim(0, 1.4)
    decision_axis.set_yticks([])
    decision_axis.set_ylabel("decisions")
    decision_axis.set_xlabel("seconds (red line: interrupt; dotted: voice paused / resumed)")
    decision_axis.set_xlim(0, duration)
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path
