"""``assistant replay`` and ``assistant eval``: argument parsing and the two commands.

Scenario files are all loaded and validated before any model loads, so a malformed file costs nothing:
its ``ScenarioError`` (a ``ConfigError``) becomes the CLI's one ``error: FILE:LINE: ...`` line, exit 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

EXIT_EXPECTATION_FAILED = 1


def _data_dir(raw: Path | None) -> Path | None:
    from assistant.config import ConfigError
    from assistant.recordings import find_data_dir

    found = find_data_dir(raw)
    if raw is not None and found is None:
        raise ConfigError(f"--data {raw}: not a recordings folder (no MANIFEST.tsv there)")
    return found


def _run(args: argparse.Namespace, paths: list[Path], build_config: Callable) -> int:
    from assistant.replay.report import report
    from assistant.replay.runner import ReplayOptions, run_replay
    from assistant.replay.scenario import load_scenarios

    data_dir = _data_dir(args.data)
    scenarios = load_scenarios(paths, data_dir)  # every file validated before a model loads
    if getattr(args, "only", None):
        wanted = set(args.only)
        scenarios = [s for s in scenarios if s.name in wanted]
        if not scenarios:
            from assistant.config import ConfigError

            raise ConfigError(f"--only {' '.join(args.only)}: no scenario of that name")
    config = build_config(args)
    from assistant.session import AssistantModels

    models = AssistantModels(config, progress=not args.quiet)
    options = ReplayOptions(out_dir=args.out, clock=args.clock, data_dir=data_dir, progress=not args.quiet)
    results = run_replay(models, scenarios, options)
    payload = report(results, args.json)
    print(f"per-run files (events.jsonl, audio.wav, timeline.png, metrics.json) under {args.out}")
    return EXIT_EXPECTATION_FAILED if payload["counts"]["failed"] else 0


def add_replay_commands(commands, add_model_options: Callable, build_config: Callable) -> None:
    def common(parser: argparse.ArgumentParser, out_default: str) -> None:
        parser.add_argument("--out", type=Path, default=Path(out_default),
                            help=f"folder for each run's files (default {out_default})")
        parser.add_argument("--clock", choices=("virtual", "real"),
                            help="real: paced in real time; virtual: as fast as the machine allows, model "
                                 "work charged at its measured time (default: each scenario's own, virtual)")
        parser.add_argument("--data", type=Path,
                            help="the shared recordings folder (default ../shared/data/audio when present)")
        parser.add_argument("--json", type=Path, help="write the metrics and per-scenario results here")
        parser.add_argument("--only", nargs="+", metavar="NAME", help="run only the scenarios with these names")
        parser.add_argument("--quiet", action="store_true", help="no progress bars or loading messages")
        add_model_options(parser)

    replay = commands.add_parser("replay", help="play scenario files into the assistant and check expectations")
    replay.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="scenario files or folders")
    common(replay, "out/replay")
    replay.set_defaults(handler=lambda args: _run(args, args.paths, build_config))

    evaluate = commands.add_parser("eval", help="run the scenario library and print the duplex metrics table")
    evaluate.add_argument("--scenarios", type=Path, nargs="+", help="scenario folders (default: the library)")
    common(evaluate, "out/eval")

    def command_eval(args: argparse.Namespace) -> int:
        from assistant.replay.scenario import LIBRARY_DIR

        return _run(args, args.scenarios or [LIBRARY_DIR], build_config)

    evaluate.set_defaults(handler=command_eval)
