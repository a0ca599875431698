"""The labelled segments the state decision trains on, and which of them training leaves out.

Every clip goes through the real pipeline (``hearing``): whisper + Silero VAD, and the LLM's state for the
embedding variant.
- queries: ~150 written questions/commands (``corpus``), spoken by Piper joe and two espeak-ng voices; noisy
  copies (real noise from noise/ at 5-15 dB SNR); the same queries as barge-ins while the assistant speaks;
- declaratives and talk addressed to someone else (~100 texts, same voices, some noisy copies);
- backchannels (~30 texts, same voices);
- real noise from noise/, cut into 1-4 s pieces (the very quiet Speech Commands ones scaled up);
- real read speech from speech/ and noisy_speech/ (labelled IGNORE: read sentences are not addressed to
  the assistant; a judgement, see docs/state-decision.md);
- echo: Piper-spoken assistant answers, attenuated and under light noise, heard while the assistant says
  them (assistant_text = the whole answer);
- short replies ("yes please", "tomorrow morning") after an assistant question (QUERY) and without one (IGNORE).

Every clip is heard twice: whole (0.2 s of silence each side, like a long pause or an interim decision) and
cut the way the live session cuts it (``hearing.live_cut``). The head trains on both views, so the length of
the trailing silence does not move its inputs; thresholds and the report use the live view.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from duplex.decision import SegmentEvidence
from duplex.models import ChatMessage
from duplex.state import corpus

if TYPE_CHECKING:
    from duplex.state.hearing import Heard

SAMPLE_RATE = 16000


class Recording(Protocol):
    """One file of the shared recordings' manifest."""

    @property
    def path(self) -> Path: ...

    @property
    def duration_s(self) -> float: ...

    @property
    def kind(self) -> str: ...  # "speech", "noisy_speech" or "noise"


@dataclass(frozen=True)
class AudioSpec:
    kind: str  # "tts", "noise", "speech", "mix" (tts + noise), "echo"
    text: str = ""
    voice: str = ""
    path: str = ""
    start: float = 0.0
    length: float = 0.0
    noise_path: str = ""
    noise_start: float = 0.0
    snr_db: float = 0.0
    gain_db: float = 0.0

    @property
    def key(self) -> str:
        return hashlib.sha1(repr(self).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Item:
    audio: AudioSpec
    label: int  # 1 query, 0 ignore
    category: str
    group: str  # cross-validation group: the text, or the source recording
    assistant_speaking: bool = False
    assistant_text: str = ""
    tail: tuple[ChatMessage, ...] = ()


def build_items(recordings: Sequence[Recording], data_dir: Path, seed: int = 7) -> list[Item]:
    """Every labelled clip of the training set (see the module docstring), in a fixed order for ``seed``."""
    rng = random.Random(seed)
    manifest = list(recordings)
    noise_files = [r for r in manifest if r.kind == "noise"]
    speech_files = [r for r in manifest if r.kind in ("speech", "noisy_speech") and "_L" not in r.path.stem[-2:]
                    and not r.path.stem.endswith("_R")]
    rel = lambda r: str(r.path.relative_to(data_dir))  # noqa: E731
    mixers = [r for r in noise_files if r.duration_s >= 8.0]

    def random_noise() -> tuple[str, float]:
        r = rng.choice(mixers)
        return rel(r), rng.uniform(0, max(0.0, r.duration_s - 8.0))

    items: list[Item] = []

    def spoken(texts: list[str], label: int, category: str, noisy_count: int) -> None:
        for text in texts:
            for voice in corpus.VOICES:
                items.append(Item(AudioSpec("tts", text, voice, gain_db=rng.uniform(-8, 0)), label, category, text))
        for text in rng.sample(texts, noisy_count):
            path, start = random_noise()
            spec = AudioSpec("mix", text, rng.choice(corpus.VOICES), noise_path=path, noise_start=start,
                             snr_db=rng.uniform(5, 15), gain_db=rng.uniform(-8, 0))
            items.append(Item(spec, label, f"{category} (noisy)", text))

    spoken(corpus.QUERIES, 1, "query", 100)
    spoken(corpus.OTHER_ADDRESSED, 0, "declarative/other-addressed", 40)
    spoken(corpus.BACKCHANNELS, 0, "backchannel", 10)

    # barge-ins: the same query audio heard while the assistant speaks an unrelated answer
    for item in rng.sample([i for i in items if i.category == "query"], 80):
        answer = rng.choice(corpus.ANSWERS)
        items.append(replace(item, category="query (barge-in)", assistant_speaking=True, assistant_text=answer))
    # backchannels and other talk while the assistant speaks: still not queries
    for item in rng.sample([i for i in items if i.category in ("backchannel", "declarative/other-addressed")], 60):
        items.append(replace(item, category=f"{item.category} (while speaking)", assistant_speaking=True,
                             assistant_text=rng.choice(corpus.ANSWERS)))

    # echo: the assistant's own sentences coming back through the microphone
    for answer in corpus.ANSWERS:
        sentences = [s.strip() + "." for s in answer.split(". ") if s.strip()]
        for sentence in sentences:
            path, start = random_noise()
            spec = AudioSpec("echo", sentence.rstrip(".") + ".", "piper:joe", noise_path=path, noise_start=start,
                             snr_db=rng.uniform(15, 25), gain_db=rng.uniform(-16, -6))
            items.append(Item(spec, 0, "echo", "answer:" + answer, assistant_speaking=True, assistant_text=answer))

    # short replies: after an assistant question they answer it; out of the blue they are fragments
    for text in corpus.REPLIES:
        for voice in corpus.VOICES[:2]:
            spec = AudioSpec("tts", text, voice, gain_db=rng.uniform(-8, 0))
            question = rng.choice(corpus.REPLY_QUESTIONS)
            items.append(Item(spec, 1, "reply after assistant question", "reply:" + text,
                              tail=(ChatMessage("user", "can you help me"), ChatMessage("assistant", question))))
            items.append(Item(spec, 0, "reply without a question", "reply:" + text))

    # real noise, 1-4 s pieces
    for r in noise_files:
        count = int(min(20, max(3, r.duration_s // 3)))
        for _ in range(count):
            length = min(rng.uniform(1.0, 4.0), r.duration_s)
            start = rng.uniform(0, max(0.0, r.duration_s - length))
            items.append(Item(AudioSpec("noise", path=rel(r), start=start, length=length), 0, "noise", rel(r)))

    # real read speech: whole short files, pieces of long ones
    for r in speech_files:
        if r.duration_s <= 8.0:
            items.append(Item(AudioSpec("speech", path=rel(r), start=0.0, length=r.duration_s), 0, "read speech",
                              _recording_group(r)))
            continue
        position = 0.0
        for _ in range(6):
            length = rng.uniform(2.5, 6.5)
            if position + length > r.duration_s:
                break
            items.append(Item(AudioSpec("speech", path=rel(r), start=position, length=length), 0, "read speech",
                              _recording_group(r)))
            position += length + rng.uniform(0.5, 4.0)

    # bare control commands, idle and as barge-ins (own random stream: the items above keep their cache keys)
    control_rng = random.Random(seed + 1)
    for text in corpus.CONTROLS:
        for voice in corpus.VOICES:
            spec = AudioSpec("tts", text, voice, gain_db=control_rng.uniform(-8, 0))
            items.append(Item(spec, 1, "control command", "control:" + text))
            items.append(Item(spec, 1, "control command (barge-in)", "control:" + text, assistant_speaking=True,
                              assistant_text=control_rng.choice(corpus.ANSWERS)))
    return items


def _recording_group(recording) -> str:
    stem = recording.path.stem
    for suffix in ("_noisy", "_clean"):
        stem = stem.removesuffix(suffix)
    return "recording:" + ("jfk" if stem.startswith("jfk_") else stem)  # two copies of one JFK recording


@dataclass
class HeardDataset:
    """The training set as heard: ``assistant train-state`` saves it for ``python -m duplex.state.train``."""

    items: list[Item]
    whole: dict[str, Heard]  # by AudioSpec.key
    live: dict[str, Heard]
    asr_name: str
    speculate_after_s: float
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)  # by transcript
    embedder_name: str | None = None


@dataclass(frozen=True)
class HeldOut:
    """Clips that training never sees, for evaluating on voices or speakers it has not heard."""

    voices: frozenset[str] = frozenset()  # names of ``corpus.VOICES``
    recordings: tuple[str, ...] = ()  # path prefixes in the recordings folder, e.g. "speech/vctk"

    def __contains__(self, item: Item) -> bool:
        spec = item.audio
        return spec.voice in self.voices or any(
            path.startswith(prefix) for prefix in self.recordings for path in (spec.path, spec.noise_path) if path)


@dataclass
class LabelledSegments:
    """Each clip twice, the live view first: the rows training and evaluation work on."""

    evidences: list[SegmentEvidence]
    labels: np.ndarray  # 1 query, 0 ignore
    categories: list[str]
    groups: list[str]
    live: np.ndarray  # bool: the live view (thresholds and figures) or the whole view (training only)
    heard: list[Heard]
    embeddings: np.ndarray | None = None  # one row per segment, with ``embedder_name``
    embedder_name: str | None = None


def labelled_segments(dataset: HeardDataset, held_out: HeldOut = HeldOut(), *, held_out_only: bool = False
                      ) -> LabelledSegments:
    """The dataset's clips that training sees (or, ``held_out_only``, those it must not), both views."""
    clips = [item for item in dataset.items if (item in held_out) == held_out_only]
    items = clips + clips
    heard = [dataset.live[i.audio.key] for i in clips] + [dataset.whole[i.audio.key] for i in clips]
    evidences = [evidence_of(item, h) for item, h in zip(items, heard)]
    embeddings = None
    if dataset.embedder_name and dataset.embeddings:
        dim = len(next(iter(dataset.embeddings.values())))
        texts = [e.transcript.text.strip() for e in evidences]
        embeddings = np.stack([dataset.embeddings.get(t, np.zeros(dim)) if t else np.zeros(dim) for t in texts])
    return LabelledSegments(evidences, np.array([i.label for i in items]), [i.category for i in items],
                            [i.group for i in items], np.arange(len(items)) < len(clips), heard, embeddings,
                            dataset.embedder_name if embeddings is not None else None)


def evidence_of(item: Item, heard: Heard) -> SegmentEvidence:
    return SegmentEvidence(audio_16k=np.zeros(int(heard.seconds * SAMPLE_RATE), dtype=np.float32),
                           transcript=heard.transcript, speech_probabilities=heard.probabilities,
                           assistant_speaking=item.assistant_speaking, assistant_text=item.assistant_text,
                           conversation_tail=item.tail)
