"""Voice-to-voice latency and barge-in stop time as a person at the browser experiences them.

    .venv/bin/python benchmarks/browser_latency.py [--runs 8] [--barge-ins 5] [--camera]

Starts ``assistant serve``'s server with the bundled models on 127.0.0.1 and drives Debian's chromium with
fake media: the microphone plays a WAV file (Piper voice), the camera Chromium's test pattern (only with
``--camera``; it is off by default so the figure is the audio path alone). Everything is measured inside
the page, on one clock (``performance.now()``), from the levels WebAudio reads every 10 ms on the
microphone track and on the assistant's incoming voice:

- voice-to-voice latency: first assistant audio above -45 dBFS minus the end of the question's speech in
  the microphone (last sample above -50 dBFS), one fresh call per run;
- barge-in stop: the old answer's last audio above -50 dBFS minus the onset of the interrupting speech in
  the microphone, i.e. the overlap the user hears, including network, jitter buffer and decoding.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.config import AssistantConfig  # noqa: E402
from assistant.session import AssistantModels  # noqa: E402
from audio.frames import AudioFrame  # noqa: E402
from tests.browser import chromium, levels, open_call, page_events, speech_spans, write_microphone_wav  # noqa: E402
from ui.webrtc.options import ServerOptions  # noqa: E402
from ui.webrtc.server import ChatServer  # noqa: E402

QUESTIONS = ["What is the capital of France?", "How many legs does a spider have?", "What colour is the sky?",
             "Name a fruit that is yellow.", "What is two plus two?", "Where do penguins live?",
             "What do bees make?", "How many days are in a week?"]
STORY = "Tell me a long story about a brave little dragon."
LEAD_S = 1.0


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def server_turn_latency(log: Path | None) -> float | None:
    """The newest call's own figure: first answer audio pulled by the voice track minus the end of the user's
    speech as the session heard it (both on the server's clock). The browser figure minus this one is the
    trip in and out: encoding, network, jitter buffers, decoding and the page's level detectors."""
    if log is None:
        return None
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    ends = [e["end"] for e in events if e["kind"] == "SpeechEnded"]
    starts = [e["time"] for e in events if e["kind"] == "PlaybackStarted"]
    if not ends or not starts:
        return None
    return next((t - ends[0] for t in starts if t > ends[0]), None)


async def one_turn(server, say, question: str, workdir: Path, camera: bool) -> float | None:
    wav = write_microphone_wav(workdir / "turn.wav", [(LEAD_S, say(question))], LEAD_S + 10)
    async with chromium(wav) as browser:
        page = await open_call(browser, server.url, **({} if camera else {"video": "0"}))
        await page.wait_for_function("() => window.assistantCall.events.some(e => e.kind === 'PlaybackStarted')",
                                     timeout=30000)
        await asyncio.sleep(1.0)
        local, remote = await levels(page, "local"), await levels(page, "remote")
    spoken = speech_spans(local)
    if not spoken:
        return None
    end = spoken[0][1]
    first = next((t for t, db in remote if t > end and db > -45), None)
    return None if first is None else (first - end) / 1000


async def one_barge_in(server, say, workdir: Path, camera: bool) -> tuple[float | None, float | None]:
    story, question = say(STORY), say("Stop. What is two plus two?")
    at = LEAD_S + len(story) / 16000 + 7.0
    wav = write_microphone_wav(workdir / "barge.wav", [(LEAD_S, story), (at, question)], at + 10)
    async with chromium(wav) as browser:
        page = await open_call(browser, server.url, **({} if camera else {"video": "0"}))
        await page.wait_for_function(
            "() => window.assistantCall.events.some(e => e.kind === 'PlaybackStarted' && e.turn_id === 2)",
            timeout=60000)
        await asyncio.sleep(1.5)
        local, remote = await levels(page, "local"), await levels(page, "remote")
        events = await page_events(page)
    spans = speech_spans(local)
    if len(spans) < 2:
        return None, None
    onset, end = spans[1]
    voice = [s for s in speech_spans(remote, min_gap_ms=150) if s[0] < onset and s[1] > onset - 500]
    stop = (voice[-1][1] - onset) / 1000 if voice else None
    interrupted = any(e.get("kind") == "Interrupt" for e in events)
    answer = next((t for t, db in remote if t > end and db > -45), None)
    return stop, ((answer - end) / 1000 if answer is not None and interrupted else None)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--barge-ins", type=int, default=5)
    parser.add_argument("--camera", action="store_true", help="also send the fake camera")
    args = parser.parse_args()
    config = AssistantConfig()
    config.llm.max_answer_tokens = 60
    models = AssistantModels(config, progress=True)
    synthesizer = models.stack.synthesizer

    def say(text: str) -> np.ndarray:
        return AudioFrame.concatenate(list(synthesizer.synthesize(text))).convert(sample_rate=16000).mono_float32()

    latencies, server_side, stops, answers = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        log_dir = Path(tmp) / "calls"
        log_dir.mkdir()
        server = ChatServer(models.new_session, ServerOptions(port=0, event_log_dir=str(log_dir)))
        await server.start()
        for k in range(args.runs):
            before = set(log_dir.glob("call-*.jsonl"))
            latency = await one_turn(server, say, QUESTIONS[k % len(QUESTIONS)], Path(tmp), args.camera)
            new_logs = sorted(set(log_dir.glob("call-*.jsonl")) - before)
            own = server_turn_latency(new_logs[0] if len(new_logs) == 1 else None)
            print(f"turn {k + 1}: voice-to-voice {latency if latency is None else round(latency, 3)} s "
                  f"(server side {own if own is None else round(own, 3)} s)", flush=True)
            if latency is not None:
                latencies.append(latency)
            if own is not None:
                server_side.append(own)
        for k in range(args.barge_ins):
            stop, answer = await one_barge_in(server, say, Path(tmp), args.camera)
            print(f"barge-in {k + 1}: old answer quiet after {stop} s, new answer after {answer} s", flush=True)
            if stop is not None:
                stops.append(stop)
            if answer is not None:
                answers.append(answer)
        await server.stop()
    print(f"\n{date.today()} {platform.node()} {os.cpu_count()} cores, camera {'on' if args.camera else 'off'}")
    print(f"voice-to-voice latency: p50 {percentile(latencies, 50):.2f} s, p90 {percentile(latencies, 90):.2f} s "
          f"({len(latencies)}/{args.runs} runs measured)")
    print(f"of which the server side (end of speech heard -> first audio pulled by the track): "
          f"p50 {percentile(server_side, 50):.2f} s, p90 {percentile(server_side, 90):.2f} s")
    print(f"barge-in stop seen by the browser: p50 {percentile(stops, 50):.3f} s, p90 {percentile(stops, 90):.3f} s "
          f"({len(stops)}/{args.barge_ins})")
    print(f"interrupting question answered after: p50 {percentile(answers, 50):.2f} s "
          f"({len(answers)}/{args.barge_ins})")


if __name__ == "__main__":
    asyncio.run(main())
