"""Voice-to-voice over the OpenAI Realtime socket beside the same figure over WebRTC, one server, one run.

    .venv/bin/python benchmarks/realtime_latency.py [--rounds 2]

Starts ``assistant serve`` (bundled models) as its own process on 127.0.0.1. Each round asks every question
of ``benchmarks/call_load.py`` twice, alternating the transport: once as a headless WebRTC call (aiortc,
``tests/webrtc_client.py``) and once over ``/v1/realtime`` with a raw WebSocket client (the ``websockets``
library) that streams the question as pcm16 at 24 kHz in real time, 20 ms a chunk, the way a microphone does.
Each turn is a new session. The figure is, on this process's clock, the first assistant audio above -45 dBFS
minus the end of the question: for WebRTC the first such received frame, for the socket the first such
``response.output_audio.delta``. A turn with no answer within 15 s counts as missed. Prints p50 / p90 per
transport.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import secrets
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audio.frames import AudioFrame, rms_dbfs, to_int16  # noqa: E402
from benchmarks.call_load import (  # noqa: E402
    ANSWER_WAIT_S,
    LEAD_S,
    QUESTIONS,
    VOICE_DBFS,
    free_port,
    one_round,
    percentile,
    wait_for_server,
)

RATE, CHUNK = 24000, 480


async def socket_turn(port: int, token: str, speech_24k: np.ndarray) -> float | None:
    import websockets

    url = f"ws://127.0.0.1:{port}/v1/realtime?model=benchmark&duplex_events=0"
    first_voice: list[float] = []
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                                  max_size=None) as socket:
        async def read() -> None:
            async for message in socket:
                event = json.loads(message)
                if event["type"] == "response.output_audio.delta" and not first_voice:
                    pcm = np.frombuffer(base64.b64decode(event["delta"]), dtype="<i2")
                    if rms_dbfs(pcm) > VOICE_DBFS:
                        first_voice.append(time.monotonic())

        reader = asyncio.create_task(read())
        signal = np.concatenate([np.zeros(int(LEAD_S * RATE), np.int16), speech_24k])
        start = time.monotonic()
        for index in range(0, len(signal), CHUNK):
            await asyncio.sleep(max(0.0, start + index / RATE - time.monotonic()))
            chunk = base64.b64encode(signal[index:index + CHUNK].astype("<i2").tobytes()).decode()
            await socket.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        spoken_end = start + len(signal) / RATE
        silence = base64.b64encode(np.zeros(CHUNK, "<i2").tobytes()).decode()
        step = 0
        while not first_voice and time.monotonic() < spoken_end + ANSWER_WAIT_S:  # the microphone goes on, quiet
            await asyncio.sleep(max(0.0, spoken_end + step * CHUNK / RATE - time.monotonic()))
            await socket.send(json.dumps({"type": "input_audio_buffer.append", "audio": silence}))
            step += 1
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    await asyncio.sleep(2.0)  # the server frees the slot
    return first_voice[0] - spoken_end if first_voice else None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from assistant.backends import load_synthesizer
    from assistant.config import AssistantConfig
    from audio.tts import PiperSynthesizer

    piper = load_synthesizer(AssistantConfig().tts)
    assert isinstance(piper, PiperSynthesizer)
    voice = piper.steady()
    spoken = [AudioFrame.concatenate(list(voice.synthesize(q))) for q in QUESTIONS]
    speech_16k = [s.convert(sample_rate=16000).mono_float32() for s in spoken]
    speech_24k = [to_int16(s.convert(sample_rate=RATE).mono_float32()) for s in spoken]
    port, token = free_port(), secrets.token_urlsafe(12)
    server = subprocess.Popen([str(ROOT / ".venv/bin/assistant"), "serve", "--port", str(port), "--token", token,
                               "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    results: dict[str, list[float | None]] = {"WebRTC (aiortc)": [], "Realtime socket": []}
    try:
        await wait_for_server(base, token, server)
        await one_round(base, token, speech_16k[:1])  # warm-up: the first call of a process is cold
        await socket_turn(port, token, speech_24k[1])
        for r in range(args.rounds):
            for i in range(len(QUESTIONS)):
                order = [0, 1] if (i + r) % 2 == 0 else [1, 0]  # alternate which transport goes first
                for which in order:
                    if which == 0:
                        latency = (await one_round(base, token, [speech_16k[i]]))[0]
                        results["WebRTC (aiortc)"].append(latency)
                    else:
                        latency = await socket_turn(port, token, speech_24k[i])
                        results["Realtime socket"].append(latency)
                    name = "WebRTC" if which == 0 else "socket"
                    shown = f"{latency:.2f} s" if latency is not None else "missed"
                    print(f"  round {r + 1} q{i + 1} {name}: {shown}", file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"realtime_latency {date.today()} on {platform.node()} ({os.cpu_count()} cores), {args.rounds} rounds "
          f"of {len(QUESTIONS)} questions per transport")
    print("| transport | turns | missed | voice-to-voice p50 | p90 | max |")
    print("|---|---|---|---|---|---|")
    for name, values in results.items():
        answered = [x for x in values if x is not None]
        print(f"| {name} | {len(values)} | {len(values) - len(answered)} | {percentile(answered, 50):.2f} s | "
              f"{percentile(answered, 90):.2f} s | {max(answered, default=float('nan')):.2f} s |")


if __name__ == "__main__":
    asyncio.run(main())
