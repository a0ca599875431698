"""Play a scripted timeline into a session, as a microphone and a loudspeaker would.

A ``Timeline`` places user audio (speech, noise), typed messages and camera images at given times.
``run_timeline`` feeds it to a session in 20 ms blocks paced by the session's clock, pulls the assistant's
voice out of the playback queue at the same pace, optionally leaks that voice back into the microphone (open
speakers), and returns both signals plus the event log. ``Cue`` entries are placed during the run (e.g. two
seconds into the assistant's answer). Tests and the replay command are built on it; a pacer
(``duplex/pacing.py``) decides whether time passes in real time or on a virtual clock.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from audio.frames import AudioFrame, StreamResampler, to_float32
from duplex.pacing import ClockPacer, Pacer
from duplex.session import DuplexSession

MIC_RATE = 16000


@dataclass
class Cue:
    """User audio or a typed message placed when ``ready(now_s)`` first holds (timeline seconds), e.g. two
    seconds into the assistant's answer, however long that answer took to start. Cues fire in order, each
    only after the one before it; ``started_at`` is set when it fires."""

    ready: Callable[[float], bool]
    samples: np.ndarray | None = None  # 16 kHz float32
    text: str = ""
    label: str = ""
    started_at: float | None = None

    @property
    def duration(self) -> float:
        return 0.0 if self.samples is None else len(self.samples) / MIC_RATE


@dataclass
class Timeline:
    duration: float
    audio: list[tuple[float, np.ndarray, str]] = field(default_factory=list)  # (start s, 16 kHz float32, label)
    texts: list[tuple[float, str]] = field(default_factory=list)
    images: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (start s, RGB uint8 H x W x 3)
    cues: list[Cue] = field(default_factory=list)  # placed during the run, after everything above

    def add_audio(self, at: float, frame: AudioFrame, label: str = "", gain: float = 1.0) -> Timeline:
        samples = frame.convert(sample_rate=MIC_RATE, channels=1, dtype=np.float32).samples[:, 0] * gain
        self.audio.append((at, samples, label))
        self.duration = max(self.duration, at + len(samples) / MIC_RATE)
        return self

    def add_text(self, at: float, text: str) -> Timeline:
        self.texts.append((at, text))
        self.duration = max(self.duration, at)
        return self

    def add_image(self, at: float, rgb: np.ndarray) -> Timeline:
        self.images.append((at, rgb))
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
    images_pushed: int = 0  # camera images handed to the session

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
                       echo_gain: float = 0.0, echo_delay_blocks: int = 2, pacer: Pacer | None = None,
                       on_block: Callable[[int, int], None] | None = None,
                       quiet: Callable[[], bool] | None = None, max_drain_s: float = 30.0,
                       max_cue_wait_s: float = 30.0) -> TimelineResult:
    """Feed ``timeline`` in real (clock) time; ``echo_gain`` > 0 leaks the assistant's voice into the mic.

    ``pacer`` decides how time passes (default: sleep on the session's clock); ``on_block(done, total)``
    reports progress. With ``quiet``, the run goes on past the tail (at most ``max_drain_s``) until
    ``quiet()`` holds, so an answer still being worked on when the tail ends is not cut off. A cue that is
    not ready ``max_cue_wait_s`` after the one before it is given up (its ``started_at`` stays None)."""
    clock = session.clock
    pacer = pacer or ClockPacer()
    mic = timeline.mic_signal()
    planned_blocks = int(np.ceil((timeline.duration + tail_s) / block_s))
    cues = list(timeline.cues)
    cue_budget_s = sum(cue.duration + max_cue_wait_s for cue in cues)
    total_blocks = planned_blocks + int(np.ceil(((max_drain_s if quiet is not None else 0.0) + cue_budget_s) / block_s))
    block = int(MIC_RATE * block_s)
    out_block = int(session.output.sample_rate * block_s)
    mic = np.concatenate([mic, np.zeros(total_blocks * block - len(mic) + block, dtype=np.float32)])
    speaker = np.zeros(total_blocks * block, dtype=np.float32)
    texts = sorted(timeline.texts)
    images = sorted(timeline.images, key=lambda item: item[0])
    images_pushed = 0
    echo_line: list[np.ndarray] = [np.zeros(block, dtype=np.float32)] * echo_delay_blocks
    to_mic_rate = StreamResampler(session.output.sample_rate, MIC_RATE)
    resampled = np.zeros(0, dtype=np.float32)
    start = clock.now()
    blocks_run = total_blocks
    cue_end_block = 0  # the tail runs after the last cue's audio too
    waiting_since = timeline.duration  # when the next cue began to wait for its moment
    for k in range(total_blocks):
        if not cues and k >= max(planned_blocks, cue_end_block) and (quiet is None or quiet()):
            blocks_run = k
            break
        now_s = k * block_s
        while cues:
            if not cues[0].ready(now_s):
                if now_s - waiting_since > max_cue_wait_s:
                    cues.clear()  # its moment never came; the cues after it depend on it
                break
            cue = cues.pop(0)
            cue.started_at = waiting_since = now_s
            if cue.text:
                bisect.insort(texts, (now_s, cue.text))
            if cue.samples is not None:
                first = k * block
                end = min(len(mic), first + len(cue.samples))
                mic[first:end] += cue.samples[: end - first]
                waiting_since = now_s + cue.duration
            cue_end_block = int(np.ceil((waiting_since + tail_s) / block_s))
        target = start + k * block_s
        await pacer.wait_until(clock, target)
        while texts and texts[0][0] <= now_s:
            session.push_text(texts.pop(0)[1])
        while images and images[0][0] <= now_s:
            session.push_image(images.pop(0)[1], clock.now())
            images_pushed += 1
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
        await pacer.after_block((k + 1) * block)
        if on_block is not None:
            on_block(k + 1, planned_blocks)
    return TimelineResult(mic[: blocks_run * block], speaker[: blocks_run * block], start, images_pushed)
