"""A timeline picture of one replay: who spoke when, what the listener decided, where answers were cut."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from assistant.replay.metrics import PlacedItem

ROLE_COLOURS = {"query": "tab:blue", "interruption": "tab:purple", "stop": "tab:red", "backchannel": "tab:cyan", "noise": "tab:gray",
                "side_talk": "tab:olive", "before_pause": "tab:blue", "after_pause": "tab:blue",
                "typed": "tab:green", "camera": "tab:brown", "context": "tab:blue"}
TOKEN_COLOURS = {"<1>": "tab:red", "<2>": "tab:gray", "<3>": "tab:green"}


def _envelope(samples: np.ndarray, rate: int = 16000, block_s: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    block = int(rate * block_s)
    usable = len(samples) // block * block
    rms = np.sqrt(np.mean(samples[:usable].reshape(-1, block).astype(np.float64) ** 2, axis=1))
    return np.arange(len(rms)) * block_s, rms


def plot_timeline(path: Path, title: str, placed: list[PlacedItem], records: list[dict], start_time: float,
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
        colour = ROLE_COLOURS.get(item.role, "tab:blue")
        user_axis.axvspan(item.onset_s, max(item.end_s, item.onset_s + 0.05), color=colour, alpha=0.15)
        user_axis.text(item.onset_s, user_axis.get_ylim()[1] * 0.9 if level.size else 0.9, item.role,
                       fontsize=7, color=colour, va="top")
    user_axis.set_ylabel("user (mic)")
    t, level = _envelope(speaker)
    assistant_axis.fill_between(t, level, color="tab:orange", alpha=0.6, linewidth=0)
    assistant_axis.set_ylabel("assistant")

    def at(record: dict) -> float:
        return record["time"] - start_time

    for record in records:
        kind = record["kind"]
        if kind == "Interrupt":
            for axis in (user_axis, assistant_axis, decision_axis):
                axis.axvline(at(record), color="red", linewidth=1.2)
        elif kind == "Duck":
            assistant_axis.axvline(at(record), color="tab:red", linestyle=":", linewidth=0.8)
        elif kind == "Resume":
            assistant_axis.axvline(at(record), color="tab:green", linestyle=":", linewidth=0.8)
        elif kind == "TurnStarted":
            assistant_axis.text(at(record), 0, f"turn {record['turn_id']}", fontsize=7, va="bottom")
        elif kind == "StateDecided":
            colour = TOKEN_COLOURS.get(record["token"], "black")
            decision_axis.plot([at(record)], [0.5], marker="v", color=colour)
            label = f"{record['token']} {record.get('text', '')[:24]}"
            decision_axis.text(at(record), 0.62, label, fontsize=6, rotation=20, color=colour)
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
