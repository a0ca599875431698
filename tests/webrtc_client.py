"""A real WebRTC peer in Python (aiortc) that calls the chat server the way the page does: a microphone
track playing a prepared signal, a data channel named "events", and the assistant's voice recorded."""

from __future__ import annotations

import asyncio
import fractions
import json
import time

import aiohttp
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from audio.frames import resample, to_int16

RATE = 48000
FRAME = 960


class SignalMicrophone(MediaStreamTrack):
    """Plays ``signal`` (float32 mono at ``rate``) in real time, then silence."""

    kind = "audio"

    def __init__(self, signal: np.ndarray | None = None, rate: int = 16000) -> None:
        super().__init__()
        signal = np.zeros(0, np.float32) if signal is None else signal
        self.samples = to_int16(resample(signal, rate, RATE)) if len(signal) else np.zeros(0, np.int16)
        self.position = 0
        self.start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.position / RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        chunk = self.samples[self.position:self.position + FRAME]
        chunk = np.pad(chunk, (0, FRAME - len(chunk)))
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, self.position, fractions.Fraction(1, RATE)
        self.position += FRAME
        return frame


class ClientCall:
    def __init__(self, microphone: SignalMicrophone) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(microphone)
        self.channel = self.pc.createDataChannel("events")
        self.messages: list[dict] = []
        self.opened = asyncio.Event()
        self.voice_levels: list[tuple[float, float]] = []  # (monotonic s, dBFS) per received frame
        self._voice_task: asyncio.Task | None = None
        self.channel.on("open", self.opened.set)
        self.channel.on("message", lambda m: self.messages.append(json.loads(m)))
        self.pc.on("track", self._on_track)

    def _on_track(self, track) -> None:
        if track.kind == "audio":
            self._voice_task = asyncio.ensure_future(self._record(track))

    async def _record(self, track) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            samples = frame.to_ndarray().astype(np.float64) / 32768.0
            self.voice_levels.append((time.monotonic(), 10 * np.log10(np.mean(samples ** 2) + 1e-12)))

    async def offer(self, base_url: str, token: str) -> aiohttp.ClientResponse:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        async with aiohttp.ClientSession() as http:
            response = await http.post(f"{base_url}/offer", headers={"Authorization": f"Bearer {token}"},
                                       json={"sdp": self.pc.localDescription.sdp, "type": "offer"})
            body = await response.json()
        if response.status == 200:
            await self.pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))
            await asyncio.wait_for(self.opened.wait(), 10)
        self.status, self.body = response.status, body
        return response

    def send(self, message) -> None:
        self.channel.send(message if isinstance(message, (str, bytes)) else json.dumps(message))

    async def wait_for(self, predicate, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages:
                if predicate(message):
                    return message
            await asyncio.sleep(0.02)
        kinds = [m.get('kind', m.get('type')) for m in self.messages]
        raise AssertionError(f"no matching message in {timeout} s; got {kinds}")

    async def close(self) -> None:
        if self._voice_task is not None:
            self._voice_task.cancel()
        await self.pc.close()
