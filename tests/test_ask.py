"""`assistant ask` end to end on the real models, and its answers to bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from assistant.ask import NoSpeechError, ask
from audio.frames import AudioFrame
from audio.wavfile import read_audio, write_wav
from tests.conftest import REPO_ROOT, SAMPLE_QUESTION

pytestmark = pytest.mark.slow


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO_ROOT)


def test_spoken_question_gets_a_spoken_answer(stack, config, recognizer):
    result = ask(stack, config, audio=read_audio(SAMPLE_QUESTION))
    assert "capital of france" in result.question.lower()
    assert "paris" in result.answer.lower()
    assert result.speech is not None and result.speech.duration > 0.5
    heard = recognizer.transcribe(result.speech.convert(sample_rate=16000).mono_float32()).text
    assert "paris" in heard.lower()
    timings = result.timings
    for key in ("vad_s", "asr_s", "llm_first_token_s", "first_audio_s", "total_s"):
        assert timings[key] > 0, key
    assert timings["first_audio_s"] < timings["total_s"]  # speech started before the answer was complete


def test_typed_question(stack, config):
    result = ask(stack, config, text="Name a fruit that is yellow.")
    assert result.answer and result.speech is not None


def test_silence_is_no_question(stack, config):
    with pytest.raises(NoSpeechError, match="no speech"):
        ask(stack, config, audio=AudioFrame.silence(2.0))


def test_cli_answers_a_44khz_stereo_file(tmp_path):
    stereo = read_audio(SAMPLE_QUESTION).convert(sample_rate=44100, channels=2)
    question = write_wav(tmp_path / "q44.wav", stereo)
    out = tmp_path / "answer.wav"
    result = run_cli("ask", "--audio", str(question), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert "capital" in report["question"].lower() and report["answer"]
    assert set(report["load_seconds"]) == {"vad", "asr", "llm", "tts"}
    assert "loading llm" in result.stderr  # progress while loading
    answer = read_audio(out)
    assert answer.duration > 0.5 and np.abs(answer.samples).max() > 1000


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b""), "the file is empty"),
    (lambda p: p.write_text("this is not audio at all\n" * 50), "not a readable audio file"),
    (lambda p: write_wav(p, AudioFrame.silence(600.0, 16000)), "longer than the limit"),
    (lambda p: None, "no such file"),
])
def test_cli_bad_audio_gives_one_clear_error_line(tmp_path, make, message):
    path = tmp_path / "question.wav"
    make(path)
    result = run_cli("ask", "--audio", str(path), timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error:") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_bad_option_gives_a_clear_error():
    result = run_cli("ask", "--text", "hi", "--set", "llm.modle=x", timeout=60)
    assert result.returncode == 2 and "unknown option 'llm.modle'" in result.stderr


def test_cli_models_lists_the_bundled_models():
    result = run_cli("models", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("whisper tiny.en", "SmolLM2", "joe-medium", "Silero"):
        assert name in result.stdout
    assert "MISSING" not in result.stdout
