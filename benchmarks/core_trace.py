"""The duplex core's behaviour as a trace, exactly reproducible: compare two checkouts of the core.

    python benchmarks/core_trace.py --out out/trace-after
    python benchmarks/core_trace.py --code ../old-checkout --out out/trace-before
    diff -r out/trace-before out/trace-after

Plays the core tests' scripted timelines (tests/test_duplex_core.py: a plain turn, an unfinished sentence,
a barge-in, a backchannel, a stray sound, a pause mid-sentence, typed messages, "Stop.", a failing model)
into a session with the fake models of tests/fakes.py on the deterministic virtual time of
tests/virtual_time.py, where every model call costs only what the fake declares. Each run writes its event
log (less the decision cost measured in wall time, and the event kinds only the newer code publishes) and
the history. The same code gives byte-identical files on any machine, loaded or idle, so any difference
between two checkouts is a difference in behaviour. ``--code DIR`` runs the duplex core (``duplex``,
``audio``) of another checkout; the fakes and the virtual time always come from this one.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
NEWER_KINDS = {"QueryHeard", "SpeechDismissed"}  # decisions on the bus: published by the newer core only
NEWER_FIELDS = {"overlaps_assistant"}
QUESTION, JOKE, UH_HUH, BOOK, TABLE, STOP = 300, 400, 500, 600, 700, 800


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def timelines(fakes) -> dict[str, tuple[dict, object, float]]:
    """name -> (ScriptedLLM options, timeline, tail seconds)"""
    from duplex.timeline import Timeline

    say = fakes.tone_speech
    hum = say(QUESTION, 0.2, level=0.011)
    return {
        "plain_turn": ({}, Timeline(1.0).add_audio(0.3, say(QUESTION, 1.2), "user"), 3.5),
        "unfinished": ({}, Timeline(1.0).add_audio(0.3, say(BOOK, 0.8), "part1"), 2.5),
        "barge_in": ({"extra_words": 40}, Timeline(1.0).add_audio(0.3, say(QUESTION, 1.0), "q1")
                     .add_audio(3.0, say(JOKE, 1.0), "q2"), 3.0),
        "backchannel": ({"extra_words": 30}, Timeline(1.0).add_audio(0.3, say(QUESTION, 1.0), "q")
                        .add_audio(2.6, say(UH_HUH, 0.4), "uh-huh"), 4.5),
        "stray_sound": ({"extra_words": 40}, Timeline(1.0).add_audio(0.3, say(QUESTION, 1.0), "q")
                        .add_audio(3.0, hum, "hum"), 2.5),
        "pause_mid_sentence": ({}, Timeline(1.0).add_audio(0.3, say(BOOK, 0.8), "part1")
                               .add_audio(1.6, say(TABLE, 0.8), "part2"), 2.5),
        "typed_interrupt": ({"extra_words": 40}, Timeline(1.0).add_audio(0.3, say(QUESTION, 1.0), "q")
                            .add_text(3.0, "Stop! What time is it?"), 2.0),
        "stop_then_question": ({"extra_words": 40}, Timeline(1.0).add_audio(0.3, say(QUESTION, 1.0), "q1")
                               .add_audio(3.0, say(STOP, 0.5), "stop").add_audio(5.0, say(JOKE, 1.0), "q2"), 2.5),
        "typed_stop": ({"extra_words": 40}, Timeline(1.0).add_audio(0.3, say(QUESTION, 1.0), "q")
                       .add_text(3.0, "Stop"), 1.5),
        "failing_model": ({"fail": True}, Timeline(1.0).add_audio(0.3, say(QUESTION, 1.0), "q1")
                          .add_audio(4.0, say(JOKE, 1.0), "q2"), 3.0),
    }


async def play(name: str, llm_options: dict, timeline, tail_s: float, fakes, virtual_time) -> dict:
    from duplex.bus import EventLog
    from duplex.options import DuplexOptions
    from duplex.session import DuplexSession, WorkerModels  # where it lives changed; the session has it
    from duplex.timeline import run_timeline

    log = EventLog()
    models = WorkerModels(fakes.PitchRecognizer(delay_s=0.05), fakes.ScriptedLLM(delay_s=0.005, **llm_options),
                          fakes.BeepSynthesizer(0.01))
    session = DuplexSession(models, fakes.KeywordDecider(0.01), fakes.EnergyVad,
                            DuplexOptions(output_sample_rate=16000), clock=virtual_time.VirtualClock(), event_log=log)
    virtual = virtual_time.VirtualTime(session.clock)
    async with virtual.attached(), session:
        await run_timeline(session, timeline, pacer=virtual, tail_s=tail_s)
    records = []
    for record in log.records:
        if record["kind"] in NEWER_KINDS:
            continue
        records.append({k: v for k, v in record.items() if k != "decide_ms" and k not in NEWER_FIELDS})
    history = [{"role": t.role, "text": t.text, "interrupted": t.interrupted, "typed": t.typed}
               for t in session.history]
    return {"events": records, "history": history}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for one JSON file per timeline")
    parser.add_argument("--code", type=Path, default=HERE, help="the checkout whose core runs (default: this one)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.code.resolve()))
    virtual_time = _load("tests.virtual_time", HERE / "tests" / "virtual_time.py")  # the fakes import it so
    fakes = _load("trace_fakes", HERE / "tests" / "fakes.py")
    args.out.mkdir(parents=True, exist_ok=True)
    import duplex.session

    print(f"the core that runs: {Path(duplex.session.__file__).parent}")
    for name, (llm_options, timeline, tail_s) in timelines(fakes).items():
        trace = asyncio.run(play(name, llm_options, timeline, tail_s, fakes, virtual_time))
        (args.out / f"{name}.json").write_text(json.dumps(trace, indent=1) + "\n")
        print(f"{name}: {len(trace['events'])} events, {len(trace['history'])} history turns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
