"""The bundled whisper tiny.en through each CPU backend: latency by clip length, and word error rates.

    .venv/bin/python benchmarks/asr_backends.py [--data ../shared/data/audio] [--repeats 7]

faster-whisper encodes a 30 s window whatever the clip; clip-whisper (audio/clip_whisper.py) encodes the
clip plus ``pad_s`` of silence. Latency: the bundled sample question cut or repeated to each length, median
of ``--repeats`` warm calls per backend, the backends interleaved. Word error rates: the shared recordings
with transcripts (clean ``speech/`` and ``noisy_speech/``), normalised as in tests/test_asr.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import audio  # noqa: E402, F401  (thread-spinning settings before the models load)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "data" / "audio"))
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    from assistant.backends import load_recognizer
    from assistant.config import ASRConfig
    from audio.asr import word_error_rate
    from audio.wavfile import read_audio

    recognizers = {name: load_recognizer(ASRConfig(backend=name, device="cpu"))
                   for name in ("faster-whisper", "clip-whisper")}
    question = read_audio(REPO_ROOT / "assistant" / "samples" / "question.wav").convert(sample_rate=16000)
    speech = question.mono_float32()
    print("| clip | " + " | ".join(f"{name} median" for name in recognizers) + " | ratio |")
    print("|---|" + "---|" * (len(recognizers) + 1))
    for seconds in (1.0, 2.0, 3.0, 5.0, 10.0):
        clip = np.resize(speech, int(seconds * 16000))  # repeats the question to fill longer clips
        times: dict[str, list[float]] = {name: [] for name in recognizers}
        for _ in range(args.repeats):
            for name, recognizer in recognizers.items():
                began = time.perf_counter()
                recognizer.transcribe(clip)
                times[name].append(time.perf_counter() - began)
        medians = {name: statistics.median(values) for name, values in times.items()}
        ratio = medians["faster-whisper"] / medians["clip-whisper"]
        print(f"| {seconds:g} s | " + " | ".join(f"{1000 * m:.0f} ms" for m in medians.values())
              + f" | {ratio:.1f}x |")

    data_dir = Path(args.data)
    if not (data_dir / "MANIFEST.tsv").is_file():
        print(f"\nno shared recordings in {data_dir}: word error rates skipped")
        return 0
    from assistant.recordings import english_transcribed, load_manifest

    manifest = load_manifest(data_dir)
    print("\n| recordings | " + " | ".join(f"{name} WER" for name in recognizers) + " |")
    print("|---|" + "---|" * len(recognizers))
    for group in ("speech", "noisy_speech"):
        recordings = english_transcribed(manifest, group)
        rates = []
        for recognizer in recognizers.values():
            errors = words = 0.0
            for recording in recordings:
                audio_16k = read_audio(recording.path).convert(sample_rate=16000, channels=1).mono_float32()
                count = len(recording.transcript.split())
                errors += word_error_rate(recording.transcript, recognizer.transcribe(audio_16k).text) * count
                words += count
            rates.append(errors / words)
        print(f"| {group} ({len(recordings)} files) | " + " | ".join(f"{r:.3f}" for r in rates) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
