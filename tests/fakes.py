"""Fast stand-ins for the models, for unit tests of the duplex core's logic (real models are tested
elsewhere). 'Speech' here is a tone burst; its pitch says which words it carries.

Each fake declares what a call costs and pays it with ``tests.virtual_time.spend``: on the virtual clock
under ``VirtualTime`` (deterministic), a real sleep otherwise."""

from __future__ import annotations

import threading
import time

import numpy as np

from audio.asr import Transcript, TranscriptSegment
from audio.frames import AudioFrame, rms_dbfs
from duplex.decision import StateDecision, StateToken
from tests.virtual_time import spend

WORDS_BY_PITCH = {300: "What is the weather like today?", 400: "Tell me a joke please.", 500: "uh-huh",
                  600: "I want to book", 700: "a table for two.", 800: "Stop."}


def tone_speech(pitch: int, seconds: float, rate: int = 16000, level: float = 0.3) -> AudioFrame:
    t = np.arange(int(seconds * rate)) / rate
    return AudioFrame((level * np.sin(2 * np.pi * pitch * t)).astype(np.float32), rate)


class EnergyVad:
    name = "energy"
    frame_samples = 512

    def speech_probability(self, frame: np.ndarray) -> float:
        return 1.0 if rms_dbfs(frame) > -35 else 0.0

    def reset(self) -> None:
        pass


class PitchRecognizer:
    """Maps each voiced 100 ms window's pitch to the words of ``WORDS_BY_PITCH``; a call costs ``delay_s``."""

    name = "pitch"

    def __init__(self, delay_s: float = 0.02) -> None:
        self.delay_s = delay_s
        self.calls = 0

    def transcribe(self, audio_16k: np.ndarray) -> Transcript:
        spend(self.delay_s)
        self.calls += 1
        texts: list[str] = []
        for start in range(0, len(audio_16k) - 1600 + 1, 1600):
            window = audio_16k[start:start + 1600]
            if rms_dbfs(window) < -35:
                continue
            spectrum = np.abs(np.fft.rfft(window))
            pitch = int(round(np.fft.rfftfreq(1600, 1 / 16000)[np.argmax(spectrum)] / 100.0) * 100)
            text = WORDS_BY_PITCH.get(pitch, "")
            if text and (not texts or texts[-1] != text):
                texts.append(text)
        text = " ".join(texts)
        segment = TranscriptSegment(0.0, len(audio_16k) / 16000, text, -0.2 if text else -2.0,
                                    0.05 if text else 0.9, 1.0)
        return Transcript(text, "en", (segment,), len(audio_16k) / 16000)


class ScriptedLLM:
    """Answers 'Answer to <question>' followed by ``extra_words`` filler words, a word per ``delay_s``.

    ``hang``: the first answer blocks its thread, ignoring cancellation, until ``release`` is set (10 s at
    most). ``reading_s``: "still working" pieces for this long before the first word, in wall time on purpose:
    the session's stall watchdog counts wall seconds, and those pieces must reset it."""

    name = "scripted"

    def __init__(self, extra_words: int = 12, delay_s: float = 0.005, fail: bool = False, hang: bool = False,
                 reading_s: float = 0.0, echo: bool = False):
        self.extra_words, self.delay_s, self.fail, self.hang = extra_words, delay_s, fail, hang
        self.echo = echo  # begin with the question said back ("What is it?" -> "What is it.") as a small model does
        self.words_written = 0
        self.reading_s = reading_s  # a long prompt: "still working" pieces for this long before the first word
        self.release = threading.Event()
        self.requests: list[list] = []
        self.prepared: list[list] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 1

    def prepare(self, messages, cancel=None) -> None:
        self.prepared.append(list(messages))

    def stream_chat(self, messages, options, cancel=None):
        self.requests.append(list(messages))
        if self.fail:
            spend(self.delay_s)
            self.fail = False  # fail once, then work: the session must recover
            raise RuntimeError("model exploded")
        if self.hang:
            self.hang = False
            self.release.wait(10.0)  # stuck, ignoring cancellation
            return
        reading_until = time.monotonic() + self.reading_s
        while time.monotonic() < reading_until:
            if cancel is not None and cancel.is_set():
                return
            time.sleep(0.05)
            yield ""
        opening = (messages[-1].content.rstrip("?!.") + "." if self.echo
                   else f"Answer to {messages[-1].content.split()[0]}.")
        words = opening.split() + [f"word{i}{',' if i % 4 == 3 else ''}" for i in range(self.extra_words)]
        for i, word in enumerate(words):
            if cancel is not None and cancel.is_set():
                return
            spend(self.delay_s)
            self.words_written += 1
            yield (" " if i else "") + word
        yield "."


class BeepSynthesizer:
    """0.12 s of a 2 kHz beep per word (2 kHz is outside the pitch table, so an echo reads as nothing);
    synthesising costs ``seconds_per_word``."""

    name = "beep"
    sample_rate = 16000

    def __init__(self, seconds_per_word: float = 0.0) -> None:
        self.seconds_per_word = seconds_per_word

    def synthesize(self, text: str):
        words = len(text.split())
        if words:
            spend(self.seconds_per_word * words)
            t = np.arange(int(0.12 * words * self.sample_rate)) / self.sample_rate
            yield AudioFrame((0.2 * np.sin(2 * np.pi * 2000 * t)).astype(np.float32), self.sample_rate)


class KeywordDecider:
    """A query unless the words are a backchannel or nothing; a decision costs ``cost_s``."""

    cost_s = 0.0  # also for subclasses that do not call this __init__

    def __init__(self, cost_s: float = 0.0) -> None:
        self.cost_s = cost_s

    def decide(self, evidence) -> StateDecision:
        spend(self.cost_s)
        text = evidence.transcript.text.strip().lower()
        if not text or text in ("uh-huh", "yeah", "mm-hmm"):
            return StateDecision(StateToken.IGNORE, 0.05, "backchannel or noise")
        return StateDecision(StateToken.QUERY, 0.95, "words addressed to the assistant")
