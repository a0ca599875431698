"""Whisper with the encoder cut to the clip (audio/clip_whisper.py): the weight conversion, the decoding
guards, and the real bundled tiny.en (word error rates on the shared recordings: tests/test_asr.py)."""

import struct

import numpy as np
import pytest

from audio.asr import word_error_rate
from audio.clip_whisper import ClipWhisperRecognizer, _dtw_path, read_ctranslate2_weights, repeated_tail
from audio.wavfile import read_audio
from tests.conftest import SAMPLE_QUESTION


def test_a_repeated_run_at_the_end_is_found():
    assert repeated_tail([1, 2, 3, 4, 2, 3, 4]) == 3
    assert repeated_tail([9, 1, 2, 3, 4, 1, 2, 3, 4]) == 4
    assert repeated_tail([7, 8, 7, 8]) == 2  # "Wait. Wait."
    assert repeated_tail([1, 2, 3, 4, 5, 6]) == 0
    assert repeated_tail([5, 5, 5, 5]) == 0  # "very very very" is speech, not a loop
    assert repeated_tail([]) == 0


def test_time_warping_follows_the_cheap_cells():
    cost = np.ones((3, 6))
    cost[0, 0:2] = cost[1, 2:4] = cost[2, 4:6] = 0.0  # token 0 on frames 0-1, token 1 on 2-3, token 2 on 4-5
    rows, frames = _dtw_path(cost)
    assert rows.tolist() == [0, 0, 1, 1, 2, 2] and frames.tolist() == [0, 1, 2, 3, 4, 5]
    rows, frames = _dtw_path(np.zeros((1, 1)))
    assert rows.tolist() == [0] and frames.tolist() == [0]


def _model_bin(tmp_path, version=6, spec="WhisperSpec"):
    def string(text):
        raw = text.encode() + b"\0"
        return struct.pack("H", len(raw)) + raw

    body = struct.pack("I", version) + string(spec) + struct.pack("I", 3) + struct.pack("I", 1)
    values = np.arange(6, dtype=np.float16).reshape(2, 3)
    body += string("encoder/x") + struct.pack("B", 2) + struct.pack("II", 2, 3) + struct.pack("B", 4)
    body += struct.pack("I", values.nbytes) + values.tobytes()
    body += struct.pack("I", 1) + string("decoder/y") + string("encoder/x")
    path = tmp_path / "model.bin"
    path.write_bytes(body)
    return path, values


def test_the_ctranslate2_reader_reads_variables_and_aliases(tmp_path):
    path, values = _model_bin(tmp_path)
    variables = read_ctranslate2_weights(path)
    assert np.array_equal(variables["encoder/x"], values) and variables["decoder/y"] is variables["encoder/x"]


@pytest.mark.parametrize("version, spec, message", [(5, "WhisperSpec", "version 5"),
                                                     (6, "TransformerSpec", "not a whisper model")])
def test_the_ctranslate2_reader_refuses_what_it_cannot_read(tmp_path, version, spec, message):
    path, _ = _model_bin(tmp_path, version, spec)
    with pytest.raises(ValueError, match=message):
        read_ctranslate2_weights(path)


def test_a_folder_without_a_model_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.bin"):
        ClipWhisperRecognizer(tmp_path, device="cpu")


@pytest.fixture(scope="module")
def clip_recognizer():
    from assistant.backends import load_recognizer
    from assistant.config import ASRConfig

    return load_recognizer(ASRConfig(backend="clip-whisper"))


@pytest.mark.slow
def test_the_converted_encoder_matches_ctranslate2(clip_recognizer):
    """Same weights, same 30 s window: the PyTorch encoder must give CTranslate2's output."""
    import ctranslate2
    import torch
    import whisper
    from faster_whisper import WhisperModel

    from assistant.bundled import whisper_tiny_en

    audio = np.zeros(30 * 16000, np.float32)
    speech = read_audio(SAMPLE_QUESTION).convert(sample_rate=16000).mono_float32()
    audio[:len(speech)] = speech
    mel = whisper.log_mel_spectrogram(torch.from_numpy(audio))[:, :3000].unsqueeze(0)
    with torch.inference_mode():
        ours = clip_recognizer._encode(mel).numpy()
    reference = WhisperModel(str(whisper_tiny_en()), device="cpu", compute_type="float32", local_files_only=True)
    theirs = np.array(reference.model.encode(ctranslate2.StorageView.from_array(mel.numpy())))
    assert ours.shape == theirs.shape == (1, 1500, 384)
    assert np.abs(ours - theirs).max() < 0.05 * np.abs(theirs).max()
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.999


@pytest.mark.slow
def test_it_hears_the_sample_question_and_knows_silence(clip_recognizer):
    heard = clip_recognizer.transcribe(read_audio(SAMPLE_QUESTION).mono_float32())
    assert "capital" in heard.text.lower() and "france" in heard.text.lower() and not heard.looks_like_noise
    quiet = clip_recognizer.transcribe(np.zeros(16000, dtype=np.float32))
    assert quiet.no_speech_prob > heard.no_speech_prob
    assert clip_recognizer.transcribe(np.zeros(0, dtype=np.float32)).text == ""
    with pytest.raises(ValueError, match="mono"):
        clip_recognizer.transcribe(np.zeros((2, 16000), dtype=np.float32))


@pytest.mark.slow
def test_short_lines_are_not_said_twice(clip_recognizer, user_voice):
    """The cut window's known fault: on a short clip the model may loop back to the start."""
    from audio.frames import AudioFrame

    for line in ("Will we ever forget it?", "Stop!", "Wait.", "Cancel.", "Thank you.", "What time is it?"):
        audio = AudioFrame.concatenate(list(user_voice.synthesize(line))).convert(sample_rate=16000)
        # as a segment reaches the ASR: 0.3 s of pre-roll before the onset, the pause's start after the end
        padded = np.concatenate([np.zeros(4800, np.float32), audio.mono_float32(), np.zeros(2000, np.float32)])
        heard = clip_recognizer.transcribe(padded).text
        assert word_error_rate(line, heard) <= 0.5, (line, heard)
        assert len(heard.split()) <= len(line.split()) + 1, (line, heard)


@pytest.mark.slow
def test_words_the_model_adds_past_the_end_of_the_clip_are_dropped(clip_recognizer, user_voice):
    """An unfinished sentence cut right at its last word: in the short window tiny.en finishes it
    ("...cats and cats."); the alignment puts the added word in the silence after the clip."""
    from audio.frames import AudioFrame

    voice = AudioFrame.concatenate(list(user_voice.synthesize("Tell me a fact about cats and")))
    audio = np.concatenate([np.zeros(1600, np.float32), voice.convert(sample_rate=16000).mono_float32()])
    heard = clip_recognizer.transcribe(audio).text
    assert heard.lower().rstrip(".").endswith("cats and"), heard


@pytest.mark.slow
def test_clips_longer_than_one_window_are_transcribed_whole(clip_recognizer):
    speech = read_audio(SAMPLE_QUESTION).convert(sample_rate=16000).mono_float32()
    audio = np.concatenate([speech, np.zeros(30 * 16000 - len(speech), np.float32), speech])
    heard = clip_recognizer.transcribe(audio)
    assert len(heard.segments) == 2 and heard.text.lower().count("capital") == 2

