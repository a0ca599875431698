"""Compare two ``assistant eval`` runs scenario by scenario: did a change keep the behaviour?

    python benchmarks/compare_replays.py out/eval-before out/eval-after [--tolerance-s 0.3] [--json FILE]

For every scenario present in both folders it compares, from each run's events.jsonl and metrics.json:
  decisions   the state token of each segment (final and interim), in order
  floor       who spoke when: hand-offs, turns started (worker, question), interruptions, turns ended
              (worker, status, the words heard), each with its time on the session clock
  history     the conversation history at the end (role, text, interrupted)
  outcome     the scenario's pass/fail status and each expectation's verdict
Times are compared within ``--tolerance-s``: the virtual clock charges model work at its measured wall-clock
cost, so two runs of the same code differ by the machine's jitter (run the same code twice to see how much).

Two levels are reported. *Structure* leaves out what that jitter moves: interim decisions (one more or
less while a long segment goes on), where an interruption cut the answer (the words heard), the text of
answers (they follow from the cut text in the history) and times. *Detail* is everything above. A
difference in structure is a difference in behaviour; one in detail alone must be compared against two
runs of the same code (``--noise BEFORE2``: the scenarios whose details differ there too are marked).
Exit status 1 when any scenario's structure differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FLOOR_KINDS = ("HandOff", "TurnStarted", "Interrupt", "TurnEnded")


@dataclass
class RunView:
    """What of one scenario's run is compared."""

    decisions: list[tuple] = field(default_factory=list)  # (segment, token, interim)
    floor: list[tuple[str, float, tuple]] = field(default_factory=list)  # (kind, time, details)
    history: list[tuple] = field(default_factory=list)
    status: str = ""
    expectations: dict[str, bool] = field(default_factory=dict)


def _floor_details(record: dict) -> tuple:
    kind = record["kind"]
    if kind == "HandOff":
        return record["speaker"], record["listener"]
    if kind == "TurnStarted":
        return record["worker"], record["question"]
    if kind == "Interrupt":
        return (record["reason"],)
    return record["worker"], record["status"], record["spoken"]


def load_run(folder: Path) -> RunView:
    view = RunView()
    for line in (folder / "events.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "StateDecided":
            view.decisions.append((record["segment_id"], record["token"], record["interim"]))
        elif record["kind"] in FLOOR_KINDS:
            view.floor.append((record["kind"], record["time"], _floor_details(record)))
    metrics = json.loads((folder / "metrics.json").read_text())
    view.history = [(h["role"], h["text"], h["interrupted"]) for h in metrics["history"]]
    view.status = metrics["status"]
    view.expectations = {e["name"]: e["passed"] for e in metrics["expectations"]}
    return view


def differences(before: RunView, after: RunView, tolerance_s: float) -> list[str]:
    found = []
    if before.decisions != after.decisions:
        found.append(f"decisions: {before.decisions} -> {after.decisions}")
    floor_before = [(kind, details) for kind, _, details in before.floor]
    floor_after = [(kind, details) for kind, _, details in after.floor]
    if floor_before != floor_after:
        found.append(f"floor: {floor_before} -> {floor_after}")
    else:
        for (kind, t0, _), (_, t1, _) in zip(before.floor, after.floor):
            if abs(t1 - t0) > tolerance_s:
                found.append(f"floor time: {kind} at {t0:.2f} s -> {t1:.2f} s")
    if before.history != after.history:
        found.append(f"history: {before.history} -> {after.history}")
    if before.status != after.status or before.expectations != after.expectations:
        found.append(f"outcome: {before.status} {before.expectations} -> {after.status} {after.expectations}")
    return found


def structure(view: RunView) -> RunView:
    """``view`` without what the virtual clock's jitter moves (see the module's docstring)."""
    floor = [(kind, 0.0, details[:2] if kind == "TurnEnded" else details) for kind, _, details in view.floor]
    history = [(role, text if role == "user" else "", interrupted) for role, text, interrupted in view.history]
    return RunView([d for d in view.decisions if not d[2]], floor, history, view.status, view.expectations)


def compare(before_dir: Path, after_dir: Path, tolerance_s: float,
            level: Callable[[RunView], RunView] = lambda view: view) -> dict[str, list[str]]:
    def runs(folder: Path) -> set[str]:
        return {p.name for p in folder.iterdir() if (p / "events.jsonl").exists()}

    before, after = runs(before_dir), runs(after_dir)
    report = {name: ["run in only one of the two folders"] for name in sorted(before ^ after)}
    for name in sorted(before & after):
        report[name] = differences(level(load_run(before_dir / name)), level(load_run(after_dir / name)),
                                   tolerance_s)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--tolerance-s", type=float, default=0.3, help="allowed time shift (default 0.3 s)")
    parser.add_argument("--noise", type=Path, metavar="BEFORE2",
                        help="a second run of the first folder's code: marks the details that differ there too")
    parser.add_argument("--json", type=Path, help="write the per-scenario differences here")
    args = parser.parse_args(argv)
    structural = compare(args.before, args.after, float("inf"), structure)
    detail = compare(args.before, args.after, args.tolerance_s)
    noise = compare(args.before, args.noise, args.tolerance_s) if args.noise else {}
    changed = {name: diffs for name, diffs in structural.items() if diffs}
    for name, diffs in changed.items():
        print(f"{name} (structure):")
        for diff in diffs:
            print(f"  {diff}")
    detail_only = sorted(name for name, diffs in detail.items() if diffs and name not in changed)
    for name in detail_only:
        also = " (differs between the two runs of the same code too)" if noise.get(name) else ""
        print(f"{name}: details only{also}: {'; '.join(d.split(':')[0] for d in detail[name])}")
    print(f"{len(structural)} scenarios compared: structure differs in {len(changed)}, details alone in "
          f"{len(detail_only)}" + (f" ({sum(1 for n in detail_only if noise.get(n))} of them also between two "
                                   f"runs of the same code; {sum(1 for d in noise.values() if d)} scenarios "
                                   f"differ in detail there)" if args.noise else ""))
    if args.json:
        args.json.write_text(json.dumps({"structure": structural, "detail": detail, "noise": noise}, indent=2))
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
