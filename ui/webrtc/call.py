"""One browser call: a peer connection bound to one duplex session.

In: the microphone track (48 kHz Opus, decoded by aiortc to s16) goes to ``session.push_audio`` as is (the
session resamples); camera frames go to the session's vision input at most every
``camera_interval_s``; JSON messages on the data channel carry typed text, mute and hang-up.
Out: the assistant's voice track, and live events (``ui.live_events``) on the data channel.

No message can break a call: anything wrong with one (bad JSON, nesting too deep, a text the session
refuses, a bug) is answered with {"type": "error"} and the call goes on; an exception let through would end
aiortc's SCTP/DTLS transport, and with it the call. Typed text is cleaned (``duplex.text``) and rate
limited per call (a token bucket). A watchdog ends a call whose microphone never sent a frame within
``connect_timeout_s`` of the answer, or none for ``media_timeout_s`` since: aiortc has no "disconnected"
state and only notices a vanished peer when ICE consent fails (~30 s).
Any way the call ends (hang-up, peer gone, no media, server stop) runs the same ``close``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import av
import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from audio.frames import AudioFrame
from duplex.session import DuplexSession
from duplex.text import clean_text
from ui.live_events import LiveEvents
from ui.owned_tasks import OwnedTasks
from ui.webrtc.options import ServerOptions
from ui.webrtc.rate import TokenBucket
from ui.webrtc.tracks import AssistantVoiceTrack

log = logging.getLogger(__name__)
WATCH_INTERVAL_S = 0.25  # how often the media watchdog looks: a call ends at most this late


@dataclass(frozen=True)
class CallSummary:
    """What is kept of an ended call (the call itself holds a whole session)."""

    id: str
    close_reason: str
    audio_frames_in: int
    camera_frames_in: int
    camera_frames_forwarded: int
    messages_refused: int  # typed messages over the rate limit
    page_stats: dict[str, Any] = field(default_factory=dict)


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
        self._close_done = asyncio.Event()
        self.close_reason = ""
        self.audio_frames_in = 0
        self.camera_frames_in = 0
        self.camera_frames_forwarded = 0
        self.messages_refused = 0
        self.page_stats: dict[str, Any] = {}
        self.typing = TokenBucket(options.text_rate_per_s, options.text_burst)
        self._last_audio: float | None = None  # loop time of the last microphone frame
        self._unsent: deque[str] = deque(maxlen=200)  # events before the data channel opened
        self.tasks = OwnedTasks(f"call-{call_id}")
        self.pc.on("track", self._on_track)
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_connection_state)

    async def answer(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Apply the browser's offer and return our answer with every ICE candidate in it (no trickle)."""
        await self.session.start()
        self._spawn(self._forward_events(), "events")
        self._spawn(self._watch_media(), "watchdog")
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
        loop = asyncio.get_running_loop()
        while True:
            try:
                # an audio track yields av.AudioFrame (aiortc's recv() is typed for any track's frame or packet)
                frame = cast(av.AudioFrame, await track.recv())  # silence from the peer: the watchdog ends the call
            except MediaStreamError:
                self._spawn(self.close("microphone ended (track stopped)"), "close")
                return
            self._last_audio = loop.time()
            self.audio_frames_in += 1
            try:
                samples = frame.to_ndarray()
                channels = len(frame.layout.channels)
                pcm = samples.T if frame.format.is_planar else samples.reshape(-1, channels)
                if self.muted:
                    pcm = np.zeros_like(pcm)  # keep time flowing so an open segment still ends
                self.session.push_audio(AudioFrame(pcm, frame.sample_rate, timestamp=self.session.clock.now()))
            except Exception:  # one frame the decoder or the session could not take: skip it, keep listening
                log.exception("call %s: microphone frame dropped", self.id)

    async def _watch_media(self) -> None:
        """Ends the call when its microphone never started or has gone quiet (the peer is gone)."""
        loop = asyncio.get_running_loop()
        answered = loop.time()
        while True:
            if self._last_audio is None:
                due = answered + self.options.connect_timeout_s
                reason = f"no microphone audio within {self.options.connect_timeout_s:g} s of the answer"
            else:
                due = self._last_audio + self.options.media_timeout_s
                reason = f"microphone ended (no audio for {self.options.media_timeout_s:g} s: peer gone)"
            if loop.time() >= due:
                self._spawn(self.close(reason), "close")
                return
            await asyncio.sleep(min(due - loop.time(), WATCH_INTERVAL_S))  # a frame meanwhile moves it on

    async def _pump_camera(self, track: MediaStreamTrack) -> None:
        loop = asyncio.get_running_loop()
        last = -1e9
        while True:
            try:
                frame = cast(av.VideoFrame, await track.recv())  # always drain the track, or aiortc's queue grows
            except MediaStreamError:
                return
            self.camera_frames_in += 1
            now = self.session.clock.now()
            if now - last < self.options.camera_interval_s:
                continue
            last = now
            try:  # colour conversion off the loop: it is ~1-2 ms a frame
                rgb = await loop.run_in_executor(None, functools.partial(frame.to_ndarray, format="rgb24"))
            except Exception as error:  # a frame the decoder mangled: skip it, keep the call
                log.warning("call %s: camera frame dropped: %s", self.id, error)
                continue
            self.camera_frames_forwarded += 1
            self.session.push_image(rgb, now)

    # --- data channel ------------------------------------------------------------------------------

    def _on_datachannel(self, channel) -> None:
        self.channel = channel
        channel.on("message", self._on_message)
        channel.on("open", self._flush)
        if channel.readyState == "open":
            self._flush()

    def _on_message(self, message: str | bytes) -> None:
        """Never raises: aiortc calls this from its SCTP transport, which an exception would end."""
        try:
            self._handle_message(message)
        except ValueError as error:  # the message's fault, or the session refused the text
            self.send({"type": "error", "message": str(error)})
        except Exception as error:  # our fault: logged, and the call goes on
            log.exception("call %s: a data channel message could not be handled", self.id)
            self.send({"type": "error", "message": f"the message could not be handled ({type(error).__name__}); "
                                                   "the call goes on"})

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
        except RecursionError:  # "[[[[..." deeper than Python's recursion limit
            raise ValueError("message is nested too deeply") from None
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise ValueError('a message is a JSON object with a "type": text, mute, hangup, stats or ping')
        kind = data["type"]
        if kind == "text":
            self._push_text(data.get("text"))
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

    def _push_text(self, text: Any) -> None:
        if not isinstance(text, str):
            raise ValueError('a text message needs a non-empty "text" string')
        if len(text) > self.options.max_text_chars:
            raise ValueError(f"text too long ({len(text)} characters, the limit is {self.options.max_text_chars})")
        text = clean_text(text)
        if not text:
            raise ValueError('a text message needs a non-empty "text" string (control characters and invalid '
                             'code points are removed)')
        if not self.typing.take():
            self.messages_refused += 1
            raise ValueError(f"too many messages, slow down (at most {self.options.text_burst} at once, "
                             f"{self.options.text_rate_per_s:g} a second after that)")
        self.session.push_text(text)  # ValueError (e.g. too long in the model's tokens): an error to the page

    def send(self, message: dict[str, Any]) -> None:
        text = json.dumps(message, default=str)
        if self.channel is None or self.channel.readyState != "open":
            self._unsent.append(text)
            return
        try:
            self.channel.send(text)
        except Exception as error:  # the channel closing under us: the call is ending anyway
            log.debug("call %s: message not sent: %r", self.id, error)

    def _flush(self) -> None:
        while self._unsent and self.channel is not None and self.channel.readyState == "open":
            self.channel.send(self._unsent.popleft())

    async def _forward_events(self) -> None:
        subscription = self.session.bus.subscribe(f"call-{self.id}", max_data=500)
        try:
            async for event in subscription:
                for message in self.live.messages(event):
                    self.send(message.to_json())
        finally:
            subscription.close()

    # --- life cycle --------------------------------------------------------------------------------

    def _on_connection_state(self) -> None:
        # aiortc emits new, connecting, connected, failed and closed (never "disconnected"): a peer that is
        # merely gone shows as "failed" only once ICE consent fails, so the media watchdog comes first.
        state = self.pc.connectionState
        if state in ("failed", "closed"):
            self._spawn(self.close(f"connection {state}"), "close")

    def _spawn(self, coroutine, name: str) -> None:
        self.tasks.spawn(coroutine, name, after_close=name == "close")

    async def close(self, reason: str = "closed") -> None:
        """End the call; returns once it has ended, also when another close (a state change, a stopping
        server) began first: a caller that moves on, or stops the loop, must not cut a half-done close."""
        if self.closed:
            await self._close_done.wait()
            return
        self.closed = True
        self.close_reason = reason
        log.info("call %s ended: %s", self.id, reason)
        try:
            await self.tasks.cancel_all()
            self.voice.stop()
            for step in (self.pc.close, self.session.close):  # one failing must not skip the other
                try:
                    await step()
                except Exception:
                    log.exception("call %s: %s failed while closing", self.id, step.__qualname__)
        finally:  # even when cancelled (a server stopping gives each close a deadline): the slot is freed
            self._on_closed(self)
            self._close_done.set()

    def summary(self) -> CallSummary:
        return CallSummary(self.id, self.close_reason, self.audio_frames_in, self.camera_frames_in,
                           self.camera_frames_forwarded, self.messages_refused, dict(self.page_stats))
