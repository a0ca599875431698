"""The echo canceller (WebRTC AEC3 through livekit) on synthetic rooms, and the played-audio timeline that
keeps its reference aligned when the speakers run dry. The live PulseAudio loop is in test_desktop_pulse.py."""

from __future__ import annotations

import numpy as np
import pytest

from audio.aec import PassthroughEchoCanceller, PlayedTimeline, WebRtcEchoCanceller, make_echo_canceller
from audio.frames import AudioFormatError, resample
from audio.wavfile import read_audio
from tests.conftest import SAMPLE_QUESTION

RATE = 16000


def speech(seconds: float) -> np.ndarray:
    voice = read_audio(SAMPLE_QUESTION)
    samples = resample(voice.mono_float32(), voice.sample_rate, RATE)
    return np.tile(samples, int(np.ceil(seconds * RATE / len(samples))))[: int(seconds * RATE)]


def room(far: np.ndarray, delay_ms: float = 30.0, seed: int = 0) -> np.ndarray:
    """The far-end as a microphone hears it: delayed, attenuated, with a short decaying reverb tail."""
    rng = np.random.default_rng(seed)
    delay = int(delay_ms * RATE / 1000)
    response = np.zeros(delay + 200)
    response[delay], response[delay + 40] = 0.5, -0.2
    response[delay + 1:] += rng.normal(0, 0.02, 199) * np.exp(-np.arange(199) / 50)
    return np.convolve(far, response)[: len(far)] + rng.normal(0, 1e-4, len(far))


def run(canceller, mic: np.ndarray, far: np.ndarray, block: int = 160) -> np.ndarray:
    out = []
    for k in range(0, len(mic) - block + 1, block):
        out.append(canceller.process(to_pcm(mic[k:k + block]), to_pcm(far[k:k + block])))
    return np.concatenate(out).astype(np.float64) / 32768


def to_pcm(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


def level_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def test_webrtc_canceller_removes_the_echo_and_keeps_the_near_voice():
    far = speech(8.0)
    near = np.zeros_like(far)
    near_voice = speech(2.0)[::-1] * 0.5  # a different "voice": the same speech reversed, from 6 s on
    near[6 * RATE:8 * RATE] = near_voice
    echo = room(far)
    cleaned = run(WebRtcEchoCanceller(RATE), echo + near, far)
    # Echo only, after AEC3 has adapted (2-5.5 s): at least 25 dB removed (measured 50-60 dB).
    suppression = level_db(echo[2 * RATE:int(5.5 * RATE)]) - level_db(cleaned[2 * RATE:int(5.5 * RATE)])
    # Both talking (6-8 s): the user's voice must still come through (AEC3 attenuates it somewhat).
    kept = level_db(cleaned[6 * RATE:8 * RATE]) - level_db(near_voice)
    print(f"echo removed {suppression:.1f} dB; near voice during double talk {kept:+.1f} dB")
    assert suppression > 25.0
    assert kept > -12.0


def test_canceller_counts_its_own_suppression_after_adapting():
    far = speech(6.0)
    canceller = WebRtcEchoCanceller(RATE)
    run(canceller, room(far), far)
    assert canceller.stats.suppression_db is not None and canceller.stats.suppression_db > 25.0
    silent = WebRtcEchoCanceller(RATE)
    run(silent, np.zeros_like(far), far)  # the speakers played, the microphone heard nothing: no figure
    assert silent.stats.suppression_db is None


def test_any_block_size_comes_out_in_whole_frames():
    canceller = WebRtcEchoCanceller(48000)
    outputs = [canceller.process(np.zeros(n, np.int16), np.zeros(n, np.int16)) for n in (256, 300, 900, 464)]
    assert sum(len(o) for o in outputs) == 1920 and all(len(o) % 480 == 0 for o in outputs)


def test_passthrough_and_bad_rates():
    mic = to_pcm(speech(0.1))
    assert np.array_equal(PassthroughEchoCanceller(RATE).process(mic, mic), mic)
    assert isinstance(make_echo_canceller(True, RATE), PassthroughEchoCanceller)
    assert isinstance(make_echo_canceller(False, RATE), WebRtcEchoCanceller)
    with pytest.raises(AudioFormatError, match="44100"):
        WebRtcEchoCanceller(44100)


def test_timeline_hands_out_what_played_while_the_microphone_recorded():
    timeline = PlayedTimeline(output_rate=48000, input_rate=48000)
    blocks = [np.full(480, k + 1, dtype=np.int16) for k in range(10)]
    for k, block in enumerate(blocks):
        timeline.played(block, dac_time=1.000 + 0.01 * k)
    # The microphone block recorded 1.000-1.020 gets exactly the first two speaker blocks.
    assert np.array_equal(timeline.reference_for(960, adc_time=1.000), np.concatenate(blocks[:2]))
    assert np.array_equal(timeline.reference_for(480, adc_time=1.0201), blocks[2])  # jitter is ignored


def test_timeline_fills_an_underrun_with_the_silence_the_speakers_played():
    timeline = PlayedTimeline(output_rate=16000, input_rate=16000)
    timeline.played(np.full(160, 7, np.int16), dac_time=5.00)
    timeline.played(np.full(160, 9, np.int16), dac_time=5.31)  # the callback came 300 ms late
    reference = timeline.reference_for(5280, adc_time=5.00)  # 330 ms of microphone
    assert timeline.gaps == 1
    assert np.all(reference[:160] == 7) and np.all(reference[160:4960] == 0) and np.all(reference[4960:5120] == 9)
