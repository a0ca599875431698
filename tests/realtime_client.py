"""A small Realtime client for the tests, on aiohttp's WebSocket client: it sends events, streams audio at
real time, keeps every server event it receives (with its arrival time) and plays the voice it receives
the way a client with a speaker would, so it knows how much of each answer was played."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import aiohttp
import numpy as np

from audio.frames import resample, to_int16

RATE = 24000
CHUNK_S = 0.02


def pcm16_chunks(signal: np.ndarray, rate: int = 16000, chunk_s: float = CHUNK_S) -> list[str]:
    """``signal`` (float32 mono at ``rate``) as base64 pcm16 at 24 kHz, one string per ``chunk_s``."""
    samples = to_int16(resample(signal, rate, RATE)) if rate != RATE else to_int16(signal)
    step = int(RATE * chunk_s)
    return [base64.b64encode(samples[i:i + step].astype("<i2").tobytes()).decode()
            for i in range(0, len(samples), step)]


class RealtimeTestClient:
    def __init__(self, socket: aiohttp.ClientWebSocketResponse, http: aiohttp.ClientSession) -> None:
        self.socket, self.http = socket, http
        self.events: list[dict[str, Any]] = []
        self.arrived: list[float] = []  # time.monotonic() of each event
        self.closed_with: int | None = None
        self._reader = asyncio.create_task(self._read())
        self._new = asyncio.Event()

    @classmethod
    async def connect(cls, url: str, token: str | None, headers: dict[str, str] | None = None) -> RealtimeTestClient:
        http = aiohttp.ClientSession()
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        try:
            socket = await http.ws_connect(url, headers=all_headers, max_msg_size=0)
        except BaseException:
            await http.close()
            raise
        return cls(socket, http)

    async def _read(self) -> None:
        async for message in self.socket:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.events.append(json.loads(message.data))
                self.arrived.append(time.monotonic())
                self._new.set()
        self.closed_with = self.socket.close_code
        self._new.set()

    async def send(self, event: dict[str, Any] | str) -> None:
        await self.socket.send_str(event if isinstance(event, str) else json.dumps(event))

    async def stream(self, signal: np.ndarray, rate: int = 16000) -> float:
        """Send ``signal`` in real time; returns time.monotonic() when its last chunk went."""
        start = time.monotonic()
        for index, chunk in enumerate(pcm16_chunks(signal, rate)):
            await asyncio.sleep(max(0.0, start + index * CHUNK_S - time.monotonic()))
            await self.send({"type": "input_audio_buffer.append", "audio": chunk})
        return time.monotonic()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    async def wait_for(self, predicate, timeout: float = 15.0, after: int = 0) -> dict[str, Any]:
        """The first event from index ``after`` on that ``predicate`` accepts (a type name works too)."""
        test = (lambda e: e["type"] == predicate) if isinstance(predicate, str) else predicate
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events[after:]:
                if test(event):
                    return event
            if self.closed_with is not None:
                raise AssertionError(f"socket closed ({self.closed_with}) before the event came; got "
                                     f"{[e['type'] for e in self.events[after:]]}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                got = [e["type"] for e in self.events[after:]]
                raise AssertionError(f"no such event within {timeout} s; got {got}")
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), remaining)
            except TimeoutError:
                pass

    def audio_of(self, response_id: str) -> np.ndarray:
        chunks = [base64.b64decode(e["delta"]) for e in self.events
                  if e["type"] in ("response.output_audio.delta", "response.audio.delta")
                  and e["response_id"] == response_id]
        return np.frombuffer(b"".join(chunks), dtype="<i2")

    async def close(self) -> None:
        await self.socket.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await self.http.close()


def realtime_url(server, token_in_query: bool = False, query: str = "") -> str:
    url = f"ws://127.0.0.1:{server.port}/v1/realtime?model=duplex-test{query}"
    return url + (f"&token={server.token}" if token_in_query else "")
