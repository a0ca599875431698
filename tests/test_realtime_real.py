"""The OpenAI Realtime endpoint on the real models, used by two clients that are not ours: the official
``openai`` SDK's realtime client (pointed at the local server with a base URL; loopback only) and a raw
client on the ``websockets`` library written here from the protocol's event names."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import time
from typing import Any

import numpy as np
import pytest

from audio.frames import AudioFrame, resample, to_int16
from audio.wavfile import read_audio
from ui.webrtc.options import ServerOptions
from ui.webrtc.server import ChatServer

pytestmark = pytest.mark.slow

RATE = 24000
CHUNK = 480  # 20 ms


@pytest.fixture(scope="module")
def chat_models(config, stack):
    from assistant.session import AssistantModels

    chat_config = copy.deepcopy(config)
    chat_config.llm.max_answer_tokens = 60  # answers that run ~15 s at most, short enough for CI
    return AssistantModels(chat_config, stack=stack)


@pytest.fixture(scope="module")
def say(user_voice):
    def speech(text: str) -> np.ndarray:
        """``text`` spoken, as int16 at 24 kHz."""
        return AudioFrame.concatenate(list(user_voice.synthesize(text))).convert(sample_rate=RATE).mono_int16()

    return speech


@pytest.fixture
async def server(chat_models):
    server = ChatServer(chat_models.new_session, ServerOptions(port=0, max_sessions=2))
    await server.start()
    yield server
    await server.stop()


def chunks(samples: np.ndarray) -> list[str]:
    return [base64.b64encode(samples[i:i + CHUNK].astype("<i2").tobytes()).decode()
            for i in range(0, len(samples), CHUNK)]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.int16)


class Received:
    """Every server event a client got, as plain dicts, with the audio a speaker would have played."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.new = asyncio.Event()

    def add(self, event: dict[str, Any]) -> None:
        event["received_at"] = time.monotonic()
        self.events.append(event)
        self.new.set()

    async def wait_for(self, test, timeout: float, after: int = 0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = next((e for e in self.events[after:] if test(e)), None)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout} s; got {[e['type'] for e in self.events[after:]]}")
            self.new.clear()
            try:
                await asyncio.wait_for(self.new.wait(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                pass

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def audio_samples(self, response_id: str) -> int:
        return sum(len(base64.b64decode(e["delta"])) // 2 for e in self.of_type("response.output_audio.delta")
                   if e["response_id"] == response_id)


async def stream(send_audio, samples: np.ndarray) -> None:
    """Send ``samples`` at real time, 20 ms a chunk, as a microphone would."""
    start = time.monotonic()
    for index, chunk in enumerate(chunks(samples)):
        await asyncio.sleep(max(0.0, start + index * CHUNK / RATE - time.monotonic()))
        await send_audio(chunk)


async def test_the_official_openai_sdk_holds_a_duplex_conversation(server, say, data_dir):
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key=server.token, base_url=f"http://127.0.0.1:{server.port}/v1", max_retries=0)
    received = Received()
    async with client.realtime.connect(model="duplex-local") as connection:
        async def read() -> None:
            async for event in connection:  # the SDK parses each into its own event models
                received.add(event.model_dump() if hasattr(event, "model_dump") else dict(event))

        reader = asyncio.create_task(read())
        await connection.session.update(session={"type": "realtime", "output_modalities": ["audio"],
                                                 "audio": {"input": {"turn_detection": {"type": "server_vad"}}}})
        await received.wait_for(lambda e: e["type"] == "session.updated", 10)

        async def append(chunk: str) -> None:
            await connection.input_audio_buffer.append(audio=chunk)

        # 1. A spoken question gets a spoken answer with its transcript.
        await stream(append, np.concatenate([silence(0.5), say("What is the capital of France?"), silence(1.0)]))
        heard = await received.wait_for(lambda e: e["type"] == "conversation.item.input_audio_transcription.completed",
                                        30)
        assert "france" in heard["transcript"].lower()
        first = await received.wait_for(lambda e: e["type"] == "response.done", 40)
        assert first["response"]["status"] == "completed"
        assert received.audio_samples(first["response"]["id"]) > RATE  # more than a second of voice
        spoken = received.of_type("response.output_audio_transcript.done")[-1]["transcript"]
        assert spoken.strip()

        # 2. A typed message starts a long answer.
        mark = len(received.events)
        await connection.conversation.item.create(item={"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Tell me a long story about a brave little dragon."}]})
        await connection.response.create()
        story = await received.wait_for(lambda e: e["type"] == "response.created", 20, after=mark)
        story_id = story["response"]["id"]
        await received.wait_for(lambda e: e["type"] == "response.output_audio.delta", 30, after=mark)

        # 3. Clattering dishes under the answer cancel nothing: the answer plays on.
        noise = read_audio(data_dir / "noise" / "speech_commands_bg" / "doing_the_dishes.wav").mono_float32()
        noise = noise[16000 * 5:16000 * 7]
        noise *= 0.1 / max(float(np.sqrt(np.mean(noise ** 2))), 1e-6)  # -20 dBFS
        mark = len(received.events)
        await stream(append, np.concatenate([silence(1.0), to_int16(resample(noise, 16000, RATE)), silence(3.0)]))
        after_noise = received.events[mark:]
        assert not [e for e in after_noise if e["type"] == "input_audio_buffer.speech_started"]
        assert not [e for e in after_noise if e["type"] == "response.done"], "the noise ended the answer"
        samples_before = received.audio_samples(story_id)
        await asyncio.sleep(1.0)
        assert received.audio_samples(story_id) > samples_before, "the answer did not go on after the noise"

        # 4. A question over the answer interrupts it; the client says how much it played; the history keeps that.
        mark = len(received.events)
        barge_in = asyncio.create_task(stream(append, np.concatenate(
            [say("Stop. What is the capital of France?"), silence(2.0)])))
        started = await received.wait_for(lambda e: e["type"] == "input_audio_buffer.speech_started", 20, after=mark)
        done = await received.wait_for(lambda e: e["type"] == "response.done"
                                       and e["response"]["id"] == story_id, 10, after=mark)
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "turn_detected"
        assert received.events.index(started) < received.events.index(done)
        # a client with 200 ms in its speaker's buffer at speech_started played that much less than it got
        got = sum(len(base64.b64decode(e["delta"])) // 2 for e in received.events[:received.events.index(started)]
                  if e["type"] == "response.output_audio.delta" and e["response_id"] == story_id)
        played_ms = max(0, round(1000 * got / RATE) - 200)
        item_id = received.of_type("response.output_item.added")[-1]["item"]["id"]
        for event in received.of_type("response.output_item.added"):
            if event["response_id"] == story_id:
                item_id = event["item"]["id"]
        await connection.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=played_ms)
        truncated = await received.wait_for(lambda e: e["type"] == "conversation.item.truncated", 10, after=mark)
        assert truncated["item_id"] == item_id and truncated["audio_end_ms"] == played_ms
        await barge_in
        answered = await received.wait_for(lambda e: e["type"] == "response.done"
                                           and e["response"]["id"] != story_id, 40, after=mark)
        assert answered["response"]["status"] == "completed"
        session = next(iter(server.realtime.values())).session
        story_turn = [t for t in session.history if t.role == "assistant"][1]
        whole = [e for e in received.of_type("response.output_audio_transcript.delta") if e["response_id"] == story_id]
        written = "".join(e["delta"] for e in whole)
        assert story_turn.interrupted and 0 < len(story_turn.text.split()) < len(written.split())
        assert written.startswith(story_turn.text.rstrip("…").split()[0])
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    # our own events rode along and the SDK took them in its stride
    assert [e for e in received.events if str(e.get("type", "")).startswith("duplex.")]


async def test_an_independent_websocket_client_gets_a_spoken_answer(server, say):
    import websockets

    url = f"ws://127.0.0.1:{server.port}/v1/realtime?model=anything"
    received = Received()
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {server.token}"},
                                  max_size=None) as socket:
        async def read() -> None:
            async for message in socket:
                received.add(json.loads(message))

        reader = asyncio.create_task(read())
        created = await received.wait_for(lambda e: e["type"] == "session.created", 10)
        assert created["session"]["model"] == "anything"

        async def append(chunk: str) -> None:
            await socket.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))

        await stream(append, np.concatenate([silence(0.5), say("What is the biggest ocean?"), silence(1.0)]))
        stopped = received.of_type("input_audio_buffer.speech_stopped")
        done = await received.wait_for(lambda e: e["type"] == "response.done", 40)
        assert done["response"]["status"] == "completed"
        assert stopped and received.of_type("input_audio_buffer.committed")
        transcript = received.of_type("conversation.item.input_audio_transcription.completed")[0]["transcript"]
        assert "ocean" in transcript.lower()
        voice = b"".join(base64.b64decode(e["delta"]) for e in received.of_type("response.output_audio.delta"))
        pcm = np.frombuffer(voice, dtype="<i2")
        assert len(pcm) > RATE and np.abs(pcm).max() > 2000  # a second and more of real voice at 24 kHz
        first_audio = received.of_type("response.output_audio.delta")[0]["received_at"]
        print(f"independent client: first audio {first_audio - stopped[0]['received_at']:.2f} s after speech_stopped")
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
