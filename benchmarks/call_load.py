"""How many calls at once this machine serves: first-answer latency with N headless WebRTC calls asking at once.

    .venv/bin/python benchmarks/call_load.py [--calls 1 2 3 4] [--rounds 3]

Starts ``assistant serve`` (bundled models) as its own process on 127.0.0.1 and, from this process, N real
aiortc peers (tests/webrtc_client.py). In each round every call's microphone plays a different spoken question
(the bundled Piper voice) at the same moment; the figure per turn is, on this process's clock, the first
received assistant audio above -45 dBFS minus the end of that call's question. A turn with no answer within
15 s counts as missed. Prints p50 / p90 / max per N: the basis of ``--max-sessions``' default.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audio.frames import AudioFrame  # noqa: E402
from tests.webrtc_client import ClientCall, SignalMicrophone  # noqa: E402

QUESTIONS = ["What is the capital of France?", "How many legs does a spider have?", "What colour is the sky?",
             "Name a large animal.", "What is two plus two?", "Which planet is the biggest?",
             "What do bees make?", "How many days are in a week?"]
LEAD_S, ANSWER_WAIT_S, VOICE_DBFS = 1.5, 15.0, -45.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def wait_for_server(base: str, token: str, process: subprocess.Popen, timeout: float = 180.0) -> None:
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"assistant serve exited with {process.returncode}")
            try:
                async with http.get(f"{base}/health", headers={"Authorization": f"Bearer {token}"}) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit("assistant serve did not answer within 180 s")


async def one_round(base: str, token: str, speech: list[np.ndarray]) -> list[float | None]:
    calls = []
    for signal in speech:
        lead = np.zeros(int(LEAD_S * 16000), np.float32)
        microphone = SignalMicrophone(np.concatenate([lead, signal]))
        call = ClientCall(microphone)
        calls.append((call, microphone, len(signal) / 16000))
    for call, _, _ in calls:
        await call.offer(base, token)
        if call.status != 200:
            raise SystemExit(f"offer refused: {call.status} {call.body}")
    await asyncio.sleep(LEAD_S + max(d for _, _, d in calls) + ANSWER_WAIT_S)
    latencies: list[float | None] = []
    for call, microphone, duration in calls:
        spoken_end = (microphone.start or 0.0) + LEAD_S + duration
        heard = [t for t, level in call.voice_levels if t > spoken_end and level > VOICE_DBFS]
        latencies.append(heard[0] - spoken_end if heard else None)
        await call.close()
    await asyncio.sleep(2.0)  # the server frees the slots
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from assistant.backends import load_synthesizer
    from assistant.config import AssistantConfig
    from audio.tts import PiperSynthesizer

    piper = load_synthesizer(AssistantConfig().tts)
    assert isinstance(piper, PiperSynthesizer)  # the default voice; steady() is Piper's
    voice = piper.steady()
    speech = [AudioFrame.concatenate(list(voice.synthesize(q))).convert(sample_rate=16000).mono_float32()
              for q in QUESTIONS]
    port, token = free_port(), secrets.token_urlsafe(12)
    server = subprocess.Popen([str(ROOT / ".venv/bin/assistant"), "serve", "--port", str(port), "--token", token,
                               "--max-sessions", str(max(args.calls)), "--quiet"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_for_server(base, token, server)
        await one_round(base, token, speech[:1])  # warm-up: the first call of a process is cold
        rows = []
        for n in args.calls:
            results: list[float | None] = []
            for r in range(args.rounds):
                results += await one_round(base, token, [speech[(r * n + i) % len(speech)] for i in range(n)])
            answered = [x for x in results if x is not None]
            rows.append((n, len(results), len(results) - len(answered), percentile(answered, 50),
                         percentile(answered, 90), max(answered, default=float("nan"))))
            print(f"  {n} call(s): {rows[-1][3]:.2f} s p50", file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"call_load {date.today()} on {platform.node()} ({os.cpu_count()} cores), {args.rounds} rounds")
    print("| calls at once | turns | missed | first audio p50 | p90 | max |")
    print("|---|---|---|---|---|---|")
    for n, turns, missed, p50, p90, worst in rows:
        print(f"| {n} | {turns} | {missed} | {p50:.2f} s | {p90:.2f} s | {worst:.2f} s |")


if __name__ == "__main__":
    asyncio.run(main())
