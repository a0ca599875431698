import numpy as np
import pytest

from audio.frames import AudioFrame
from audio.vad import SileroVad, SpeechSegmenter, WebRtcVad, frame_probabilities, trim_to_speech
from audio.wavfile import read_audio
from tests.conftest import SAMPLE_QUESTION


@pytest.fixture(params=["silero", "webrtcvad"])
def vad(request):
    return SileroVad() if request.param == "silero" else WebRtcVad()


def test_trim_keeps_the_spoken_question_and_drops_the_silence(vad):
    question = read_audio(SAMPLE_QUESTION)  # 0.6 s silence, ~1.7 s speech, 0.8 s silence
    trimmed = trim_to_speech(question, vad, padding_s=0.1)
    assert trimmed is not None
    assert 0.35 <= trimmed.timestamp <= 0.6
    assert 1.4 <= trimmed.duration <= 2.4


def test_silence_and_hum_are_not_speech(vad):
    assert trim_to_speech(AudioFrame.silence(2.0), vad) is None
    t = np.arange(32000) / 16000
    hum = AudioFrame((0.05 * np.sin(2 * np.pi * 50 * t)).astype(np.float32), 16000)
    probabilities = frame_probabilities(vad, hum.mono_int16())
    assert probabilities.mean() < 0.2


def test_silero_refuses_a_wrong_frame_size():
    with pytest.raises(ValueError, match="512 samples"):
        SileroVad().speech_probability(np.zeros(480, dtype=np.int16))


def test_segmenter_reports_onset_time_not_decision_time():
    segmenter = SpeechSegmenter(frame_seconds=0.032, start_frames=3, end_silence_s=0.256, early_silence_frames=4)
    probabilities = [0.0] * 5 + [0.9] * 20 + [0.1] * 10
    events = [e for i, p in enumerate(probabilities) if (e := segmenter.push(p, i * 0.032))]
    assert [e.kind.value for e in events] == ["speech_start", "silence_start", "speech_end"]
    assert events[0].time == pytest.approx(5 * 0.032)
    assert events[1].time == events[2].time == pytest.approx(25 * 0.032)  # both name the last voiced sample


def test_segmenter_ignores_a_blip_shorter_than_the_onset_run():
    segmenter = SpeechSegmenter(frame_seconds=0.032, start_frames=3)
    events = [segmenter.push(p, i * 0.032) for i, p in enumerate([0.9, 0.9, 0.1, 0.9, 0.1])]
    assert not any(events)
