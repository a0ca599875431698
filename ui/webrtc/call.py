"""One browser call: a peer connection bound to one duplex session.

In: the microphone track (48 kHz Opus, decoded by aiortc to s16) goes to ``session.push_audio`` as is (the
session resamples); camera frames go to the session's vision input at most every
``camera_interval_s``; JSON messages on the data channel carry typed text, mute and hang-up.
Out: the assistant's voice track, and live events (``ui.live_events``) on the data channel.
Any way the call ends (hang-up, peer gone, media silent too long, server stop) runs the same ``close``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from audio.frames import AudioFrame
from duplex.session import DuplexSession
from ui.live_events import LiveEvents
from ui.webrtc.options import ServerOptions
from ui.webrtc.tracks import AssistantVoiceTrack

log = logging.getLogger(__name__)


class Call:
    def __init__(self, call_id: str, session: DuplexSession, options: ServerOptions,
                 on_closed: Callable[[Call], None]) -> None:
        self.id = call_id
        self.session = session
        self.options = options
        self._on_closed = on_closed
        ice = [RTCIceServer(urls=url) for url in options.ice_servers]
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=ice))  # [] = no public STUN look-up
        self.voice = AssistantVoiceTrack(session.output)
        self.live = LiveEvents(session)
        self.channel = None
        self.muted = False
        self.closed = False
        self.close_reason = ""
        self.audio_frames_in = 0
        self.camera_frames_in = 0
        self.camera_frames_forwarded = 0
        self.page_stats: dict[str, Any] = {}
        self._unsent: deque[str] = deque(maxlen=200)  # events before the data channel opened
        self._tasks: set[asyncio.Task] = set()
        self._disconnect_timer: asyncio.TimerHandle | None = None
        self.pc.on("track", self._on_track)
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_connection_state)

    async def answer(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Apply the browser's offer and return our answer with every ICE candidate in it (no trickle)."""
        await self.session.start()
        self._spawn(self._forward_events(), "events")
        await self.pc.setRemoteDescription(offer)
        self.pc.addTrack(self.voice)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription

    # --- media in --------------------------------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(self._pump_microphone(track), "microphone")
        elif track.kind == "video":
            self._spawn(self._pump_camera(track), "camera")

    async def _pump_microphone(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await asyncio.wait_for(track.recv(), self.options.media_timeout_s)
            except (MediaStreamError, asyncio.TimeoutError) as error:
                self._spawn(self.close(f"microphone ended ({type(error).__name__})"), "close")
                return
            self.audio_frames_in += 1
            samples = frame.to_ndarray()
            channels = len(frame.layout.channels)
            pcm = samples.T if frame.format.is_planar else samples.reshape(-1, channels)
            if self.muted:
                pcm = np.zeros_like(pcm)  # keep time flowing so an open segment still ends
            self.session.push_audio(AudioFrame(pcm, frame.sample_rate, timestamp=self.session.clock.now()))

    async def _pump_camera(self, track: MediaStreamTrack) -> None:
        loop = asyncio.get_running_loop()
        last = -1e9
        push_image = getattr(self.session, "push_image", None)
        while True:
            try:
                frame = await track.recv()  # always drain the track, or aiortc's queue grows
            except MediaStreamError:
                return
            self.camera_frames_in += 1
            now = self.session.clock.now()
            if push_image is None or now - last < self.options.camera_interval_s:
                continue
            last = now
            try:  # colour conversion off the loop: it is ~1-2 ms a frame
                rgb = await loop.run_in_executor(None, lambda f=frame: f.to_ndarray(format="rgb24"))
            except Exception as error:  # a frame the decoder mangled: skip it, keep the call
                log.warning("call %s: camera frame dropped: %s", self.id, error)
                continue
            self.camera_frames_forwarded += 1
            push_image(rgb, now)

    # --- data channel ------------------------------------------------------------------------------

    def _on_datachannel(self, channel) -> None:
        self.channel = channel
        channel.on("message", self._on_message)
        channel.on("open", self._flush)
        if channel.readyState == "open":
            self._flush()

    def _on_message(self, message: str | bytes) -> None:
        try:
            self._handle_message(message)
        except ValueError as error:
            self.send({"type": "error", "message": str(error)})

    def _handle_message(self, message: str | bytes) -> None:
        limit = self.options.max_message_bytes
        if isinstance(message, bytes):
            raise ValueError("binary messages are not accepted; send JSON text")
        if len(message.encode()) > limit:
            raise ValueError(f"message too large ({len(message.encode())} bytes, the limit is {limit})")
        try:
            data = json.loads(message)
        except json.JSONDecodeError as error:
            raise ValueError(f"message is not valid JSON: {error.msg} at character {error.pos}") from None
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise ValueError('a message is a JSON object with a "type": text, mute, hangup, stats or ping')
        kind = data["type"]
        if kind == "text":
            text = data.get("text")
            if not isinstance(text, str) or not text.strip():
                raise ValueError('a text message needs a non-empty "text" string')
            if len(text) > self.options.max_text_chars:
                raise ValueError(f"text too long ({len(text)} characters, the limit is {self.options.max_text_chars})")
            self.session.push_text(text)
        elif kind == "mute":
            self.muted = bool(data.get("muted"))
        elif kind == "hangup":
            self._spawn(self.close("hung up"), "close")
        elif kind == "stats":  # the page's playout figures, kept for the benchmark and logs
            self.page_stats = {k: v for k, v in data.items() if isinstance(v, (int, float, str))}
        elif kind == "ping":
            self.send({"type": "pong", "id": data.get("id"), "time": round(self.session.clock.now(), 4)})
        else:
            raise ValueError(f"unknown message type {kind!r}; expected text, mute, hangup, stats or ping")

    def send(self, message: dict[str, Any]) -> None:
        text = json.dumps(message, default=str)
        if self.channel is None or self.channel.readyState != "open":
            self._unsent.append(text)
            return
        self.channel.send(text)

    def _flush(self) -> None:
        while self._unsent and self.channel is not None and self.channel.readyState == "open":
            self.channel.send(self._unsent.popleft())

    async def _forward_events(self) -> None:
        subscription = self.session.bus.subscribe(f"call-{self.id}", max_data=500)
        try:
            async for event in subscription:
                for message in self.live.messages(event):
                    self.send(message)
        finally:
            subscription.close()

    # --- life cycle --------------------------------------------------------------------------------

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state in ("failed", "closed"):
            self._spawn(self.close(f"connection {state}"), "close")
        elif state == "disconnected" and self._disconnect_timer is None:
            loop = asyncio.get_running_loop()
            self._disconnect_timer = loop.call_later(
                self.options.disconnect_grace_s,
                lambda: self._spawn(self.close("connection lost"), "close"))
        elif state == "connected" and self._disconnect_timer is not None:
            self._disconnect_timer.cancel()
            self._disconnect_timer = None

    def _spawn(self, coroutine, name: str) -> None:
        if self.closed and name != "close":
            coroutine.close()
            return
        task = asyncio.create_task(coroutine, name=f"call-{self.id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, reason: str = "closed") -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        log.info("call %s ended: %s", self.id, reason)
        if self._disconnect_timer is not None:
            self._disconnect_timer.cancel()
        current = asyncio.current_task()
        pending = [t for t in self._tasks if t is not current and not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self.voice.stop()
        await self.pc.close()
        await self.session.close()
        self._on_closed(self)
