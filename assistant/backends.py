"""Build the model backends a configuration names, with a progress line per model.

This is the only place that maps configuration strings to classes, and the only one that decides which
device a model runs on (``pick_device``; the backends take the device they are given): adding a backend is
one class in ``audio/`` or ``assistant/llm/`` plus one branch here.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from assistant import bundled
from assistant.config import ASRConfig, AssistantConfig, ConfigError, LLMConfig, TTSConfig, VADConfig, VisionConfig
from assistant.devices import pick_device
from duplex.models import FrameDescriber, LanguageModel, SpeechRecognizer, SpeechSynthesizer, VoiceActivityDetector

T = TypeVar("T")


def load_recognizer(config: ASRConfig) -> SpeechRecognizer:
    device = pick_device(config.device, "asr.device")
    if config.backend == "faster-whisper":
        from audio.asr import FasterWhisperRecognizer

        recognizer = FasterWhisperRecognizer(config.model or bundled.whisper_tiny_en(), device=device,
                                             compute_type=config.compute_type, language=config.language or None,
                                             beam_size=config.beam_size)
        recognizer.warm_up()
        return recognizer
    if config.backend == "openai-whisper":
        from audio.asr import OpenAIWhisperRecognizer

        if not config.model:
            raise ConfigError("asr.backend openai-whisper needs asr.model: the path of a whisper .pt checkpoint")
        return OpenAIWhisperRecognizer(config.model, device=device, language=config.language or None)
    if config.backend == "clip-whisper":
        from audio.clip_whisper import ClipWhisperRecognizer

        clip_recognizer = ClipWhisperRecognizer(config.model or bundled.whisper_tiny_en(), device=device,
                                                language=config.language or None)
        clip_recognizer.warm_up()
        return clip_recognizer
    raise ConfigError(f"unknown asr.backend {config.backend!r}; choose faster-whisper, clip-whisper or openai-whisper")


def load_language_model(config: LLMConfig) -> LanguageModel:
    if config.backend == "llama-cpp":
        from assistant.llm.llama_cpp_backend import LlamaCppModel

        return LlamaCppModel(config.model or bundled.smollm2_gguf(), context_tokens=config.context_tokens,
                             gpu_layers=config.gpu_layers, kv_cache_f32=config.kv_cache_f32)
    if config.backend == "transformers":
        from assistant.llm.transformers_backend import TransformersModel

        return TransformersModel(config.model or bundled.smollm2_gguf(),
                                 device=pick_device(config.device, "llm.device"))
    if config.backend == "openai":
        from assistant.llm.openai_backend import OpenAICompatibleModel

        if not config.model:
            raise ConfigError("llm.backend openai needs llm.model: the model name the server serves")
        return OpenAICompatibleModel(config.base_url, config.model, api_key=config.api_key or None)
    raise ConfigError(f"unknown llm.backend {config.backend!r}; choose llama-cpp, transformers or openai")


def load_synthesizer(config: TTSConfig) -> SpeechSynthesizer:
    if config.backend == "piper":
        from audio.tts import PiperSynthesizer

        device = pick_device(config.device, "tts.device")
        if config.voice:
            piper = PiperSynthesizer(config.voice, speed=config.speed, device=device,
                                     release_memory=config.release_memory)
        else:
            model, voice_config = bundled.piper_joe_voice()
            piper = PiperSynthesizer(model, voice_config, speed=config.speed, device=device,
                                     release_memory=config.release_memory)
        piper.warm_up()
        return piper
    if config.backend == "espeak":
        from audio.tts import EspeakSynthesizer

        return EspeakSynthesizer(config.voice or "en-us", speed=config.speed)
    raise ConfigError(f"unknown tts.backend {config.backend!r}; choose piper or espeak")


def load_vad(config: VADConfig) -> VoiceActivityDetector:
    from audio.vad import make_vad

    try:
        return make_vad(config.backend)
    except ValueError as error:
        raise ConfigError(f"vad.backend: {error}") from None


def load_describer(config: VisionConfig) -> FrameDescriber | None:
    """The camera's describer: ``experts`` (CPU: OCR, faces, colours), ``transformers:MODEL`` (a VLM), ``none``."""
    backend, _, model = config.backend.partition(":")
    if backend == "none":
        return None
    if backend == "experts":
        from functools import partial

        from assistant.vision.experts import ExpertDescriber

        if not config.separate_process:
            return ExpertDescriber(ocr=config.ocr, faces=config.faces)
        from assistant.vision.process import DescriberProcess

        return DescriberProcess(partial(ExpertDescriber, ocr=config.ocr, faces=config.faces))
    if backend == "transformers":
        from assistant.vision.vlm import TransformersVisionDescriber

        if not model:
            raise ConfigError("vision.backend transformers needs a model: transformers:HUB_ID_OR_FOLDER")
        return TransformersVisionDescriber(model, device=pick_device(config.device, "vision.device"),
                                           max_new_tokens=config.max_new_tokens)
    raise ConfigError(f"unknown vision.backend {config.backend!r}; choose experts, transformers:MODEL or none")


@dataclass
class ModelStack:
    """The loaded models of one assistant, plus how long each took to load."""

    recognizer: SpeechRecognizer
    language_model: LanguageModel
    synthesizer: SpeechSynthesizer
    vad: VoiceActivityDetector
    load_seconds: dict[str, float] = field(default_factory=dict)


def _timed(label: str, load: Callable[[], T], seconds: dict[str, float], progress: bool) -> T:
    if progress:
        print(f"loading {label} ...", end="", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        model = load()
    except Exception:
        if progress:
            print(" failed", file=sys.stderr, flush=True)
        raise
    seconds[label] = time.perf_counter() - start
    if progress:
        print(f" {getattr(model, 'name', '')} in {seconds[label]:.2f} s", file=sys.stderr, flush=True)
    return model


def load_stack(config: AssistantConfig, progress: bool = True) -> ModelStack:
    seconds: dict[str, float] = {}
    vad = _timed("vad", lambda: load_vad(config.vad), seconds, progress)
    recognizer = _timed("asr", lambda: load_recognizer(config.asr), seconds, progress)
    language_model = _timed("llm", lambda: load_language_model(config.llm), seconds, progress)
    synthesizer = _timed("tts", lambda: load_synthesizer(config.tts), seconds, progress)
    return ModelStack(recognizer, language_model, synthesizer, vad, seconds)
