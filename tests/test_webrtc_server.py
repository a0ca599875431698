"""The browser chat server with a real WebRTC peer in Python (aiortc) and fast fake models: signalling,
refusals, data channel validation, the session limit, teardown when a client vanishes, and the voice
track's pacing. The same server with the real models in a real browser: test_webrtc_browser.py."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import numpy as np
import pytest

from audio.frames import AudioFrame
from duplex.clock import RealClock
from duplex.playback import PlaybackBuffer
from tests.chat_server import FakeSessionFactory, base, wait_until
from tests.fakes import tone_speech
from tests.webrtc_client import ClientCall, SignalMicrophone
from ui.webrtc.ice import candidate_addresses
from ui.webrtc.tracks import AssistantVoiceTrack


async def test_http_refusals_are_clear_json_and_leave_no_call(make_server):
    factory = FakeSessionFactory()
    server = await make_server(new_session=factory, max_body_bytes=16 * 1024)
    auth = {"Authorization": f"Bearer {server.token}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(base(server) + "/") as r:
            assert r.status == 401 and "token" in (await r.text()).lower()
        async with http.get(base(server) + "/?token=" + server.token) as r:
            assert r.status == 200 and "app.js" in await r.text()
        async with http.get(base(server) + "/static/app.js") as r:
            assert r.status == 200 and "RTCPeerConnection" in await r.text()
        async with http.get(base(server) + "/static/..%2Fserver.py") as r:
            assert r.status == 404
        async with http.post(base(server) + "/offer", json={"sdp": "v=0", "type": "offer"},
                             headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401 and "token" in (await r.json())["error"]
        async with http.post(base(server) + "/offer", data=b"not json", headers=auth) as r:
            assert r.status == 400 and "JSON" in (await r.json())["error"]
        async with http.post(base(server) + "/offer", json={"type": "answer", "sdp": "x"}, headers=auth) as r:
            assert r.status == 400
        not_sdp = {"sdp": "this is not SDP", "type": "offer"}
        async with http.post(base(server) + "/offer", json=not_sdp, headers=auth) as r:
            assert r.status == 400 and "SDP" in (await r.json())["error"]
        async with http.post(base(server) + "/offer", data=b"x" * 100_000, headers=auth) as r:
            assert r.status == 413 and "too large" in (await r.json())["error"]
        async with http.get(base(server) + "/health", headers=auth) as r:
            assert (await r.json()) == {"calls": 0, "realtime": 0, "max_sessions": server.options.max_sessions}
    assert not server.calls
    assert not factory.sessions  # a bad offer is refused before a session is built


async def test_a_peer_talks_and_types_and_gets_events_and_voice(make_server):
    server = await make_server()
    speech = np.concatenate([np.zeros(8000, np.float32), tone_speech(300, 1.2).mono_float32(),
                             np.zeros(16000 * 3, np.float32)])
    client = ClientCall(SignalMicrophone(speech))
    await client.offer(base(server), server.token)
    assert client.status == 200 and len(server.calls) == 1
    decided = await client.wait_for(lambda m: m.get("kind") == "StateDecided", 10)
    assert decided["token"] == "<1>" and decided["label"] == "query"
    started = await client.wait_for(lambda m: m.get("kind") == "PlaybackStarted", 10)
    assert started["latency_ms"] >= 0
    await client.wait_for(lambda m: m.get("type") == "workers" and "answering" in m["workers"].values())
    await client.wait_for(lambda m: m.get("kind") == "TurnEnded", 15)
    assert max(level for _, level in client.voice_levels) > -30  # the beeps arrived as audio
    client.send({"type": "text", "text": "Tell me a joke please."})
    typed = await client.wait_for(lambda m: m.get("kind") == "StateDecided" and m["token"] == "<3>")
    assert typed["label"] == "text"
    await client.close()


async def test_bad_data_channel_messages_get_an_error_and_the_call_goes_on(make_server):
    server = await make_server(max_message_bytes=1000, max_text_chars=50)
    client = ClientCall(SignalMicrophone())
    await client.offer(base(server), server.token)
    for message, expected in [("not json", "not valid JSON"), ("[1, 2]", "JSON object"),
                              ('{"type": "dance"}', "unknown"), (b"\x00\x01", "binary"), ("x" * 2000, "too large"),
                              ({"type": "text", "text": "a" * 60}, "too long"),
                              ({"type": "text", "text": " "}, "non-empty")]:
        before = len([m for m in client.messages if m.get("type") == "error"])
        client.send(message)
        await wait_until(lambda: len([m for m in client.messages if m.get("type") == "error"]) > before)
        error = [m for m in client.messages if m.get("type") == "error"][-1]
        assert expected in error["message"], (message, error)
    client.send({"type": "ping", "id": 7})
    pong = await client.wait_for(lambda m: m.get("type") == "pong")
    assert pong["id"] == 7 and len(server.calls) == 1
    await client.close()


async def test_the_session_limit_answers_busy_and_frees_the_slot_on_hang_up(make_server):
    server = await make_server(max_sessions=1)
    first = ClientCall(SignalMicrophone())
    await first.offer(base(server), server.token)
    second = ClientCall(SignalMicrophone())
    await second.offer(base(server), server.token)
    assert second.status == 503 and "busy" in second.body["error"]
    await second.close()
    first.send({"type": "hangup"})
    await wait_until(lambda: not server.calls)
    await first.close()
    third = ClientCall(SignalMicrophone())
    await third.offer(base(server), server.token)
    assert third.status == 200
    await third.close()


async def test_a_client_vanishing_mid_answer_is_torn_down_and_others_go_on(make_server):
    factory = FakeSessionFactory(answer_words=400)  # an answer that would play for about a minute
    server = await make_server(new_session=factory)
    tasks_before = len(asyncio.all_tasks())
    leaving, staying = ClientCall(SignalMicrophone()), ClientCall(SignalMicrophone())
    await leaving.offer(base(server), server.token)
    await staying.offer(base(server), server.token)
    leaving.send({"type": "text", "text": "Tell me a joke please."})
    await leaving.wait_for(lambda m: m.get("kind") == "PlaybackStarted", 10)
    leaving_call = next(c for c in server.calls.values() if c.session is factory.sessions[0])
    await leaving.pc.close()  # gone without a word: no hang-up message
    await wait_until(lambda: leaving_call.id not in server.calls, 20)  # removed once fully torn down
    assert leaving_call.session.closed and leaving_call.pc.connectionState == "closed"
    assert len(server.calls) == 1
    staying.send({"type": "text", "text": "Tell me a joke please."})
    await staying.wait_for(lambda m: m.get("kind") == "PlaybackStarted", 10)
    await staying.close()
    await wait_until(lambda: not server.calls, 20)
    await asyncio.sleep(0.5)
    leftover = [t for t in asyncio.all_tasks() if "call-" in t.get_name() or "session" in t.get_name()]
    assert not leftover, leftover
    assert len(asyncio.all_tasks()) <= tasks_before + 2


async def test_a_client_whose_media_stops_without_closing_is_torn_down(make_server):
    """A browser killed outright sends no goodbye: the missing microphone packets end the call."""
    server = await make_server(media_timeout_s=1.5)
    microphone = SignalMicrophone()
    client = ClientCall(microphone)
    await client.offer(base(server), server.token)
    await asyncio.sleep(0.5)
    assert len(server.calls) == 1

    async def silent_forever():
        await asyncio.Event().wait()

    microphone.recv = silent_forever  # the peer connection stays open, but no audio packet leaves any more
    await wait_until(lambda: not server.calls, 10)
    assert "microphone ended" in server.ended_calls[-1].close_reason
    await client.close()


async def test_many_calls_one_after_another_leak_no_tasks_or_memory(make_server):
    import gc

    import psutil

    server = await make_server()
    process = psutil.Process()
    baseline_tasks, rss = len(asyncio.all_tasks()), []
    for k in range(8):
        client = ClientCall(SignalMicrophone())
        await client.offer(base(server), server.token)
        client.send({"type": "text", "text": "Tell me a joke please."})
        await client.wait_for(lambda m: m.get("kind") == "PlaybackStarted", 10)
        await client.close()
        await wait_until(lambda: not server.calls, 10)
        gc.collect()
        rss.append(process.memory_info().rss / 2**20)
    await asyncio.sleep(0.3)
    print("RSS after each call (MiB):", [round(r) for r in rss])
    assert len(asyncio.all_tasks()) <= baseline_tasks + 2
    assert rss[-1] - rss[2] < 40, rss  # a leaked session (queues, threads, audio) would add up call by call


async def test_ice_candidates_stay_on_the_bound_address(make_server):
    assert candidate_addresses("127.0.0.1") == ["127.0.0.1"]
    assert candidate_addresses("localhost") == ["127.0.0.1"]
    assert candidate_addresses("0.0.0.0") is None
    server = await make_server()
    client = ClientCall(SignalMicrophone())
    await client.offer(base(server), server.token)
    candidates = [line for line in client.body["sdp"].splitlines() if line.startswith("a=candidate")]
    assert candidates and all(" 127.0.0.1 " in line for line in candidates), candidates
    await client.close()


async def test_voice_track_sends_paced_20ms_frames_and_goes_quiet_on_interrupt():
    events = []
    playback = PlaybackBuffer(48000, RealClock(), events.append)
    playback.enqueue(1, AudioFrame(np.full(48000 * 2, 8000, np.int16), 48000), "two seconds of sound")
    track = AssistantVoiceTrack(playback)
    loop = asyncio.get_running_loop()
    start = loop.time()
    frames = [await track.recv() for _ in range(25)]
    elapsed = loop.time() - start
    assert all(f.samples == 960 and f.sample_rate == 48000 for f in frames)
    assert [f.pts for f in frames[:3]] == [0, 960, 1920]
    assert 0.4 < elapsed < 1.0  # 24 frame periods of 20 ms after the first
    assert np.abs(frames[-1].to_ndarray()).max() > 0
    playback.interrupt(1)
    assert np.abs((await track.recv()).to_ndarray()).max() == 0  # the very next frame is silent
    assert track.sent_samples == 26 * 960 and playback.turn(1).played_samples == 25 * 960


@pytest.mark.slow
def test_assistant_serve_prints_a_token_url_and_stops_cleanly(tmp_path):
    """The README's run command: `assistant serve` on the bundled models, as a user starts it."""
    import os
    import re
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request
    from pathlib import Path

    assistant = Path(sys.executable).parent / "assistant"
    # SIGINT ignored at start, as nohup, CI runners and supervisors start it: it must stop on SIGINT all the same.
    process = subprocess.Popen([str(assistant), "serve", "--port", "0", "--quiet"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env={**os.environ, "ASSISTANT_TOKEN": ""},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        line = ""
        for line in process.stdout:  # model loading first, then the URL line
            if "http://" in line:
                break
        match = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=(\S+)", line)
        assert match, line
        port, token = match.groups()
        assert len(token) >= 20
        realtime_line = process.stdout.readline()  # and where Realtime clients connect
        assert f"ws://127.0.0.1:{port}/v1/realtime" in realtime_line, realtime_line
        from websockets.sync.client import connect

        with connect(f"ws://127.0.0.1:{port}/v1/realtime?model=m",
                     additional_headers={"Authorization": f"Bearer {token}"}) as realtime:
            created = json.loads(realtime.recv(timeout=30))
            assert created["type"] == "session.created" and created["session"]["model"] == "m"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?token={token}", timeout=10) as response:
            assert response.status == 200 and b"Start call" in response.read()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/?token=guess", timeout=10)
        assert refused.value.code == 401
        with socket.socket() as probe:  # bound to loopback only
            host_ip = socket.gethostbyname(socket.gethostname())
            if not host_ip.startswith("127."):
                assert probe.connect_ex((host_ip, int(port))) != 0
        # The same port again: one clear error line, exit status 2.
        busy = subprocess.run([str(assistant), "serve", "--port", port, "--quiet"], capture_output=True, text=True,
                              timeout=120)
        last_line = busy.stderr.strip().splitlines()[-1]
        assert busy.returncode == 2 and last_line.startswith("error: cannot serve on 127.0.0.1:" + port), busy.stderr
        process.send_signal(signal.SIGINT)
        stopping = time.monotonic()
        output, _ = process.communicate(timeout=10)  # read on: a full pipe would block its exit
        assert process.returncode == 0 and time.monotonic() - stopping < 5.0, output[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
