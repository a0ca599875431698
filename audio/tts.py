"""Text to speech behind one interface: Piper (default, neural) and espeak-ng (fallback, formant).

A synthesizer turns one clause into a stream of ``AudioFrame`` chunks (mono int16). Feeding it clause by
clause (see ``audio.clauses``) is what lets speech start before the language model has finished.
Adding a backend means writing one class with a ``synthesize`` generator.
"""

from __future__ import annotations

import copy
import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from audio.frames import AudioFrame


class PiperSynthesizer:
    def __init__(self, model_path: str | Path, config_path: str | Path | None = None, speed: float = 1.0,
                 device: str = "cpu") -> None:
        """``device``: ``cpu``, ``cuda`` or ``cuda:N`` (the GPU needs onnxruntime-gpu)."""
        import json

        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig, SynthesisConfig

        model_path = Path(model_path)
        if not model_path.is_file():
            raise FileNotFoundError(f"Piper voice not found: {model_path}")
        config_path = Path(config_path) if config_path else Path(f"{model_path}.json")
        if not config_path.is_file():
            raise FileNotFoundError(f"Piper voice config not found: {config_path}")
        # Built here rather than by PiperVoice.load so that idle onnxruntime threads sleep instead of
        # spinning: they share 2 cores with the ASR and the LLM (see audio/__init__.py).
        options = onnxruntime.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        kind, _, index = device.partition(":")
        providers: list = ["CPUExecutionProvider"]
        if kind == "cuda":
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(index or 0)}))
        self.device = device
        session = onnxruntime.InferenceSession(str(model_path), sess_options=options, providers=providers)
        self.voice = PiperVoice(session=session, config=PiperConfig.from_dict(json.loads(config_path.read_text())))
        self.sample_rate = int(self.voice.config.sample_rate)
        self.name = f"piper:{model_path.stem}"
        self._options = SynthesisConfig(length_scale=1.0 / speed if speed > 0 else None)

    # The chunker's longest clause (30 words), in ordinary words: what an answer's longest clause looks like.
    WARM_UP_TEXT = ("When you plan a long trip across the country, it helps to write down every stop, the distance "
                    "between them, where you will sleep and the food you will bring.")

    def warm_up(self) -> None:
        """Synthesise one clause of the chunker's longest length at load time.

        onnxruntime's CPU arena keeps the high-water mark of the largest clause it has run, and shorter
        clauses never give it back. Paying for an ordinary longest clause at load moves that step, and the
        one-off set-up cost, before the first call. It does not bound the arena: the mark follows phonemes,
        and a clause full of numbers has many more (docs/benchmarks.md, "Reliability and capacity").
        """
        for _ in self.synthesize(self.WARM_UP_TEXT):
            pass

    def steady(self) -> "PiperSynthesizer":
        """The same voice without Piper's random variation, so one text always gives the same samples.

        Piper samples its pitch and durations from unseeded noise, so every call sounds a little different;
        scripted replays want the same user audio on every run and machine.
        """
        from piper.config import SynthesisConfig

        twin = copy.copy(self)
        twin._options = SynthesisConfig(length_scale=self._options.length_scale, noise_scale=0.0, noise_w_scale=0.0)
        return twin

    def synthesize(self, text: str) -> Iterator[AudioFrame]:
        if not text.strip():
            return
        for chunk in self.voice.synthesize(text, syn_config=self._options):
            yield AudioFrame(chunk.audio_int16_array, chunk.sample_rate)


class EspeakSynthesizer:
    """espeak-ng through its command line (Debian package ``espeak-ng``)."""

    sample_rate = 22050

    def __init__(self, voice: str = "en-us", speed: float = 1.0) -> None:
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise FileNotFoundError("espeak-ng is not installed: apt-get install espeak-ng")
        self.binary = binary
        self.voice = voice or "en-us"
        self.words_per_minute = int(175 * speed)
        self.name = f"espeak-ng:{self.voice}"

    def synthesize(self, text: str) -> Iterator[AudioFrame]:
        if not text.strip():
            return
        import soundfile

        result = subprocess.run([self.binary, "--stdout", "-v", self.voice, "-s", str(self.words_per_minute),
                                 "--", text], capture_output=True, timeout=60, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"espeak-ng failed: {result.stderr.decode(errors='replace').strip()}")
        samples, rate = soundfile.read(io.BytesIO(result.stdout), dtype="int16")
        yield AudioFrame(np.asarray(samples), int(rate))
