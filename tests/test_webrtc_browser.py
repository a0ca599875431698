"""The browser chat in a real browser: Debian's chromium, fake microphone (a WAV file) and fake camera,
WebRTC to our aiortc server, the real models behind it. Assertions use what the page itself received:
the data channel's events and the level of the assistant's voice as the page's WebAudio hears it."""

from __future__ import annotations

import asyncio
import copy
import json

import numpy as np
import pytest

from audio.frames import AudioFrame
from audio.wavfile import read_audio
from tests.browser import (
    chromium,
    first_time_above,
    levels,
    open_call,
    page_events,
    speech_spans,
    wait_for_event,
    write_microphone_wav,
)
from ui.webrtc.options import ServerOptions
from ui.webrtc.server import ChatServer

pytestmark = pytest.mark.slow

STORY = "Tell me a long story about a brave little dragon."
LEAD_S = 1.0  # the fake microphone starts at getUserMedia, before the call connects: lead with silence


@pytest.fixture(scope="module")
def chat_models(config, stack):
    from assistant.session import AssistantModels

    chat_config = copy.deepcopy(config)
    chat_config.llm.max_answer_tokens = 60  # enough for answers that run ~15 s, short enough for CI
    return AssistantModels(chat_config, stack=stack)


@pytest.fixture(scope="module")
def say(user_voice):
    def speech(text: str) -> np.ndarray:
        return AudioFrame.concatenate(list(user_voice.synthesize(text))).convert(sample_rate=16000).mono_float32()

    return speech


@pytest.fixture
async def server(chat_models, tmp_path):
    server = ChatServer(chat_models.new_session,
                        ServerOptions(port=0, max_sessions=3, event_log_dir=str(tmp_path / "logs")))
    await server.start()
    yield server
    await server.stop()


def question_events(events: list[dict]) -> list[dict]:
    return [e for e in events if e.get("kind") == "StateDecided" and not e.get("interim")]


async def test_spoken_question_gets_a_spoken_answer(server, say, tmp_path):
    question = say("What is the capital of France?")
    wav = write_microphone_wav(tmp_path / "mic.wav", [(LEAD_S, question)], LEAD_S + len(question) / 16000 + 12)
    async with chromium(wav) as browser:
        page = await open_call(browser, server.url)
        await wait_for_event(page, "e.kind === 'TurnEnded'", 40)
        events = await page_events(page)
        remote = await levels(page, "remote")
        call = next(iter(server.calls.values()))
        frames_in = call.audio_frames_in
    finals = [e for e in events if e.get("kind") == "UserTranscript" and e["final"]]
    assert any("capital" in e["text"].lower() for e in finals), finals
    assert [d["token"] for d in question_events(events)] == ["<1>"]
    assert question_events(events)[0]["label"] == "query"
    started = [e for e in events if e.get("kind") == "PlaybackStarted"][0]
    print(f"first answer audio {started['latency_ms']} ms after the end of the question (server clock)")
    ended = [e for e in events if e.get("kind") == "TurnEnded"][0]
    assert ended["status"] == "completed" and "paris" in ended["answer"].lower()
    loud = [db for t, db in remote if t >= started["received_at"]]
    assert loud and max(loud) > -35, "the page never heard the assistant's voice"
    assert frames_in > 100  # 20 ms microphone frames reached the server
    assert any(e.get("type") == "workers" and "answering" in e["workers"].values() for e in events)


async def test_barge_in_stops_the_answer_and_the_new_question_is_answered(server, say, tmp_path):
    story, question = say(STORY), say("Stop. What is the capital of France?")
    barge_in_at = LEAD_S + len(story) / 16000 + 7.0  # a few seconds into the story's audio
    wav = write_microphone_wav(tmp_path / "mic.wav", [(LEAD_S, story), (barge_in_at, question)],
                               barge_in_at + len(question) / 16000 + 10)
    async with chromium(wav) as browser:
        page = await open_call(browser, server.url)
        await wait_for_event(page, "e.kind === 'Interrupt'", 40)
        await wait_for_event(page, "e.kind === 'PlaybackStarted' && e.turn_id === 2", 25)
        await asyncio.sleep(1.0)
        events = await page_events(page)
        local, remote = await levels(page, "local"), await levels(page, "remote")
    turns = [e for e in events if e.get("kind") == "TurnStarted"]
    assert len(turns) == 2 and turns[0]["worker"] != turns[1]["worker"]
    assert "france" in turns[1]["question"].lower()
    first_end = [e for e in events if e.get("kind") == "TurnEnded" and e["turn_id"] == 1][0]
    assert first_end["status"] == "interrupted" and len(first_end["spoken"]) < len(first_end["answer"])
    # Seen by the browser: the barge-in's onset in its own microphone, then the old answer going quiet.
    onset = speech_spans(local)[1][0]
    voice_before = [s for s in speech_spans(remote, min_gap_ms=150) if s[0] < onset]
    assert voice_before and voice_before[-1][1] > onset - 500, "the story was not playing when the user spoke"
    stop_ms = voice_before[-1][1] - onset
    print(f"browser: the old answer went quiet {stop_ms:.0f} ms after the barge-in's onset")
    assert stop_ms < 1000
    second = [e for e in events if e.get("kind") == "PlaybackStarted" and e["turn_id"] == 2][0]
    assert first_time_above(remote, second["received_at"] - 100, -35) is not None


async def test_noise_during_an_answer_does_not_stop_it(server, say, data_dir, tmp_path):
    story = say(STORY)
    noise = read_audio(data_dir / "noise" / "speech_commands_bg" / "doing_the_dishes.wav").mono_float32()
    noise = noise[16000 * 5:16000 * 7]
    noise *= 0.1 / max(float(np.sqrt(np.mean(noise ** 2))), 1e-6)  # clattering dishes at -20 dBFS
    noise_at = LEAD_S + len(story) / 16000 + 7.0  # well into the answer (it starts ~2 s after the question)
    wav = write_microphone_wav(tmp_path / "mic.wav", [(LEAD_S, story), (noise_at, noise)], noise_at + 10)
    async with chromium(wav) as browser:
        page = await open_call(browser, server.url)
        # Wait until the page's own microphone has played the noise and 4 s more have passed.
        await page.wait_for_function(
            "() => { const m = window.assistantCall.meter.local; const loud = m.filter(x => x[1] > -50);"
            " return loud.length && m[m.length - 1][0] - loud[loud.length - 1][0] > 4000"
            " && loud[loud.length - 1][0] - loud[0][0] > 1000 * %f; }" % (noise_at - LEAD_S), timeout=60000)
        events = await page_events(page)
        local, remote = await levels(page, "local"), await levels(page, "remote")
    noise_start, noise_end = speech_spans(local)[-1]
    voice = speech_spans(remote, min_gap_ms=300)
    # the answer was underway: its voice in the 1.5 s before the noise (a gap between two clauses may fall
    # right at the noise's start on a busy machine)
    near = [(a, b) for a, b in voice if a < noise_start - 200 and b > noise_start - 1500]
    assert near, (f"the answer was not playing when the noise came at {noise_start:.0f} ms: voice spans {voice}, "
                  f"events {[e.get('kind') for e in events]}")
    assert not [e for e in events if e.get("kind") == "Interrupt"]
    assert len([e for e in events if e.get("kind") == "TurnStarted"]) == 1
    after = [db for t, db in remote if noise_end + 500 < t < noise_end + 3500]
    assert after and np.mean(np.array(after) > -50) > 0.3, "the answer did not go on after the noise"


async def test_typed_message_interrupts(server, say, tmp_path):
    story = say(STORY)
    wav = write_microphone_wav(tmp_path / "mic.wav", [(LEAD_S, story)], LEAD_S + len(story) / 16000 + 20)
    async with chromium(wav) as browser:
        page = await open_call(browser, server.url)
        await wait_for_event(page, "e.kind === 'PlaybackStarted'", 40)
        await asyncio.sleep(1.5)
        assert await page.evaluate("() => window.assistantCall.sendText('What is the capital of France?')")
        decided = await wait_for_event(page, "e.kind === 'StateDecided' && e.token === '<3>'", 10)
        await wait_for_event(page, "e.kind === 'PlaybackStarted' && e.turn_id === 2", 20)
        events = await page_events(page)
    assert decided["label"] == "text"
    assert [e for e in events if e.get("kind") == "Interrupt"]
    turns = [e for e in events if e.get("kind") == "TurnStarted"]
    assert turns[1]["question"] == "What is the capital of France?"


async def test_two_browsers_at_once_have_their_own_conversations(server, say, tmp_path):
    texts = ["What is the capital of France?", "How many legs does a spider have?"]
    wavs = [write_microphone_wav(tmp_path / f"mic{i}.wav", [(LEAD_S, say(t))], LEAD_S + 12)
            for i, t in enumerate(texts)]
    async with chromium(wavs[0]) as first, chromium(wavs[1]) as second:
        pages = await asyncio.gather(open_call(first, server.url), open_call(second, server.url))
        assert len(server.calls) == 2
        sessions = [call.session for call in server.calls.values()]
        await asyncio.gather(*(wait_for_event(p, "e.kind === 'TurnEnded'", 60) for p in pages))
        events = [await page_events(p) for p in pages]
    for own, other, page_events_ in ((texts[0], texts[1], events[0]), (texts[1], texts[0], events[1])):
        question = [e for e in page_events_ if e.get("kind") == "TurnStarted"][0]["question"].lower()
        assert own.split()[-1].rstrip("?").lower() in question and other.split()[-1].rstrip("?").lower() not in question
    histories = [" ".join(turn.text for turn in s.history).lower() for s in sessions]
    assert sum("france" in h for h in histories) == 1 and sum("spider" in h for h in histories) == 1


async def test_wrong_token_is_refused_in_the_browser(server):
    async with chromium() as browser:
        page = await browser.new_page()
        response = await page.goto(server.url.replace(server.token, "wrong-token"))
        assert response.status == 401
        assert "token" in (await page.content()).lower()
    assert not server.calls and not server.ended_calls


async def test_camera_frames_reach_the_session(server, tmp_path):
    wav = write_microphone_wav(tmp_path / "mic.wav", [], 6)
    async with chromium(wav) as browser:
        page = await open_call(browser, server.url)
        await asyncio.sleep(3.0)
        call = next(iter(server.calls.values()))
        received, forwarded = call.camera_frames_in, call.camera_frames_forwarded
        await page.evaluate("() => window.assistantCall.hangUp()")
        for _ in range(50):
            if not server.calls:
                break
            await asyncio.sleep(0.1)
    assert not server.calls, "hanging up did not end the call on the server"
    (log_file,) = (tmp_path / "logs").glob(f"call-*-{call.id}-*.jsonl")  # named uniquely per run
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    accepted = [r for r in records if r["kind"] == "VisionFrame"]
    described = [r for r in records if r["kind"] == "VisionDescribed"]
    print(f"camera: {received} frames received, {forwarded} handed to the session, {len(accepted)} taken by its "
          f"vision input, {len(described)} described")
    assert received >= 8 and forwarded >= 5  # the page asks for ~5 frames a second
    assert len(accepted) >= 2 and accepted[0]["width"] == 640 and accepted[0]["height"] == 480
    assert described, "no frame was analysed"


# --- no camera: a voice-only call ------------------------------------------------------------------------

def failing_camera_script(name: str, also_microphone: bool = False) -> str:
    """An init script that makes getUserMedia fail like a machine without a camera (NotFoundError), a
    refused one (NotAllowedError) or a busy one (NotReadableError): Chromium's fake devices always have one."""
    condition = "true" if also_microphone else "constraints && constraints.video"
    return ("(() => { const media = navigator.mediaDevices; const original = media.getUserMedia.bind(media);"
            f" media.getUserMedia = (constraints) => ({condition})"
            f" ? Promise.reject(new DOMException('Requested device not found or refused', '{name}'))"
            " : original(constraints); })();")


async def open_page_with(browser, url: str, script: str):
    """Like ``open_call`` but with ``script`` run before the page's own, and without waiting to connect."""
    page = await browser.new_page()
    await page.add_init_script(script)
    await page.goto(url + "&raw=1&meter=1&autostart=1")
    return page


async def test_without_a_camera_the_call_goes_on_voice_only(server, say, tmp_path):
    question = say("What is the capital of France?")
    wav = write_microphone_wav(tmp_path / "mic.wav", [(LEAD_S, question)], LEAD_S + len(question) / 16000 + 12)
    async with chromium(wav) as browser:
        page = await open_page_with(browser, server.url, failing_camera_script("NotFoundError"))
        await page.wait_for_function("() => window.assistantCall.state === 'connected'", timeout=15000)
        notice = await page.inner_text("#notice")
        assert await page.is_visible("#notice")
        fallback = await page.evaluate("() => window.assistantCall.videoFallback")
        tracks = await page.evaluate("() => window.assistantCall.stream.getTracks().map(t => t.kind)")
        ended = await wait_for_event(page, "e.kind === 'TurnEnded'", 40)
        call = next(iter(server.calls.values()))
        frames_in, camera_in = call.audio_frames_in, call.camera_frames_in
        kinds = sorted(t.kind for t in call.pc.getTransceivers())
    assert notice.startswith("No camera (NotFoundError") and notice.endswith("voice-only call"), notice
    assert fallback.startswith("NotFoundError"), fallback
    assert tracks == ["audio"] and kinds == ["audio"]  # the offer carried no video at all
    assert ended["status"] == "completed" and "paris" in ended["answer"].lower(), ended
    assert frames_in > 100 and camera_in == 0


@pytest.mark.parametrize("error", ["NotAllowedError", "NotReadableError", "OverconstrainedError"])
async def test_a_refused_or_busy_camera_also_gives_a_voice_only_call(server, tmp_path, error):
    wav = write_microphone_wav(tmp_path / "mic.wav", [], 6)
    async with chromium(wav) as browser:
        page = await open_page_with(browser, server.url, failing_camera_script(error))
        await page.wait_for_function("() => window.assistantCall.state === 'connected'", timeout=15000)
        await asyncio.sleep(1.0)
        notice = await page.inner_text("#notice")
        fallback = await page.evaluate("() => window.assistantCall.videoFallback")
        call = next(iter(server.calls.values()))
        frames_in = call.audio_frames_in
    assert notice.startswith(f"No camera ({error}") and "voice-only" in notice, notice
    assert fallback.startswith(error)
    assert frames_in > 20  # ~50 microphone frames a second reach the server


async def test_without_a_microphone_there_is_no_call_and_a_clear_error(server, tmp_path):
    async with chromium(write_microphone_wav(tmp_path / "mic.wav", [], 4)) as browser:
        page = await open_page_with(browser, server.url, failing_camera_script("NotFoundError", also_microphone=True))
        await page.wait_for_function("() => window.assistantCall.state.startsWith('error')", timeout=10000)
        state = await page.evaluate("() => window.assistantCall.state")
        fallback = await page.evaluate("() => window.assistantCall.videoFallback")
        start_enabled = await page.is_enabled("#start")
        notice_shown = await page.is_visible("#notice")
    assert state.startswith("error: microphone not available (NotFoundError"), state
    assert fallback is None and not notice_shown and start_enabled  # the user can plug one in and retry
    assert not server.calls and not server.ended_calls


async def test_a_muted_call_stays_up_past_the_media_watchdog(server, tmp_path):
    """Muting disables the microphone track; the browser keeps sending (silent) audio, so the liveness
    watchdog (no microphone frame for media_timeout_s: the peer is gone) must not end a muted call."""
    wav = write_microphone_wav(tmp_path / "mic.wav", [], 20.0)
    async with chromium(wav) as browser:
        page = await open_call(browser, server.url)
        await page.click("#mute")
        call = next(iter(server.calls.values()))
        await asyncio.sleep(0.5)
        frames_at_mute = call.audio_frames_in
        await asyncio.sleep(server.options.media_timeout_s + 2.0)
        state = await page.evaluate("() => window.assistantCall.state")
        assert call.muted and not call.closed and state == "connected", (call.close_reason, state)
        assert call.audio_frames_in - frames_at_mute > 100  # silent frames kept coming while muted
