"""LiveEvents: what a live display is sent for hand-made session events, and the terminal's lines for them."""

from types import SimpleNamespace

from audio.frames import AudioFrame
from duplex.decision import StateToken
from duplex.events import (
    AssistantAudio,
    Duck,
    HandOff,
    LLMToken,
    PlaybackStarted,
    SpeechStarted,
    StateDecided,
    TurnEnded,
    TurnStarted,
    TurnStatus,
)
from ui.live_events import EventShown, LiveEvents, WorkerRoles
from ui.terminal_view import format_message


def fake_session():
    a, b = SimpleNamespace(name="A", answering=False), SimpleNamespace(name="B", answering=False)
    return SimpleNamespace(workers=[a, b], speaker=None, listener=a, output=SimpleNamespace(speaking=False))


def test_latencies_labels_roles_and_what_is_left_out():
    session = fake_session()
    live = LiveEvents(session)
    audio = AudioFrame.silence(0.02)
    assert live.messages(AssistantAudio(time=0.1, worker="A", turn_id=1, frame=audio, text="x")) == []
    decided = live.messages(StateDecided(time=1.0, worker="A", segment_id=1, token=StateToken.IGNORE,
                                         query_probability=0.1, reason="noise", text=""))
    assert decided[0].to_json()["label"] == "noise" and decided[0].to_json()["type"] == "event"
    assert decided[0].to_json()["token"] == "<2>"  # the enum's value: what the page reads
    live.messages(TurnStarted(time=2.0, worker="A", turn_id=1, question="q", from_time=1.5))
    session.speaker, session.listener = session.workers[0], session.workers[1]
    session.output.speaking = True
    messages = live.messages(PlaybackStarted(time=2.25, turn_id=1))
    assert messages[0].latency_ms == 750 and messages[0].to_json()["latency_ms"] == 750
    assert messages[1] == WorkerRoles(2.25, {"A": "answering", "B": "listening"})
    assert messages[1].to_json() == {"type": "workers", "time": 2.25, "workers": {"A": "answering", "B": "listening"}}
    assert len(live.messages(PlaybackStarted(time=2.3, turn_id=1))) == 1  # roles unchanged: no second message
    lowered = live.messages(Duck(time=2.95, turn_id=1, reason="a sound that may be speech", gain=0.3))
    assert lowered[0] == EventShown(lowered[0].event) and "after_onset_ms" not in lowered[0].to_json()
    live.messages(SpeechStarted(time=3.1, onset=3.0, segment_id=2))
    assert live.messages(Duck(time=3.12, turn_id=1, reason="onset"))[0].to_json()["after_onset_ms"] == 120
    assert "after_onset_ms" not in live.messages(Duck(time=4.0, turn_id=1, reason="again"))[0].to_json()
    assert live.messages(LLMToken(time=2.1, worker="A", turn_id=1, text=" Paris"))[0].to_json()["text"] == " Paris"


def test_the_data_channel_json_of_a_decision_is_the_event_log_record_plus_type_and_label():
    live = LiveEvents(fake_session())
    [shown] = live.messages(StateDecided(time=1.00004, worker="B", segment_id=3, token=StateToken.QUERY,
                                         query_probability=0.91237, reason="a question", text="what time is it"))
    assert shown.to_json() == {
        "kind": "StateDecided", "time": 1.0, "worker": "B", "segment_id": 3, "token": "<1>",
        "query_probability": 0.9124, "reason": "a question", "text": "what time is it", "interim": False,
        "assistant_speaking": False, "decide_ms": 0.0, "echo_share": 0.0, "type": "event", "label": "query"}


def test_terminal_lines_read_the_typed_events():
    session = fake_session()
    live = LiveEvents(session)

    def line(event):
        return format_message(live.messages(event)[0], start_time=1.0)

    assert line(StateDecided(time=2.0, worker="A", segment_id=1, token=StateToken.IGNORE, query_probability=0.104,
                             reason="a cough", text="", interim=True)) == \
        "[   1.00] decision  <2> not for me (interim)  p(query)=0.10 worker A: a cough"
    line(TurnStarted(time=2.5, worker="A", turn_id=4, question="q", from_time=2.2))
    assert line(PlaybackStarted(time=3.0, turn_id=4)) == "[   2.00] assistant ● speaking (800 ms after you stopped)"
    assert line(PlaybackStarted(time=3.5, turn_id=4)) == "[   2.50] assistant ● speaking"
    assert line(TurnEnded(time=4.0, worker="A", turn_id=4, status=TurnStatus.INTERRUPTED, answer="Paris is big",
                          spoken="Paris")) == "[   3.00] assistant interrupted: 'Paris'"
    lowered = line(Duck(time=4.5, turn_id=4, reason="a sound", gain=0.3))
    assert lowered == "[   3.50] assistant lowers its voice: a sound"
    assert line(LLMToken(time=5.0, worker="A", turn_id=4, text=" Paris")) is None  # shown on the page, not here
    session.speaker, session.listener = session.workers[1], session.workers[0]
    session.output.speaking = True
    handoff, workers = live.messages(HandOff(time=6.0, speaker="B", listener="A", reason="next turn"))
    assert format_message(handoff, start_time=1.0) == "[   5.00] roles     worker B answers, worker A listens"
    assert format_message(workers, start_time=1.0) == "[   5.00] workers   A listening, B answering"
