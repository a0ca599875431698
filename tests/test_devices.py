"""One device picker, called by assistant/backends.py, whose choice every backend receives (no GPU here:
torch's answer is monkeypatched, and the backend classes are stand-ins that record what they were given)."""

import importlib
import sys

import pytest

from assistant import backends, devices
from assistant.config import ASRConfig, ConfigError, LLMConfig, TTSConfig, VisionConfig
from assistant.devices import pick_device


@pytest.fixture
def gpu(monkeypatch):
    monkeypatch.setattr(devices, "_torch_sees_a_gpu", lambda: True)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(devices, "_torch_sees_a_gpu", lambda: False)


def test_auto_is_the_cpu_without_a_gpu(no_gpu):
    assert pick_device("auto") == "cpu"


def test_auto_is_cuda_with_a_gpu(gpu):
    assert pick_device("auto") == "cuda"


def test_auto_without_torch_is_the_cpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # "import torch" raises ImportError
    assert pick_device("auto") == "cpu"


def test_this_machine_has_no_gpu_so_auto_is_the_cpu():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert pick_device("auto") == "cpu"


@pytest.mark.parametrize("requested, device", [("cpu", "cpu"), ("cuda", "cuda"), ("cuda:1", "cuda:1"),
                                               (" CUDA:0 ", "cuda:0")])
def test_explicit_devices_are_kept(gpu, requested, device):
    assert pick_device(requested) == device


def test_an_explicit_cpu_stays_the_cpu_with_a_gpu(gpu):
    assert pick_device("cpu") == "cpu"


@pytest.mark.parametrize("nonsense", ["gpu", "cuda:", "cuda:x", "cpu:0", "", "tpu"])
def test_nonsense_is_a_clear_config_error(nonsense):
    with pytest.raises(ConfigError, match=r"asr\.device .*choose auto, cpu, cuda or cuda:N"):
        pick_device(nonsense, "asr.device")


MADE: list = []  # the stand-ins built, in order


class Recorded:
    """Stands in for a backend class: keeps its arguments, loads nothing."""

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs
        self.name = "recorded"
        MADE.append(self)

    def warm_up(self) -> None:
        pass


@pytest.fixture
def recorded(monkeypatch, tmp_path):
    """The backend classes replaced where backends.py imports them from; bundled models not needed."""
    MADE.clear()
    for module, name in (("audio.asr", "FasterWhisperRecognizer"), ("audio.asr", "OpenAIWhisperRecognizer"),
                         ("audio.clip_whisper", "ClipWhisperRecognizer"), ("audio.tts", "PiperSynthesizer"),
                         ("assistant.llm.transformers_backend", "TransformersModel"),
                         ("assistant.vision.vlm", "TransformersVisionDescriber")):
        monkeypatch.setattr(importlib.import_module(module), name, Recorded)  # models load inside, not on import
    monkeypatch.setattr(backends.bundled, "whisper_tiny_en", lambda: tmp_path)
    monkeypatch.setattr(backends.bundled, "smollm2_gguf", lambda: tmp_path / "model.gguf")
    monkeypatch.setattr(backends.bundled, "piper_joe_voice", lambda: (tmp_path / "v.onnx", tmp_path / "v.json"))
    return MADE


def build_each(device: str) -> None:
    for asr in ("faster-whisper", "clip-whisper"):
        backends.load_recognizer(ASRConfig(backend=asr, device=device))
    backends.load_recognizer(ASRConfig(backend="openai-whisper", model="x.pt", device=device))
    backends.load_language_model(LLMConfig(backend="transformers", device=device))
    backends.load_synthesizer(TTSConfig(backend="piper", device=device))
    backends.load_describer(VisionConfig(backend="transformers:some/vlm", device=device))


def test_every_backend_gets_the_picked_device(recorded, gpu):
    build_each("auto")
    assert len(recorded) == 6
    assert [made.kwargs["device"] for made in recorded] == ["cuda"] * 6


def test_every_backend_gets_the_cpu_without_a_gpu(recorded, no_gpu):
    build_each("auto")
    assert [made.kwargs["device"] for made in recorded] == ["cpu"] * 6


def test_an_explicit_gpu_index_reaches_the_backends(recorded, no_gpu):
    build_each("cuda:1")
    assert [made.kwargs["device"] for made in recorded] == ["cuda:1"] * 6


def test_the_voice_stays_on_the_cpu_by_default(recorded, gpu):
    backends.load_synthesizer(TTSConfig(backend="piper"))
    assert recorded[0].kwargs["device"] == "cpu"


def test_a_bad_device_names_its_option(recorded):
    with pytest.raises(ConfigError, match="llm.device 'gpu'"):
        backends.load_language_model(LLMConfig(backend="transformers", device="gpu"))
    with pytest.raises(ConfigError, match="vision.device 'gpu'"):
        backends.load_describer(VisionConfig(backend="transformers:some/vlm", device="gpu"))
    assert recorded == []
