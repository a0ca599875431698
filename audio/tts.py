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
from typing import Any

import numpy as np

from audio.frames import AudioFrame


class _ArenaReleasingSession:
    """An onnxruntime session whose every run hands its CPU arena's free memory back afterwards.

    Left alone, the arena keeps the high-water mark of the longest clause ever synthesised, and a long
    conversation ratchets it up a step at a time (docs/benchmarks.md, "Reliability and capacity"). Piper calls
    ``run(None, inputs)`` itself, so the run options ride in here.
    """

    def __init__(self, session: Any) -> None:
        import onnxruntime

        self._session = session
        self._run_options = onnxruntime.RunOptions()
        self._run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, output_names: Any, input_feed: dict[str, Any], run_options: Any = None) -> Any:
        return self._session.run(output_names, input_feed, run_options or self._run_options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


class PiperSynthesizer:
    def __init__(self, model_path: str | Path, config_path: str | Path | None = None, speed: float = 1.0,
                 device: str = "cpu", release_memory: bool = True) -> None:
        """``device``: ``cpu``, ``cuda`` or ``cuda:N`` (the GPU needs onnxruntime-gpu).

        ``release_memory``: give the CPU arena back after every clause, so memory does not follow the longest
        clause of the conversation (costs a few per cent of synthesis time).
        """
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
        if release_memory:
            # A memory pattern is one buffer planned per input shape; every clause has its own shape.
            options.enable_mem_pattern = False
        kind, _, index = device.partition(":")
        providers: list = ["CPUExecutionProvider"]
        if kind == "cuda":
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(index or 0)}))
        self.device = device
        session: Any = onnxruntime.InferenceSession(str(model_path), sess_options=options, providers=providers)
        if release_memory:
            session = _ArenaReleasingSession(session)
        self.voice = PiperVoice(session=session, config=PiperConfig.from_dict(json.loads(config_path.read_text())))
        self.sample_rate = int(self.voice.config.sample_rate)
        self.name = f"piper:{model_path.stem}"
        self._options = SynthesisConfig(length_scale=1.0 / speed if speed > 0 else None)

    # The chunker's longest clause (30 words), in ordinary words: what an answer's longest clause looks like.
    WARM_UP_TEXT = ("When you plan a long trip across the country, it helps to write down every stop, the distance "
                    "between them, where you will sleep and the food you will bring.")

    def warm_up(self) -> None:
        """Synthesise one clause of the chunker's longest length at load time.

        The first run of a session pays onnxruntime's one-off set-up; paying it at load keeps it off the
        first answer. (Without ``release_memory`` it also moves the arena's step for an ordinary longest
        clause before the first call.)
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
