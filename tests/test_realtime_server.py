"""The OpenAI Realtime endpoint on fast fake models: a WebSocket client on loopback speaks the protocol's
events (the official SDK and an independent client on the real models: test_realtime_real.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import aiohttp
import numpy as np
import pytest

from audio.frames import resample, to_int16
from audio.g711 import decode_ulaw, encode_alaw
from tests.chat_server import FakeSessionFactory, base, wait_until
from tests.fakes import tone_speech
from tests.realtime_client import RealtimeTestClient, pcm16_chunks, realtime_url
from tests.webrtc_client import ClientCall, SignalMicrophone

QUESTION = np.concatenate([np.zeros(4000, np.float32), tone_speech(300, 1.2).mono_float32(),
                           np.zeros(16000, np.float32)])  # "What is the weather like today?"
SILENCE = np.zeros(16000 * 2, np.float32)


async def connect(server, **kwargs) -> RealtimeTestClient:
    client = await RealtimeTestClient.connect(realtime_url(server), server.token, **kwargs)
    await client.wait_for("session.created", 5)
    return client


async def test_refusals_are_clear_and_build_no_session(make_server):
    factory = FakeSessionFactory()
    server = await make_server(factory, max_sessions=1)
    async with aiohttp.ClientSession() as http:
        for token in (None, "wrong"):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(realtime_url(server), headers=headers)
            assert refused.value.status == 401
        async with http.get(f"{base(server)}/v1/realtime", headers={"Authorization": f"Bearer {server.token}"}) as r:
            assert r.status == 400 and "WebSocket" in (await r.json())["error"]
    assert not factory.sessions
    client = await connect(server)  # the one slot
    created = client.of_type("session.created")[0]
    assert created["session"]["model"] == "duplex-test"
    assert created["session"]["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(realtime_url(server), headers={"Authorization": f"Bearer {server.token}"})
        assert refused.value.status == 503
        async with http.get(f"{base(server)}/health", headers={"Authorization": f"Bearer {server.token}"}) as r:
            assert await r.json() == {"calls": 0, "realtime": 1, "max_sessions": 1}
    call = ClientCall(SignalMicrophone(SILENCE))  # a browser call shares the same limit
    await call.offer(base(server), server.token)
    assert call.status == 503
    await call.close()
    await client.close()
    await wait_until(lambda: not server.realtime)  # the slot is free again
    token_in_url = await RealtimeTestClient.connect(realtime_url(server, token_in_query=True), None)
    await token_in_url.wait_for("session.created", 5)
    await token_in_url.close()
    await wait_until(lambda: not server.realtime)
    async with aiohttp.ClientSession() as http:  # as a browser sends it: the key rides in a subprotocol
        for key, accepted in ((server.token, True), ("guess", False)):
            protocols = ("realtime", f"openai-insecure-api-key.{key}")
            if not accepted:
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http.ws_connect(realtime_url(server), protocols=protocols)
                assert refused.value.status == 401
                continue
            socket = await http.ws_connect(realtime_url(server), protocols=protocols)
            assert socket.protocol == "realtime"  # the key itself is never echoed back
            assert json.loads((await socket.receive()).data)["type"] == "session.created"
            await socket.close()


async def test_a_spoken_question_gets_the_protocols_events_and_a_voice(make_server):
    server = await make_server()
    client = await connect(server)
    await client.stream(np.concatenate([QUESTION, SILENCE]))
    done = await client.wait_for("response.done", 15)
    kinds = [e["type"] for e in client.events if not e["type"].startswith("duplex.")]
    order = ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped", "input_audio_buffer.committed",
             "conversation.item.input_audio_transcription.completed", "response.created",
             "response.output_audio_transcript.delta", "response.output_audio.delta", "response.output_audio.done",
             "response.output_audio_transcript.done", "response.done"]
    positions = [kinds.index(kind) for kind in order]
    assert positions == sorted(positions), kinds
    transcript = client.of_type("conversation.item.input_audio_transcription.completed")[0]["transcript"]
    assert transcript == "What is the weather like today?"
    assert done["response"]["status"] == "completed"
    answer = client.of_type("response.output_audio_transcript.done")[0]["transcript"]
    assert answer.startswith("Answer to What") and "word11" in answer
    voice = client.audio_of(done["response"]["id"])
    assert len(voice) > 24000 and np.abs(voice).max() > 3000  # seconds of beeps, as pcm16 at 24 kHz
    assert all(e["event_id"].startswith("event_") for e in client.events)
    # our own decisions ride along under the documented prefix
    decided = [e for e in client.of_type("duplex.event") if e["kind"] == "StateDecided"]
    assert decided and decided[0]["label"] == "query"
    assert server.realtime[next(iter(server.realtime))].session.history[-1].text == answer
    await client.close()


async def test_a_typed_message_then_response_create_answers_once(make_server):
    server = await make_server()
    client = await connect(server)
    await client.send({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Tell me a joke please."}]}})
    await client.send({"type": "response.create"})
    await client.wait_for("response.done", 15)
    await asyncio.sleep(0.5)
    assert len(client.of_type("response.created")) == 1 and not client.of_type("error")
    added = [e for e in client.of_type("conversation.item.added") if e["item"]["role"] == "user"][0]
    assert added["item"]["content"] == [{"type": "input_text", "text": "Tell me a joke please."}]
    assert [e for e in client.of_type("duplex.event") if e["kind"] == "StateDecided"][0]["token"] == "<3>"
    # the same when the response.create comes only after the answer has started
    mark = len(client.events)
    await client.send({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "And another one."}]}})
    await client.wait_for("response.created", 10, after=mark)
    await client.send({"type": "response.create"})
    await client.wait_for("response.done", 15, after=mark)
    await asyncio.sleep(0.3)
    assert len(client.of_type("response.created")) == 2 and not client.of_type("error")
    await client.send({"type": "response.create"})  # nothing new to answer now
    assert (await client.wait_for("error", 5))["error"]["code"] == "nothing_to_answer"
    await client.close()


async def test_barge_in_cancels_and_truncate_keeps_what_was_played(make_server):
    server = await make_server(FakeSessionFactory(answer_words=60))  # ~8 s of voice
    client = await connect(server)
    await client.stream(QUESTION)
    first = await client.wait_for("response.output_audio.delta", 15)
    streaming = asyncio.create_task(client.stream(np.concatenate([QUESTION, SILENCE])))  # asked again over it
    started = await client.wait_for("input_audio_buffer.speech_started", 10, after=len(client.events))
    done = await client.wait_for("response.done", 10)
    assert done["response"]["id"] == first["response_id"]
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"]["reason"] == "turn_detected"
    assert client.events.index(started) < client.events.index(done)
    # The client played 0.6 s of the answer (its own buffer held the rest): the history keeps that much.
    await client.send({"type": "conversation.item.truncate", "item_id": first["item_id"], "content_index": 0,
                       "audio_end_ms": 600})
    truncated = await client.wait_for("conversation.item.truncated", 5)
    assert truncated["audio_end_ms"] == 600
    session = server.realtime[next(iter(server.realtime))].session
    cut = [t for t in session.history if t.role == "assistant"][0]
    assert cut.interrupted and 2 <= len(cut.text.split()) <= 5, cut.text  # 0.12 s a word: ~5 words in 0.6 s
    await streaming
    second = await client.wait_for(lambda e: e["type"] == "response.created"
                                   and e["response"]["id"] != first["response_id"], 15)
    assert second
    await client.close()


async def test_noise_under_the_answer_cancels_nothing(make_server):
    server = await make_server(FakeSessionFactory(answer_words=40))
    client = await connect(server)
    await client.stream(QUESTION)
    await client.wait_for("response.output_audio.delta", 15)
    mark = len(client.events)
    hum = np.concatenate([tone_speech(1500, 0.8).mono_float32(), SILENCE])  # no words: noise to the core
    await client.stream(hum)
    done = await client.wait_for("response.done", 15)
    assert done["response"]["status"] == "completed"
    assert not [e for e in client.events[mark:] if e["type"] == "input_audio_buffer.speech_started"]
    assert [e for e in client.of_type("duplex.event")[0:] if e["kind"] == "SpeechDismissed"]
    await client.close()


async def test_response_cancel_and_output_clear_stop_the_answer(make_server):
    server = await make_server(FakeSessionFactory(answer_words=60))
    client = await connect(server)
    await client.send({"type": "response.cancel"})
    assert (await client.wait_for("error", 5))["error"]["code"] == "response_cancel_not_active"
    await client.stream(QUESTION)
    await client.wait_for("response.output_audio.delta", 15)
    await client.send({"type": "response.cancel", "event_id": "mine"})
    done = await client.wait_for("response.done", 5)
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"]["reason"] == "client_cancelled"
    mark = len(client.events)
    await asyncio.sleep(0.3)
    assert not [e for e in client.events[mark:] if e["type"] == "response.output_audio.delta"]
    await client.send({"type": "output_audio_buffer.clear"})
    await client.wait_for("output_audio_buffer.cleared", 5)
    await client.close()


async def test_a_typed_message_over_the_answer_interrupts_it(make_server):
    server = await make_server(FakeSessionFactory(answer_words=60))
    client = await connect(server)
    await client.stream(QUESTION)
    first = await client.wait_for("response.output_audio.delta", 15)
    await client.send({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Tell me a joke please."}]}})
    done = await client.wait_for("response.done", 5)
    assert done["response"]["id"] == first["response_id"] and done["response"]["status"] == "cancelled"
    second = await client.wait_for(lambda e: e["type"] == "response.created"
                                   and e["response"]["id"] != first["response_id"], 10)
    assert client.events.index(done) < client.events.index(second)
    await client.close()


async def test_bad_events_each_get_an_error_and_the_session_goes_on(make_server):
    server = await make_server(max_text_chars=50, max_sessions=2)
    client = await connect(server)
    bystander = await connect(server)  # another session on the same server
    await client.stream(np.concatenate([QUESTION, SILENCE]))
    await client.wait_for("response.done", 15)
    bad = [
        ("not json", "invalid_json"),
        ("[" * 5000, "invalid_json"),
        ('["a list"]', "invalid_event"),
        ({"type": "no.such.event", "event_id": "e1"}, "invalid_event_type"),
        ({"type": "conversation.item.delete", "item_id": "x"}, "unsupported_event"),
        ({"type": "input_audio_buffer.append", "audio": "%%%not base64%%%"}, "invalid_value"),
        ({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x01\x02\x03").decode()}, "invalid_value"),
        ({"type": "input_audio_buffer.append"}, "missing_required_parameter"),
        ({"type": "input_audio_buffer.append", "audio": 12}, "invalid_type"),
        ({"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/flac"}}}}},
         "invalid_value"),
        ({"type": "session.update", "session": {"turn_detection": {"type": "push_to_talk"}}}, "invalid_value"),
        ({"type": "conversation.item.create", "item": {"type": "message", "role": "assistant", "content": []}},
         "unsupported_item"),
        ({"type": "conversation.item.create", "item": {"role": "user", "content": [{"type": "input_text",
                                                                                     "text": "x" * 51}]}},
         "string_above_max_length"),
        ({"type": "conversation.item.create", "item": {"role": "user", "content": [{"type": "input_text",
                                                                                     "text": "\ud800\x00"}]}},
         "invalid_value"),
        ({"type": "conversation.item.truncate", "item_id": "nope", "audio_end_ms": 10},
         "item_truncate_invalid_item_id"),
        ({"type": "response.create"}, "nothing_to_answer"),
    ]
    for index, (event, code) in enumerate(bad):
        mark = len(client.events)
        await client.send(event)
        error = await client.wait_for("error", 5, after=mark)
        assert error["error"]["code"] == code, (index, error)
        assert error["error"]["type"] == "invalid_request_error" and error["error"]["message"]
    assert client.of_type("error")[3]["error"]["event_id"] == "e1"
    mark = len(client.events)
    await client.socket.send_bytes(b"\x00\x01")
    assert (await client.wait_for("error", 5, after=mark))["error"]["code"] == "invalid_message"
    # 15 MiB of audio at once (~4 minutes): far ahead of real time, refused, nothing else lost
    huge = base64.b64encode(np.zeros(15 * 1024 * 1024 * 3 // 8, "<i2").tobytes()).decode()
    assert 14 * 2 ** 20 < len(huge) < 16 * 2 ** 20
    mark = len(client.events)
    await client.send({"type": "input_audio_buffer.append", "audio": huge})
    assert (await client.wait_for("error", 10, after=mark))["error"]["code"] == "input_audio_too_fast"
    # after all that, a question is still heard and answered, and nothing was lost from the history
    mark = len(client.events)
    await client.stream(np.concatenate([QUESTION, SILENCE]))
    done = await client.wait_for("response.done", 15, after=mark)
    assert done["response"]["status"] == "completed"
    assert len(server.realtime) == 2
    session = next(c for c in server.realtime.values() if c.errors_sent).session
    assert [t.role for t in session.history] == ["user", "assistant", "user", "assistant"]
    assert not bystander.of_type("error")
    await bystander.send({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Tell me a joke please."}]}})
    assert (await bystander.wait_for("response.done", 15))["response"]["status"] == "completed"
    await client.close()
    await bystander.close()


async def test_audio_faster_than_real_time_is_refused_beyond_the_allowance(make_server):
    server = await make_server()
    client = await connect(server)
    second = pcm16_chunks(np.zeros(16000, np.float32), chunk_s=1.0)[0]  # 1 s of audio in one append
    for _ in range(25):  # 25 s of audio within a fraction of a second; the allowance is 20 s ahead of real time
        await client.send({"type": "input_audio_buffer.append", "audio": second})
    await client.wait_for("error", 10)
    await asyncio.sleep(0.5)
    refused = [e for e in client.of_type("error") if e["error"]["code"] == "input_audio_too_fast"]
    assert 4 <= len(refused) <= 5, len(refused)  # the last five, less what real time gave back meanwhile
    await asyncio.sleep(1.2)  # real time gives the allowance back
    await client.send({"type": "input_audio_buffer.append", "audio": second})
    await asyncio.sleep(0.3)
    assert len(client.of_type("error")) == len(refused)  # that one was taken
    await client.close()


async def test_an_event_over_the_size_limit_closes_the_socket_cleanly(make_server):
    from ui.realtime.options import RealtimeOptions

    server = await make_server(realtime=RealtimeOptions(max_message_bytes=64 * 1024))
    client = await connect(server)
    await client.send({"type": "input_audio_buffer.append", "audio": "A" * 100_000})
    await wait_until(lambda: client.closed_with is not None, 5)
    assert client.closed_with == 1009  # "message too big"
    await wait_until(lambda: not server.realtime, 5)
    again = await connect(server)  # the server goes on
    await again.close()


async def test_turn_detection_off_the_client_commits_and_asks(make_server):
    server = await make_server()
    client = await connect(server)
    await client.send({"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief.",
                                                             "audio": {"input": {"turn_detection": None}}}})
    updated = await client.wait_for("session.updated", 5)
    assert updated["session"]["audio"]["input"]["turn_detection"] is None
    assert updated["session"]["instructions"] == "Be brief."
    await client.send({"type": "input_audio_buffer.commit"})
    assert (await client.wait_for("error", 5))["error"]["code"] == "input_audio_buffer_commit_empty"
    await client.stream(QUESTION)
    await asyncio.sleep(0.5)
    assert not client.of_type("input_audio_buffer.speech_started")  # the core did not hear it: the client decides
    await client.send({"type": "input_audio_buffer.commit"})
    await client.send({"type": "response.create"})
    transcribed = await client.wait_for("conversation.item.input_audio_transcription.completed", 10)
    assert transcribed["transcript"] == "What is the weather like today?"
    done = await client.wait_for("response.done", 15)
    assert done["response"]["status"] == "completed"
    session = server.realtime[next(iter(server.realtime))].session
    assert session.conversation.system_prompt == "Be brief."
    await client.close()


async def test_g711_and_beta_names_for_older_clients(make_server):
    server = await make_server()
    client = await connect(server, headers={"OpenAI-Beta": "realtime=v1"})
    assert client.of_type("session.created")[0]["session"]["output_audio_format"] == "pcm16"
    await client.send({"type": "session.update", "session": {"output_audio_format": "g711_ulaw"}})
    assert (await client.wait_for("session.updated", 5))["session"]["output_audio_format"] == "g711_ulaw"
    await client.stream(np.concatenate([QUESTION, SILENCE]))
    done = await client.wait_for("response.done", 15)
    assert client.of_type("conversation.item.created") and client.of_type("response.audio_transcript.done")
    assert not client.of_type("response.output_audio.delta")
    data = b"".join(base64.b64decode(e["delta"]) for e in client.of_type("response.audio.delta")
                    if e["response_id"] == done["response"]["id"])
    voice = decode_ulaw(data)
    assert len(voice) > 8000 and np.abs(voice).max() > 3000  # seconds of beeps, at 8 kHz
    # and G.711 in: the question as 8 kHz A-law, 20 ms an append, in real time
    await client.send({"type": "session.update", "session": {"input_audio_format": "g711_alaw"}})
    await client.wait_for(lambda e: e["type"] == "session.updated"
                          and e["session"]["input_audio_format"] == "g711_alaw", 5)
    mark = len(client.events)
    telephone = encode_alaw(to_int16(resample(np.concatenate([QUESTION, SILENCE]), 16000, 8000)))
    start = time.monotonic()
    for index in range(0, len(telephone), 160):
        await asyncio.sleep(max(0.0, start + index / 8000 - time.monotonic()))
        await client.send({"type": "input_audio_buffer.append",
                           "audio": base64.b64encode(telephone[index:index + 160]).decode()})
    heard = await client.wait_for("conversation.item.input_audio_transcription.completed", 10, after=mark)
    assert heard["transcript"] == "What is the weather like today?"
    await client.close()


async def test_a_vanished_client_frees_its_slot_and_a_server_stop_closes_sockets(make_server):
    factory = FakeSessionFactory()
    server = await make_server(factory)
    client = await connect(server)
    client._reader.cancel()
    client.socket._response.connection.transport.abort()  # gone without a close frame
    await wait_until(lambda: not server.realtime, 5)
    assert factory.sessions[0].closed
    other = await connect(server)
    await server.stop()
    await wait_until(lambda: other.closed_with is not None, 5)
    assert factory.sessions[1].closed
    await other.close()
    await client.http.close()

