import numpy as np

from audio.echo import EchoReference, echo_share


def voice_like(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(int(16000 * seconds)).astype(np.float32)
    envelope = 0.5 + 0.5 * np.sin(np.arange(len(noise)) / 400.0)
    return (0.2 * noise * envelope).astype(np.float32)


def test_delayed_scaled_echo_is_recognised_and_the_users_voice_is_not():
    played = voice_like(1.0, 0)
    reference = EchoReference(16000)
    for start in range(0, 16000, 320):
        reference.played(played[start:start + 320])
    recent = reference.recent()
    echo = 0.4 * played[16000 - 2000 - 512:16000 - 2000]  # heard 125 ms later, quieter
    assert echo_share(echo, recent) > 0.95
    user = voice_like(0.032, 7)
    assert echo_share(user, recent) < 0.2
    # the user talking over the echo: most of the frame is no longer explained
    assert echo_share(user * 2 + echo * 0.5, recent) < 0.5


def test_silence_explains_nothing():
    reference = EchoReference(48000)
    reference.played(np.zeros(48000, dtype=np.int16))
    assert reference.level == 0.0
    assert echo_share(voice_like(0.032, 1), reference.recent()) == 0.0


def test_a_frame_is_not_explained_by_the_edge_of_a_word():
    reference = np.zeros(16000, dtype=np.float32)
    reference[8000:8040] = 0.3 * np.sin(np.arange(40) / 2.0)  # a 2.5 ms click, then silence
    t = np.arange(512) / 16000
    assert echo_share((0.3 * np.sin(2 * np.pi * 400 * t)).astype(np.float32), reference) < 0.3
