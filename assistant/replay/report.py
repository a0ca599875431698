"""What ``assistant replay`` and ``assistant eval`` print and write."""

from __future__ import annotations

import json
import os
import platform
from datetime import date
from pathlib import Path

from assistant.replay.metrics import PUBLISHED, PUBLISHED_SOURCE, summarise
from assistant.replay.runner import ScenarioResult

# (label, our key, published key, unit, better)
ROWS = [
    ("pause handling: takeover rate", "pause_takeover_rate", "pause_takeover_rate", "", "lower"),
    ("backchannel: takeover rate", "backchannel_takeover_rate", "backchannel_takeover_rate", "", "lower"),
    ("turn-taking: takeover rate", "turn_takeover_rate", "turn_takeover_rate", "", "higher"),
    ("turn-taking latency p50 (s)", "turn_latency_p50_s", "turn_latency_s", "s", "lower"),
    ("turn-taking latency p90 (s)", "turn_latency_p90_s", None, "s", "lower"),
    ("user interruption: takeover rate", "interrupt_takeover_rate", "interrupt_takeover_rate", "", "higher"),
    ("interruption latency p50 (s)", "interrupt_latency_p50_s", "interrupt_latency_s", "s", "lower"),
    ("interruption latency p90 (s)", "interrupt_latency_p90_s", None, "s", "lower"),
    ("stop latency (overlap) p50 (s)", "interrupt_stop_p50_s", None, "s", "lower"),
    ("stop latency (overlap) p90 (s)", "interrupt_stop_p90_s", None, "s", "lower"),
    ("bare \"Stop.\": answered instead of silence (count)", "stops_answered", None, "", "lower"),
    ("noise interrupt rate", "noise_interrupt_rate", None, "", "lower"),
    ("talk to someone else: takeover rate", "side_talk_takeover_rate", None, "", "lower"),
    ("own voice (open speakers): interrupts per answer", "echo_interrupt_rate", None, "", "lower"),
]
SAMPLE_KEYS = {"pause_takeover_rate": "pause_samples", "backchannel_takeover_rate": "backchannel_samples",
               "turn_takeover_rate": "turn_samples", "interrupt_takeover_rate": "interrupt_samples",
               "noise_interrupt_rate": "noise_samples", "side_talk_takeover_rate": "side_talk_samples",
               "echo_interrupt_rate": "echo_answers"}


def _cell(value) -> str:
    return "—" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def metrics_table(summary: dict) -> str:
    models = list(PUBLISHED)
    lines = ["| metric (better) | ours (n) | " + " | ".join(models) + " |",
             "|---|---|" + "---|" * len(models)]
    for label, ours, published, _, better in ROWS:
        n = summary.get(SAMPLE_KEYS.get(ours, ""), "")
        mine = _cell(summary.get(ours)) + (f" ({n})" if n != "" else "")
        theirs = [_cell(PUBLISHED[m].get(published)) if published else "not reported" for m in models]
        lines.append(f"| {label} ({better}) | {mine} | " + " | ".join(theirs) + " |")
    lines.append(f"\nPublished figures: {PUBLISHED_SOURCE}. '—': no sample of ours; 'not reported': the source has "
                 "no such figure for that model.")
    return "\n".join(lines)


def status_lines(results: list[ScenarioResult]) -> list[str]:
    lines = []
    for r in results:
        if r.status == "skipped":
            lines.append(f"SKIP  {r.scenario.name}: {r.skip_reason}")
            continue
        tag = {"passed": "ok   ", "failed": "FAIL ", "known_failure": "known"}[r.status]
        timing = f"[{r.clock}, {r.timeline_s:.0f} s timeline in {r.wall_s:.1f} s]"
        lines.append(f"{tag} {r.scenario.name} {timing}" + (f" ({r.note})" if r.note else ""))
        for e in r.expectations:
            if not e.passed:
                lines.append(f"        {e.name}: {e.detail}")
        if r.status == "known_failure":
            lines.append(f"        known failure: {r.scenario.known_failure}")
    return lines


def report(results: list[ScenarioResult], json_path: Path | None = None, print_table: bool = True) -> dict:
    ran = [r for r in results if r.status != "skipped"]
    summary = summarise([r.measures for r in ran])
    counts = {s: sum(r.status == s for r in results) for s in ("passed", "failed", "known_failure", "skipped")}
    payload = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
               "python": platform.python_version(), **summary, "counts": counts,
               "clocks": sorted({r.clock for r in ran}), "wall_s": round(sum(r.wall_s for r in results), 1),
               "scenarios": [r.to_json() for r in results]}
    print("\n".join(status_lines(results)))
    print(f"\n{counts['passed']} passed, {counts['failed']} failed, {counts['known_failure']} known failures, "
          f"{counts['skipped']} skipped; {payload['wall_s']} s")
    if print_table and ran:
        print("\n" + metrics_table(summary))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(payload, indent=2, default=str))
    return payload
