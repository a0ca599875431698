"""The openai-whisper backend's loading and decoding path, on a tiny random checkpoint the test writes."""

from dataclasses import asdict

import numpy as np
import pytest

from assistant.backends import load_recognizer
from assistant.config import ASRConfig, ConfigError

pytestmark = pytest.mark.slow


def write_tiny_checkpoint(path):
    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=32, n_audio_head=2, n_audio_layer=1,
                           n_vocab=51864, n_text_ctx=448, n_text_state=32, n_text_head=2, n_text_layer=1)
    model = Whisper(dims)
    # whisper leaves the decoder's positional embedding as torch.empty (real checkpoints overwrite it):
    # give it values, or uninitialised memory sometimes holds NaN
    torch.nn.init.normal_(model.decoder.positional_embedding, std=0.02)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    torch.save({"dims": asdict(dims), "model_state_dict": model.state_dict()}, path)


def test_openai_whisper_loads_a_checkpoint_file_and_transcribes(tmp_path):
    checkpoint = tmp_path / "tiny-random.pt"
    write_tiny_checkpoint(checkpoint)
    recognizer = load_recognizer(ASRConfig(backend="openai-whisper", model=str(checkpoint), device="cpu"))
    assert recognizer.language == "en"  # 51864 tokens: an English-only vocabulary
    t = np.arange(16000) / 16000
    transcript = recognizer.transcribe((0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    assert isinstance(transcript.text, str)
    assert transcript.segments and 0.0 <= transcript.no_speech_prob <= 1.0


def test_openai_whisper_needs_a_checkpoint():
    with pytest.raises(ConfigError, match="checkpoint"):
        load_recognizer(ASRConfig(backend="openai-whisper"))
    with pytest.raises(FileNotFoundError, match="not found"):
        load_recognizer(ASRConfig(backend="openai-whisper", model="/nonexistent.pt"))
