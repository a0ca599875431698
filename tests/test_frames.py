import numpy as np
import pytest

from audio.frames import AudioFormatError, AudioFrame, StreamResampler, resample, rms_dbfs, to_float32, to_int16

RATES = (8000, 16000, 22050, 24000, 48000)


def tone(frequency: float, rate: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def peak_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


@pytest.mark.parametrize("source", RATES)
@pytest.mark.parametrize("target", RATES)
def test_resampling_keeps_pitch_and_duration(source, target):
    out = resample(tone(440.0, source), source, target)
    assert abs(len(out) - target * 0.5) <= 2
    assert abs(peak_frequency(out, target) - 440.0) < 5.0


def test_stream_resampler_matches_whole_signal_resampling():
    signal = tone(300.0, 48000, 1.0)
    stream = StreamResampler(48000, 16000)
    pieces = [stream.process(signal[i:i + 960]) for i in range(0, len(signal), 960)]
    pieces.append(stream.process(np.zeros(0, dtype=np.float32), last=True))
    streamed = np.concatenate(pieces)
    whole = resample(signal, 48000, 16000)
    assert abs(len(streamed) - len(whole)) <= 2
    n = min(len(streamed), len(whole)) - 200
    assert np.max(np.abs(streamed[200:n] - whole[200:n])) < 1e-3  # no clicks at the 20 ms chunk edges


def test_int16_float_round_trip_and_clipping():
    values = np.array([-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5], dtype=np.float32)
    ints = to_int16(values)
    assert ints.dtype == np.int16 and ints[0] == -32768 and ints[-1] == 32767
    assert np.allclose(to_float32(ints)[2:5], values[2:5], atol=1e-4)


def test_frame_conversions_between_mono_stereo_and_types():
    mono = AudioFrame(to_int16(tone(440, 48000)), 48000, timestamp=1.5)
    stereo = mono.convert(channels=2)
    assert stereo.channels == 2 and stereo.samples.dtype == np.int16
    assert np.array_equal(stereo.samples[:, 0], stereo.samples[:, 1])
    back = stereo.convert(sample_rate=16000, channels=1, dtype=np.float32)
    assert back.sample_rate == 16000 and back.channels == 1 and back.samples.dtype == np.float32
    assert back.timestamp == 1.5 and abs(back.duration - 0.5) < 1e-3
    assert abs(rms_dbfs(back.samples) - rms_dbfs(mono.samples)) < 0.5


def test_bad_frames_are_refused_with_clear_errors():
    with pytest.raises(AudioFormatError, match="1-D or 2-D"):
        AudioFrame(np.zeros((2, 2, 2)), 16000)
    with pytest.raises(AudioFormatError, match="mono and stereo"):
        AudioFrame.silence(0.1).convert(channels=3)
    with pytest.raises(AudioFormatError, match="positive"):
        AudioFrame(np.zeros(10, dtype=np.int16), 0)


def test_silence_and_loudness():
    assert rms_dbfs(AudioFrame.silence(0.1).samples) == -120.0
    assert -10 < rms_dbfs(tone(440, 16000)) < -8  # 0.5 amplitude sine: -9 dBFS
