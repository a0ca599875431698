"""LiveEvents: what a live display is sent for hand-made session events."""

from types import SimpleNamespace

from duplex.events import (
    AssistantAudio, Duck, LLMToken, PlaybackStarted, SpeechStarted, StateDecided, TurnStarted,
)
from duplex.decision import StateToken
from audio.frames import AudioFrame
from ui.live_events import LiveEvents


def fake_session():
    a, b = SimpleNamespace(name="A", answering=False), SimpleNamespace(name="B", answering=False)
    return SimpleNamespace(workers=[a, b], speaker=None, listener=a, output=SimpleNamespace(speaking=False))


def test_latencies_labels_roles_and_what_is_left_out():
    session = fake_session()
    live = LiveEvents(session)
    audio = AudioFrame.silence(0.02)
    assert live.messages(AssistantAudio(time=0.1, worker="A", turn_id=1, frame=audio, text="x")) == []
    decided = live.messages(StateDecided(time=1.0, worker="A", segment_id=1, token=StateToken.IGNORE, query_probability=0.1,
                                         reason="noise", text=""))
    assert decided[0]["label"] == "noise" and decided[0]["type"] == "event"
    live.messages(TurnStarted(time=2.0, worker="A", turn_id=1, question="q", from_time=1.5))
    session.speaker, session.listener = session.workers[0], session.workers[1]
    session.output.speaking = True
    messages = live.messages(PlaybackStarted(time=2.25, turn_id=1))
    assert messages[0]["latency_ms"] == 750
    assert messages[1] == {"type": "workers", "time": 2.25, "workers": {"A": "answering", "B": "listening"}}
    assert len(live.messages(PlaybackStarted(time=2.3, turn_id=1))) == 1  # roles unchanged: no second message
    lowered = live.messages(Duck(time=2.95, turn_id=1, reason="a sound that may be speech", gain=0.3))
    assert "after_onset_ms" not in lowered[0]
    live.messages(SpeechStarted(time=3.1, onset=3.0, segment_id=2))
    assert live.messages(Duck(time=3.12, turn_id=1, reason="onset"))[0]["after_onset_ms"] == 120
    assert "after_onset_ms" not in live.messages(Duck(time=4.0, turn_id=1, reason="again"))[0]
    assert live.messages(LLMToken(time=2.1, worker="A", turn_id=1, text=" Paris"))[0]["text"] == " Paris"
