"""Play a scripted timeline into a session, as a microphone and a loudspeaker would.

A ``Timeline`` places user audio (speech, noise) and typed messages at given times. ``run_timeline`` feeds
it to a session in 20 ms blocks paced by the session's clock, pulls the assistant's voice out of the
playback queue at the same pace, optionally leaks that voice back into the microphone (open speakers),
and returns both signals plus the event log. Tests and the replay command are built on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from audio.frames import AudioFrame, StreamResampler, to_float32
from duplex.session import DuplexSession

MIC_RATE = 16000


@dataclass
class Timeline:
    duration: float
    audio: list[tuple[float, np.ndarray, str]] = field(default_factory=list)  # (start s, 16 kHz float32, label)
    texts: list[tuple[float, str]] = field(default_factory=list)

    def add_audio(self, at: float, frame: AudioFrame, label: str = "", gain: float = 1.0) -> Timeline:
        samples = frame.convert(sample_rate=MIC_RATE, channels=1, dtype=np.float32).samples[:, 0] * gain
        self.audio.append((at, samples, label))
        self.duration = max(self.duration, at + len(samples) / MIC_RATE)
        return self

    def add_text(self, at: float, text: str) -> Timeline:
        self.texts.append((at, text))
        self.duration = max(self.duration, at)
        return self

    def mic_signal(self) -> np.ndarray:
        signal = np.zeros(int(np.ceil(self.duration * MIC_RATE)), dtype=np.float32)
        for at, samples, _ in self.audio:
            start = int(round(at * MIC_RATE))
            end = min(len(signal), start + len(samples))
            signal[start:end] += samples[: end - start]
        return signal

    def spans(self, label_prefix: str = "") -> list[tuple[float, float, str]]:
        return [(at, at + len(s) / MIC_RATE, label) for at, s, label in self.audio if label.startswith(label_prefix)]


@dataclass
class TimelineResult:
    mic: np.ndarray  # what the session heard, 16 kHz
    speaker: np.ndarray  # what the assistant played, 16 kHz
    start_time: float  # session clock time of the timeline's zero

    def speaker_active(self, start: float, end: float, threshold_dbfs: float = -45.0) -> float:
        """Fraction of 20 ms blocks in [start, end) (timeline seconds) where the assistant was audible."""
        block = MIC_RATE // 50
        a, b = int(start * MIC_RATE) // block, int(end * MIC_RATE) // block
        if b <= a:
            return 0.0
        blocks = self.speaker[a * block:b * block].reshape(-1, block)
        level = 10 * np.log10(np.mean(blocks.astype(np.float64) ** 2, axis=1) + 1e-12)
        return float(np.mean(level > threshold_dbfs))


async def run_timeline(session: DuplexSession, timeline: Timeline, tail_s: float = 3.0, block_s: float = 0.02,
                       echo_gain: float = 0.0, echo_delay_blocks: int = 2) -> TimelineResult:
    """Feed ``timeline`` in real (clock) time; ``echo_gain`` > 0 leaks the assistant's voice into the mic."""
    clock = session.clock
    mic = timeline.mic_signal()
    total_blocks = int(np.ceil((timeline.duration + tail_s) / block_s))
    block = int(MIC_RATE * block_s)
    out_block = int(session.output.sample_rate * block_s)
    mic = np.concatenate([mic, np.zeros(total_blocks * block - len(mic) + block, dtype=np.float32)])
    speaker = np.zeros(total_blocks * block, dtype=np.float32)
    texts = sorted(timeline.texts)
    echo_line: list[np.ndarray] = [np.zeros(block, dtype=np.float32)] * echo_delay_blocks
    to_mic_rate = StreamResampler(session.output.sample_rate, MIC_RATE)
    resampled = np.zeros(0, dtype=np.float32)
    start = clock.now()
    for k in range(total_blocks):
        target = start + k * block_s
        await clock.sleep(target - clock.now())
        now_s = k * block_s
        while texts and texts[0][0] <= now_s:
            session.push_text(texts.pop(0)[1])
        resampled = np.concatenate([resampled, to_mic_rate.process(to_float32(session.output.read(out_block)))])
        if len(resampled) < block:  # the resampler's first output lags by a few samples
            resampled = np.pad(resampled, (block - len(resampled), 0))
        played_16k, resampled = resampled[:block], resampled[block:]
        speaker[k * block:(k + 1) * block] = played_16k
        heard = mic[k * block:(k + 1) * block].copy()
        if echo_gain > 0:
            echo_line.append(played_16k * echo_gain)
            heard += echo_line.pop(0)
        mic[k * block:(k + 1) * block] = heard
        session.push_audio(AudioFrame(np.clip(heard, -1, 1), MIC_RATE, timestamp=now_s))
    return TimelineResult(mic[: total_blocks * block], speaker, start)
