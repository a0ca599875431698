"""Every option of the assistant, typed, with its default, in one place.

Options come from (later wins): these defaults, a TOML file (``--config``; one table per section, e.g.
``[llm]``), environment variables ``ASSISTANT_<SECTION>_<FIELD>`` (e.g. ``ASSISTANT_LLM_MODEL``) and
command-line flags. A model is swapped with one setting, e.g. ``--llm transformers:HuggingFaceTB/SmolLM2-1.7B-Instruct``
or ``--llm openai:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-7B-Instruct``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duplex.models import GenerationOptions
from duplex.options import DuplexOptions

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful voice assistant. Your answers are spoken aloud, so answer in one to three short, "
    "plain sentences, without lists, markdown or emojis.")


class ConfigError(ValueError):
    """A configuration that cannot work; the message names the option and what it accepts."""


@dataclass
class ASRConfig:
    # whisper, encoder cut to the clip; or "faster-whisper" (30 s window), "openai-whisper"
    backend: str = "clip-whisper"
    model: str = ""  # "" = bundled whisper tiny.en; faster-/clip-whisper: a CT2 folder; openai-whisper: a .pt file
    device: str = "auto"  # auto (cuda when torch sees a GPU, else cpu), cpu, cuda or cuda:N
    compute_type: str = "default"  # faster-whisper: int8, float16, ...
    language: str = "en"
    beam_size: int = 1


# Decoding measured for the bundled SmolLM2-135M (docs/benchmarks.md, Answer quality, 2026-12-04): greedy
# decoding looped in 8 % of its answers ("Antarctica, Antarctica, Antarctica"); a repeat penalty of 1.2 left
# none and the accepted answers as they were. Another model gets its own entry once measured.
BUNDLED_DECODING: dict[str, float] = {"repeat_penalty": 1.2}


@dataclass
class LLMConfig:
    backend: str = "llama-cpp"  # or "transformers", "openai"
    model: str = ""  # "" = bundled SmolLM2-135M-Instruct GGUF; else a path, hub id or server model name
    device: str = "auto"  # transformers: auto, cpu, cuda or cuda:N (llama-cpp: gpu_layers; openai: the server's)
    base_url: str = "http://127.0.0.1:8000/v1"  # openai backend only
    api_key: str = ""  # openai backend only; falls back to $OPENAI_API_KEY
    context_tokens: int = 2048
    gpu_layers: int = 0  # llama.cpp: layers to offload (-1 = all) when built with CUDA
    kv_cache_f32: bool = True  # llama.cpp: f32 attention cache (see llama_cpp_backend.py for why)
    max_answer_tokens: int = 120
    temperature: float = 0.0
    # llama.cpp / transformers; > 1 discourages saying the same words again. None: the model's own measured
    # setting (``BUNDLED_DECODING`` for the bundled model; 1.0, off, for any other until measured)
    repeat_penalty: float | None = None
    system_prompt: str = DEFAULT_SYSTEM_PROMPT

    def generation(self) -> GenerationOptions:
        """The decoding settings every answer uses (sessions and ``assistant ask`` alike)."""
        measured = BUNDLED_DECODING if not self.model else {}
        penalty = self.repeat_penalty if self.repeat_penalty is not None else measured.get("repeat_penalty", 1.0)
        return GenerationOptions(max_tokens=self.max_answer_tokens, temperature=self.temperature,
                                 repeat_penalty=penalty)


@dataclass
class TTSConfig:
    backend: str = "piper"  # or "espeak"
    voice: str = ""  # "" = bundled en_US-joe-medium (piper) / "en-us" (espeak); piper: path to a .onnx voice
    speed: float = 1.0  # >1 speaks faster
    device: str = "cpu"  # piper: a clause is quick on the CPU; cuda or cuda:N needs onnxruntime-gpu
    release_memory: bool = True  # piper: hand the CPU arena back after each clause (flat memory in long calls)


@dataclass
class VADConfig:
    backend: str = "silero"  # or "webrtcvad"
    threshold: float = 0.5


@dataclass
class VisionConfig:
    # "experts" (OCR, faces, colours on the CPU), "transformers:MODEL" (a VLM: hub id or folder), or "none"
    backend: str = "experts"
    device: str = "auto"  # transformers VLM: auto (cuda when torch sees a GPU, else cpu), cpu, cuda or cuda:N
    max_new_tokens: int = 48  # transformers VLM: length of the frame description
    ocr: bool = True  # experts: read visible text
    faces: bool = True  # experts: count faces
    separate_process: bool = True  # experts: run in a child process at idle CPU priority (keeps the audio path fast)


@dataclass
class AssistantConfig:
    asr: ASRConfig = field(default_factory=ASRConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    tts: TTSConfig = field(default_factory=TTSConfig)
    vad: VADConfig = field(default_factory=VADConfig)
    vision: VisionConfig = field(default_factory=VisionConfig)
    duplex: DuplexOptions = field(default_factory=DuplexOptions)
    max_question_seconds: float = 120.0
    separate_worker_models: bool = False  # load a second copy of every model, one per worker (two GPUs)
    state_embedder: str = "auto"  # LLM hidden state for the query/noise head: auto, smollm2 or none
    # P(query) needed to interrupt the assistant, set apart from the trained value (0.75-0.8): in the real-time
    # benchmark 0.8 let 3 of 10 spoken barge-ins through as "not a query", 0.6 let misheard noise and echo
    # fragments interrupt (docs/state-decision.md has the sweep; docs/benchmarks.md the runs).
    state_speaking_threshold: float = 0.7

    def set(self, dotted: str, value: Any) -> None:
        """Set ``section.field`` (or a top-level field) from a string or typed value, checking the name."""
        section, name = dotted.split(".", 1) if "." in dotted else ("", dotted)
        target = getattr(self, section, None) if "." in dotted else self
        if not dataclasses.is_dataclass(target):
            raise ConfigError(f"unknown config section {section!r}; sections: asr, llm, tts, vad, vision, duplex")
        fields = {f.name: f for f in dataclasses.fields(target)}
        if name not in fields:
            raise ConfigError(f"unknown option {dotted!r}; known: {', '.join(sorted(fields))}")
        current = getattr(target, name)
        setattr(target, name, _coerce(dotted, value, current, str(fields[name].type)))


def _coerce(name: str, value: Any, current: Any, annotation: str = "") -> Any:
    if dataclasses.is_dataclass(current):
        raise ConfigError(f"{name} is a section; set its fields, e.g. {name}.model")
    if isinstance(value, str) and "None" in annotation and value.strip().lower() in ("", "none", "null", "off"):
        return None  # an optional setting switched off
    if current is None and isinstance(value, str):  # an optional field now unset: its annotation says the type
        current = 0.0 if "float" in annotation else 0 if "int" in annotation else ""
    if not isinstance(value, str) or isinstance(current, str):
        return value
    try:
        if isinstance(current, bool):
            return value.lower() in ("1", "true", "yes", "on")
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
    except ValueError:
        expected = "an integer" if isinstance(current, int) else "a number"
        raise ConfigError(f"{name} must be {expected}, got {value!r}") from None
    return value


def parse_llm_spec(spec: str, config: LLMConfig) -> None:
    """Apply ``BACKEND[:MODEL]``; for openai, MODEL is ``BASE_URL#MODEL_NAME``."""
    backend, _, model = spec.partition(":")
    if backend not in ("llama-cpp", "transformers", "openai"):
        raise ConfigError(f"--llm {spec!r}: backend must be llama-cpp, transformers or openai")
    config.backend = backend
    if backend == "openai":
        url, _, name = model.partition("#")
        if not url or not name:
            raise ConfigError(f"--llm {spec!r}: use openai:BASE_URL#MODEL, e.g. openai:http://127.0.0.1:8000/v1#my-model")
        config.base_url, config.model = url, name
    else:
        config.model = model


def load_config(path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> AssistantConfig:
    config = AssistantConfig()
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML: {error}") from None
        for key, value in data.items():
            if isinstance(value, dict):
                for inner, inner_value in value.items():
                    _set_from(config, f"{key}.{inner}", inner_value, f"{path}")
            else:
                _set_from(config, key, value, f"{path}")
    variables: Mapping[str, str] = os.environ if environ is None else environ
    for section in ("asr", "llm", "tts", "vad", "vision", "duplex"):
        for option in dataclasses.fields(getattr(config, section)):
            variable = f"ASSISTANT_{section.upper()}_{option.name.upper()}"
            if variable in variables:
                _set_from(config, f"{section}.{option.name}", variables[variable], variable)
    return config


def _set_from(config: AssistantConfig, dotted: str, value: Any, origin: str) -> None:
    try:
        config.set(dotted, value)
    except ConfigError as error:
        raise ConfigError(f"{origin}: {error}") from None
