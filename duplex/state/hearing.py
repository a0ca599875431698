"""The training clips made and heard: synthesised or cut from recordings, then through VAD and ASR the way
the live session hears them, and embedded by the LLM. Every result is cached by clip, so re-runs only retrain.

The models come in through ``Hearing``, each built on first use: a fully cached run loads none of them.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio.asr import Transcript
from duplex.models import SpeechRecognizer, SpeechSynthesizer, TextEmbedder, VoiceActivityDetector
from duplex.options import DuplexOptions
from duplex.state.dataset import SAMPLE_RATE, AudioSpec, HeardDataset, Item, Recording, build_items

Log = Callable[[str], None]


@dataclass(frozen=True)
class Hearing:
    """The models that make and hear the clips, each a factory called on first use (cached clips need none)."""

    asr_name: str  # names the transcript cache: a head fits the ASR it saw
    recognizer: Callable[[], SpeechRecognizer]
    vad: Callable[[], VoiceActivityDetector]
    voice: Callable[[str], SpeechSynthesizer]  # a name of ``corpus.VOICES``
    embedder: TextEmbedder | None = None  # None: no embedding variant is trained


@dataclass
class Heard:
    transcript: Transcript
    probabilities: np.ndarray
    seconds: float
    asr_ms: float
    vad_ms: float


def load_cache(path: Path) -> dict:
    if path.is_file():
        with open(path, "rb") as handle:
            return pickle.load(handle)
    return {}


def save_cache(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as handle:
        pickle.dump(data, handle)
    tmp.replace(path)


class AudioMaker:
    def __init__(self, data_dir: Path, voice: Callable[[str], SpeechSynthesizer]) -> None:
        self.data_dir = data_dir
        self._voice = voice
        self._files: dict[str, np.ndarray] = {}
        self._voices: dict[str, SpeechSynthesizer] = {}

    def file(self, path: str) -> np.ndarray:
        if path not in self._files:
            from audio.wavfile import read_audio

            frame = read_audio(self.data_dir / path).convert(sample_rate=SAMPLE_RATE, channels=1, dtype=np.float32)
            self._files[path] = frame.mono_float32()
        return self._files[path]

    def tts(self, text: str, voice: str) -> np.ndarray:
        from audio.frames import AudioFrame

        if voice not in self._voices:
            self._voices[voice] = self._voice(voice)
        frames = list(self._voices[voice].synthesize(text))
        audio = AudioFrame.concatenate(frames).convert(sample_rate=SAMPLE_RATE, channels=1,
                                                       dtype=np.float32).mono_float32()
        pad = np.zeros(int(0.2 * SAMPLE_RATE), dtype=np.float32)
        return np.concatenate([pad, audio, pad])

    def noise_piece(self, path: str, start: float, length: float) -> np.ndarray:
        audio = self.file(path)
        piece = audio[int(start * SAMPLE_RATE):int((start + length) * SAMPLE_RATE)].copy()
        rms = float(np.sqrt(np.mean(piece.astype(np.float64) ** 2)) + 1e-9)
        if 20 * np.log10(rms) < -42:  # the Speech Commands noises are recorded at -45..-53 dBFS
            piece *= 10 ** (-30 / 20) / rms
        return piece

    def make(self, spec: AudioSpec) -> np.ndarray:
        if spec.kind == "tts":
            audio = self.tts(spec.text, spec.voice)
        elif spec.kind == "noise":
            audio = self.noise_piece(spec.path, spec.start, spec.length)
        elif spec.kind == "speech":
            start, end = int(spec.start * SAMPLE_RATE), int((spec.start + spec.length) * SAMPLE_RATE)
            audio = self.file(spec.path)[start:end].copy()
        elif spec.kind in ("mix", "echo"):
            speech = self.tts(spec.text, spec.voice)
            noise = self.noise_piece(spec.noise_path, spec.noise_start, len(speech) / SAMPLE_RATE + 0.1)
            noise = np.resize(noise, len(speech))
            p_s = np.mean(speech.astype(np.float64) ** 2)
            p_n = np.mean(noise.astype(np.float64) ** 2) + 1e-12
            audio = speech + noise * np.sqrt(p_s / p_n / 10 ** (spec.snr_db / 10))
        else:
            raise ValueError(spec.kind)
        audio = audio * 10 ** (spec.gain_db / 20)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak > 0.99:
            audio = audio * (0.99 / peak)
        return audio.astype(np.float32)


def hear(items: list[Item], data_dir: Path, cache_dir: Path, hearing: Hearing, log: Log,
         speculate_after_s: float | None = None) -> dict[str, Heard]:
    """VAD + ASR of each clip, cached: the whole clip, or (``speculate_after_s`` given) the clip as the live
    session hears it (``live_cut``). The live view makes the clip anew (Piper renders each line a little
    differently) and runs its VAD again, so the cut and the transcript belong to one rendering."""
    from audio.vad import frame_probabilities

    live = "" if speculate_after_s is None else f"-live{round(speculate_after_s * 1000)}ms"
    cache_path = cache_dir / f"heard-{hearing.asr_name}{live}.pkl"
    heard: dict[str, Heard] = load_cache(cache_path)
    todo = {item.audio.key: item.audio for item in items if item.audio.key not in heard}
    if not todo:
        return heard
    recognizer, vad = hearing.recognizer(), hearing.vad()
    frame = vad.frame_samples
    maker = AudioMaker(data_dir, hearing.voice)
    what = "whole" if speculate_after_s is None else f"cut {speculate_after_s * 1000:.0f} ms into the pause"
    log(f"hearing {len(todo)} clips ({what}: VAD + ASR), {len(heard)} cached")
    began = time.perf_counter()
    for n, (key, spec) in enumerate(todo.items(), 1):
        audio = maker.make(spec)
        t0 = time.perf_counter()
        probabilities = frame_probabilities(vad, audio)
        t1 = time.perf_counter()
        if speculate_after_s is not None:
            start, end = live_cut(probabilities, frame / SAMPLE_RATE, speculate_after_s) or (0, len(probabilities))
            audio, probabilities = audio[start * frame:end * frame], probabilities[start:end]
        transcript = recognizer.transcribe(audio)
        t2 = time.perf_counter()
        heard[key] = Heard(transcript, probabilities, len(audio) / SAMPLE_RATE, (t2 - t1) * 1000, (t1 - t0) * 1000)
        if n % 100 == 0 or n == len(todo):
            save_cache(cache_path, heard)
            log(f"  {n}/{len(todo)} in {time.perf_counter() - began:.0f} s")
    return heard


def live_cut(probabilities: np.ndarray, frame_s: float, speculate_after_s: float,
             options: DuplexOptions | None = None) -> tuple[int, int] | None:
    """The frames ``[start, end)`` of a clip that the live session transcribes and decides on: from its VAD
    onset minus the pre-roll to ``speculate_after_s`` into the last pause (the same ``SpeechSegmenter`` the
    session runs). ``None`` when the VAD never starts a segment (the session would not decide at all)."""
    from audio.vad import SegmenterEventKind, SpeechSegmenter

    opts = options or DuplexOptions()
    segmenter = SpeechSegmenter(frame_s, opts.vad_start_threshold, opts.vad_end_threshold, opts.vad_start_frames,
                                opts.short_silence_s, max(1, round(speculate_after_s / frame_s)))
    pre_roll = max(1, int(opts.pre_roll_s / frame_s))
    start = end = None
    for index, probability in enumerate(np.asarray(probabilities, dtype=np.float64)):
        if segmenter.in_speech and probability >= opts.vad_end_threshold:
            end = None  # the speech went on after a pause began
        event = segmenter.push(float(probability), index * frame_s)
        if event is None:
            continue
        if event.kind is SegmenterEventKind.SPEECH_START:
            end = None
            if start is None:
                start = max(0, index + 1 - pre_roll)  # the session's pre-roll holds the onset frame too
        elif event.kind is SegmenterEventKind.SILENCE_START and start is not None:
            end = index + 1
    if start is None:
        return None
    return start, end if end is not None else len(probabilities)


def embed_texts(texts: Iterable[str], cache_dir: Path, embedder: TextEmbedder, log: Log) -> dict[str, np.ndarray]:
    """The embedder's vector for each text, cached by embedder name."""
    cache_path = cache_dir / "embeddings.pkl"
    cached = load_cache(cache_path)
    store = cached.setdefault(embedder.name, {})
    todo = sorted(t for t in set(texts) if t not in store)
    if todo:
        log(f"embedding {len(todo)} transcripts with {embedder.name}")
        for n, text in enumerate(todo, 1):
            store[text] = embedder.embed(text)
            if n % 200 == 0 or n == len(todo):
                save_cache(cache_path, cached)
                log(f"  {n}/{len(todo)}")
    return store


DATASET_FILE = "segments.pkl"


def hear_dataset(recordings: Sequence[Recording], data_dir: Path, cache_dir: Path, hearing: Hearing,
                 speculate_after_s: float, log: Log) -> HeardDataset:
    """Build the training clips, hear each in both views (and embed what was heard), and save the result as
    ``cache_dir/segments.pkl`` for ``python -m duplex.state.train``."""
    items = build_items(recordings, data_dir)
    log(f"{len(items)} segments, {len({i.audio.key for i in items})} distinct audio")
    whole = hear(items, data_dir, cache_dir, hearing, log)
    live = hear(items, data_dir, cache_dir, hearing, log, speculate_after_s)
    keys = {item.audio.key for item in items}
    dataset = HeardDataset(items, {k: whole[k] for k in keys}, {k: live[k] for k in keys}, hearing.asr_name,
                           speculate_after_s)
    if hearing.embedder is not None:
        texts = {h.transcript.text.strip() for view in (dataset.live, dataset.whole) for h in view.values()} - {""}
        store = embed_texts(texts, cache_dir, hearing.embedder, log)
        dataset.embeddings = {text: store[text] for text in texts}
        dataset.embedder_name = hearing.embedder.name
    save_cache(cache_dir / DATASET_FILE, dataset)
    return dataset
