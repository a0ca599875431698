"""How much of the assistant's own voice the desktop app's echo canceller removes, in the live audio loop.

A private PulseAudio server (tests/pulse.py) plays the role of a laptop on open speakers: what the app
plays on ``spk`` is looped back into its microphone (``module-loopback``, ~30 ms, at ``--gain``). The app's
real sound card path (``ui.sound_card.SoundCard``: separate sounddevice streams, 10 ms blocks, WebRTC AEC3
fed the exact played blocks) plays speech for ``--seconds``; the microphone before and after the canceller
is kept. Printed: the echo level in the microphone, the residual after the canceller and the suppression in
dB after the first ``--converge`` seconds (AEC3 learns the delay and the echo path), plus the canceller's
CPU time per 10 ms frame.

    .venv/bin/python benchmarks/echo_cancellation.py [--seconds 12] [--gain 0.5] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audio.aec import WebRtcEchoCanceller  # noqa: E402
from audio.frames import resample  # noqa: E402
from audio.wavfile import read_audio  # noqa: E402
from tests.pulse import PulseServer  # noqa: E402

SPEECH = Path(__file__).resolve().parent.parent / "assistant" / "samples" / "question.wav"


def far_end_signal(seconds: float, rate: int) -> np.ndarray:
    """Speech with short pauses, as an answer sounds: the bundled question, repeated."""
    voice = read_audio(SPEECH)
    samples = resample(voice.mono_float32(), voice.sample_rate, rate)
    pause = np.zeros(int(0.4 * rate), dtype=np.float32)
    unit = np.concatenate([samples, pause])
    signal = np.tile(unit, int(np.ceil(seconds * rate / len(unit))))[: int(seconds * rate)]
    return (np.clip(signal * 0.8 / max(1e-6, np.abs(signal).max()), -1, 1) * 32767).astype(np.int16)


def level_dbfs(samples: np.ndarray) -> float:
    return float(10 * np.log10(np.mean((samples.astype(np.float64) / 32768) ** 2) + 1e-12))


class TimedCanceller:
    """The card's echo canceller, counting the time it spends and the 10 ms frames it processes."""

    def __init__(self, canceller: WebRtcEchoCanceller) -> None:
        self.canceller, self.sample_rate = canceller, canceller.sample_rate
        self.seconds, self.frames = 0.0, 0.0

    def process(self, mic: np.ndarray, played: np.ndarray) -> np.ndarray:
        began = time.perf_counter()
        out = self.canceller.process(mic, played)
        self.seconds += time.perf_counter() - began
        self.frames += len(mic) / self.canceller.frame_samples
        return out


def measure(seconds: float, gain: float, converge_s: float, latency_ms: int, align: bool = False,
            stall_at_s: float | None = None, stall_s: float = 0.15) -> dict:
    from ui.sound_card import SoundCard, choose_devices

    server = PulseServer().start()
    try:
        server.export_env()
        loopback = server.open_speakers(gain=gain, latency_ms=latency_ms)
        devices = choose_devices(None, None, 48000)
        far = far_end_signal(seconds, devices.output_rate)
        position = 0
        lock = threading.Lock()

        stall_at = int(stall_at_s * devices.output_rate) if stall_at_s is not None else None

        def play(n: int) -> np.ndarray:
            nonlocal position, stall_at
            if stall_at is not None and position >= stall_at:  # a busy CPU holding up the speaker callback
                stall_at = None
                time.sleep(stall_s)
            with lock:
                block = far[position:position + n]
                position += n
            return np.pad(block, (0, n - len(block)))

        raw: list[np.ndarray] = []
        cleaned: list[np.ndarray] = []

        def keep(mic: np.ndarray, clean: np.ndarray, rate: int) -> None:
            raw.append(mic)
            cleaned.append(clean)

        card = SoundCard(devices, play, keep, align_by_timestamps=align)
        canceller = card.canceller
        assert isinstance(canceller, WebRtcEchoCanceller)
        timed = TimedCanceller(canceller)
        card.canceller = timed
        card.start()
        time.sleep(seconds + 0.5)
        closed = card.close()
        server.unload_module(loopback)
        rate = card.rate
        raw_all, cleaned_all = np.concatenate(raw), np.concatenate(cleaned)
        n = min(len(raw_all), len(cleaned_all), int(seconds * rate))
        start = int(converge_s * rate)
        mic_db, residual_db = level_dbfs(raw_all[start:n]), level_dbfs(cleaned_all[start:n])
        return {
            "seconds": seconds, "loopback_gain": gain, "loopback_latency_ms": latency_ms, "rate": rate,
            "echo_level_dbfs": round(mic_db, 1), "residual_dbfs": round(residual_db, 1),
            "suppression_db": round(mic_db - residual_db, 1),
            "suppression_app_stats_db": round(canceller.stats.suppression_db or 0.0, 1),
            "cpu_us_per_10ms": round(1e6 * timed.seconds / max(1, timed.frames), 1),
            "per_second_db": [round(level_dbfs(raw_all[k:k + rate]) - level_dbfs(cleaned_all[k:k + rate]), 1)
                              for k in range(0, n - rate + 1, rate)
                              if level_dbfs(raw_all[k:k + rate]) > -60],  # seconds with echo in them
            "aligned_by_timestamps": align, "stall_at_s": stall_at_s,
            "speaker_gaps": card.timeline.gaps, "underflows": card.underflows, "overflows": card.overflows,
            "closed_cleanly": closed,
        }
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--gain", type=float, default=0.5, help="loopback volume (the speaker-to-mic path)")
    parser.add_argument("--latency-ms", type=int, default=30, help="loopback delay")
    parser.add_argument("--converge", type=float, default=2.0, help="seconds left out while AEC3 adapts")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--stall-at", type=float, help="hold the speaker callback up once, at this second "
                        "(an underrun, as on a busy CPU)")
    parser.add_argument("--stall-ms", type=float, default=150.0)
    parser.add_argument("--align", action="store_true",
                        help="place the reference by the sound card's timestamps (PlayedTimeline), not in the "
                             "order played as the app does")
    args = parser.parse_args()
    result = measure(args.seconds, args.gain, args.converge, args.latency_ms, align=args.align,
                     stall_at_s=args.stall_at, stall_s=args.stall_ms / 1000)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"echo in the microphone {result['echo_level_dbfs']} dBFS, after the canceller "
              f"{result['residual_dbfs']} dBFS: suppression {result['suppression_db']} dB "
              f"(after {args.converge:g} s; counted by the app "
              f"{result['suppression_app_stats_db']} dB); {result['cpu_us_per_10ms']} us CPU per 10 ms at "
              f"{result['rate']} Hz; underflows {result['underflows']}"
              + (f" (gaps placed {result['speaker_gaps']})" if args.align else "") + ", "
              f"overflows {result['overflows']}; per second: {result['per_second_db']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
