"""Speed and memory of the default model stack on this machine.

    .venv/bin/python benchmarks/model_speed.py [--repeats 7] [--llm SPEC]

Prints a markdown table of medians over ``--repeats`` warm runs: load time per model, ASR latency and
real-time factor (RTF = compute time / audio time) for 1 s and 5 s clips, LLM time to first token and
tokens per second, TTS time to first chunk and RTF, VAD cost per frame, and the process's peak memory.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import time
from datetime import date

import numpy as np

from assistant.backends import load_stack
from assistant.config import AssistantConfig, parse_llm_spec
from audio.frames import AudioFrame
from audio.vad import SileroVad, WebRtcVad
from duplex.models import ChatMessage, GenerationOptions

PROMPTS = ["What is the capital of France?", "Give me one tip for sleeping better.",
           "Why do cats purr?", "How far away is the moon?"]


def median_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def speech_clip(synthesizer, seconds: float) -> np.ndarray:
    text = "The quick brown fox jumps over the lazy dog while the band plays on in the park. " * 3
    audio = AudioFrame.concatenate(list(synthesizer.synthesize(text))).convert(sample_rate=16000)
    return audio.mono_float32()[: int(seconds * 16000)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--llm", help="BACKEND[:MODEL], as for the assistant command")
    args = parser.parse_args()
    config = AssistantConfig()
    if args.llm:
        parse_llm_spec(args.llm, config.llm)
    rows: list[tuple[str, str]] = []
    stack = load_stack(config, progress=True)
    for role, seconds in stack.load_seconds.items():
        rows.append((f"load {role} ({getattr(getattr(stack, _attr(role)), 'name', role)})", f"{seconds:.2f} s"))

    for seconds in (1.0, 5.0):
        clip = speech_clip(stack.synthesizer, seconds)
        latency = median_time(lambda: stack.recognizer.transcribe(clip), args.repeats)
        rows.append((f"ASR {seconds:.0f} s clip: latency / RTF", f"{latency * 1000:.0f} ms / {latency / seconds:.3f}"))

    first_token, rates = [], []
    for i in range(args.repeats):
        messages = [ChatMessage("system", config.llm.system_prompt), ChatMessage("user", PROMPTS[i % len(PROMPTS)])]
        start = time.perf_counter()
        count = 0
        first: float | None = None
        for piece in stack.language_model.stream_chat(messages, GenerationOptions(max_tokens=96)):
            if not piece:
                continue  # the prompt being read
            first = first or time.perf_counter()
            count += 1
        end = time.perf_counter()
        assert first is not None, "the model gave no tokens"
        first_token.append(first - start)
        if count > 1:
            rates.append((count - 1) / (end - first))
    rows.append(("LLM time to first token", f"{statistics.median(first_token) * 1000:.0f} ms"))
    rows.append(("LLM generation speed (stream pieces ~ tokens)", f"{statistics.median(rates):.0f} tok/s"))

    for label, text in (("short clause", "Sure, here it is."),
                        ("15-word sentence",
                         "The capital of France is Paris, a city known for its art, food and history.")):
        first_chunk, rtf = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            chunks: list[AudioFrame] = []
            for chunk in stack.synthesizer.synthesize(text):
                if not chunks:
                    first_chunk.append(time.perf_counter() - start)
                chunks.append(chunk)
            total = time.perf_counter() - start
            rtf.append(total / sum(c.duration for c in chunks))
        rows.append((f"TTS {label}: first chunk / RTF",
                     f"{statistics.median(first_chunk) * 1000:.0f} ms / {statistics.median(rtf):.3f}"))

    noise = (np.random.default_rng(0).standard_normal(16000 * 10) * 3000).astype(np.int16)
    for vad in (SileroVad(), WebRtcVad()):
        frames = [noise[i:i + vad.frame_samples] for i in range(0, len(noise) - vad.frame_samples, vad.frame_samples)]
        per_frame = median_time(lambda: [vad.speech_probability(f) for f in frames], 3) / len(frames)
        rows.append((f"VAD {vad.name} per {vad.frame_samples / 16:.0f} ms frame", f"{per_frame * 1e6:.0f} us"))

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(("peak memory (RSS) of this process", f"{peak_mb:.0f} MB"))

    print(f"\n{date.today()}, {platform.machine()}, {_cpu_count()} CPU cores, Python {platform.python_version()}, "
          f"medians of {args.repeats} warm runs\n")
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


def _attr(role: str) -> str:
    return {"asr": "recognizer", "llm": "language_model", "tts": "synthesizer", "vad": "vad"}[role]


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    main()
