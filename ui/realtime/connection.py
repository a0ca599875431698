"""One Realtime WebSocket bound to one duplex session.

In: client events (``protocol``) become the session's public calls. With turn detection on (the default,
``server_vad``) appended audio goes straight into the duplex core, which decides what is a query; with it
off (``null``) the audio is kept until the client commits it, then transcribed and answered on
``response.create`` like a typed message. A user text item is a typed query (``<3>``): it interrupts like speech.

Out: the session's events, translated as they are published (a synchronous bus listener, so the order is
the session's), and the voice, read from the session's playback queue at real time plus ``audio_lead_s``.
The client plays what it receives, so the queue's count of played samples is what was sent; a client that
played less says so with ``conversation.item.truncate`` and the history keeps that much.

Barge-in: ``input_audio_buffer.speech_started`` is held back while the assistant speaks until the core has
judged the speech a query (clients stop their playback on it). Noise and backchannels never announce it,
so they cancel nothing; the server's own voice only pauses while it listens, as in a browser call.
Our own decisions ride along as ``duplex.event`` / ``duplex.workers`` (``ui.live_events``); clients ignore them.

No event can break the session: each bad one gets an error event and the session goes on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from audio.frames import AudioFrame, StreamResampler, to_int16
from duplex.events import (
    AnswerTruncated,
    AssistantAudio,
    Event,
    QueryHeard,
    SpeechEnded,
    SpeechStarted,
    TurnEnded,
    TurnStarted,
    TurnStatus,
)
from duplex.session import DuplexSession
from duplex.text import clean_text
from ui.live_events import LiveEvents
from ui.owned_tasks import OwnedTasks
from ui.realtime.formats import FormatError
from ui.realtime.options import RealtimeOptions
from ui.realtime.protocol import (
    EXTRA_PREFIX,
    ClientEvent,
    ErrorType,
    RealtimeError,
    SessionSettings,
    event_name,
    parse_client_event,
)
from ui.webrtc.rate import TokenBucket

log = logging.getLogger(__name__)
MAX_LAG_S = 0.1  # the loop stalled longer than this: restart the pacing instead of sending a burst
KEPT_SEGMENTS = 32
MAX_ITEM_ID = 64


@dataclass
class HeardSpeech:
    """One stretch of the user's speech, as the protocol sees it."""

    item_id: str
    onset: float
    end: float | None = None
    announced: bool = False  # speech_started sent
    stopped: bool = False  # speech_stopped sent


@dataclass
class OpenResponse:
    turn_id: int
    id: str
    item_id: str
    transcript: list[str] = field(default_factory=list)
    cancel_reason: str = "turn_detected"


@dataclass
class TextLimits:
    max_chars: int
    typing: TokenBucket  # typed messages per connection (each interrupts the answer)


class RealtimeConnection:
    def __init__(self, connection_id: str, session: DuplexSession, socket: web.WebSocketResponse,
                 options: RealtimeOptions, limits: TextLimits, model: str, beta: bool = False,
                 extra_events: bool = True, on_closed: Callable[[RealtimeConnection], None] | None = None) -> None:
        self.id = connection_id
        self.session = session
        self.socket = socket
        self.options = options
        self.limits = limits
        self.beta = beta
        self.extra_events = extra_events
        self._on_closed = on_closed
        self.settings = SessionSettings(id=f"sess_{secrets.token_hex(8)}", model=model,
                                        instructions=session.conversation.system_prompt, voice=options.voice)
        self.live = LiveEvents(session)
        self.closed = False
        self._close_done = asyncio.Event()
        self.close_reason = ""
        self.errors_sent = 0
        self._ids = itertools.count(1)
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._reading_voice = False  # events published while the voice is read wait for that read's audio
        self._deferred: list[dict[str, Any]] = []
        self.tasks = OwnedTasks(f"realtime-{connection_id}")
        self._speech: dict[int, HeardSpeech] = {}  # by the core's segment id
        self._response: OpenResponse | None = None
        self._turn_of_item: dict[str, int] = {}  # assistant item id -> the session's turn id
        self._last_item_id: str | None = None
        # Turn detection on: a typed item is answered at once, so the response.create that clients send after
        # it refers to that answer (0 or 1: only the latest typed item; a spoken query clears it).
        self._typed_unanswered = 0
        self._pending_user: list[asyncio.Future[str]] = []  # turn detection off: committed, not yet answered
        self._buffer: list[np.ndarray] = []  # turn detection off: appended, not yet committed
        self._buffered_samples = 0
        self._input_origin: float | None = None  # session clock at the first audio (audio_*_ms count from it)
        self._input_allowance = options.max_audio_ahead_s  # seconds of audio the client may still send at once
        self._input_checked: float | None = None
        self._output_resampler: StreamResampler | None = None

    # --- life cycle ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the socket until the client leaves or the server closes it."""
        reason = "client closed the socket"
        try:
            await self.session.start()
            self.session.bus.add_listener(self._on_event, first=True)
            self._emit("session.created", session=self.settings.to_json(self.beta))
            self._spawn(self._write(), "writer")
            self._spawn(self._pace_voice(), "voice")
            async for message in self.socket:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    self._receive(message.data)
                elif message.type == WSMsgType.ERROR:
                    reason = f"socket error: {self.socket.exception()}"
                    break
        finally:
            await self.close(reason)

    async def close(self, reason: str) -> None:
        """End the connection; returns once it has ended, also when another close began first."""
        if self.closed:
            await self._close_done.wait()
            return
        self.closed = True
        self.close_reason = reason
        log.info("realtime %s ended: %s", self.id, reason)
        try:
            await self.tasks.cancel_all()
            try:
                await self.session.close()
            except Exception:
                log.exception("realtime %s: the session failed while closing", self.id)
            if not self.socket.closed:
                await self.socket.close(code=1000, message=reason.encode()[:120])
        finally:
            if self._on_closed is not None:
                self._on_closed(self)
            self._close_done.set()

    def _spawn(self, coroutine, name: str) -> None:
        self.tasks.spawn(coroutine, name)

    # --- out -------------------------------------------------------------------------------------

    def _emit(self, event_type: str, /, **fields: Any) -> None:
        event = {"type": event_name(event_type, self.beta), "event_id": f"event_{next(self._ids)}", **fields}
        if self._reading_voice:
            self._deferred.append(event)
        else:
            self._queue(event)

    def _queue(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        if self._outbox.qsize() >= self.options.max_outbox_events:
            self._spawn(self.close(f"the client read no events ({self._outbox.qsize()} waiting)"), "close")
            return
        self._outbox.put_nowait(json.dumps(event, default=str))

    def _send_error(self, error: RealtimeError) -> None:
        self.errors_sent += 1
        self._emit("error", **{k: v for k, v in error.to_event().items() if k != "type"})

    async def _write(self) -> None:
        while True:
            text = await self._outbox.get()
            try:
                await self.socket.send_str(text)
            except (ConnectionResetError, RuntimeError) as error:  # the socket closed under us
                self._spawn(self.close(f"socket gone while sending: {error}"), "close")
                return

    async def _pace_voice(self) -> None:
        """Read the voice at real time (``audio_lead_s`` ahead) and send what is not silence."""
        loop = asyncio.get_running_loop()
        output = self.session.output
        rate = output.sample_rate
        chunk = int(rate * self.options.audio_chunk_s)
        start, read = loop.time(), 0
        while True:
            due = start + read / rate - self.options.audio_lead_s
            now = loop.time()
            if due - now < -MAX_LAG_S:
                start = now - read / rate + self.options.audio_lead_s
            elif due > now:
                await asyncio.sleep(due - now)  # read at the last moment: an interrupt takes effect at once
            response = self._response
            self._reading_voice = True
            try:
                samples = output.read(chunk)
            finally:
                self._reading_voice = False
            read += chunk
            if response is not None and samples.any():
                self._send_voice(response, samples, rate)
            deferred, self._deferred = self._deferred, []
            for event in deferred:
                self._queue(event)

    def _send_voice(self, response: OpenResponse, samples: np.ndarray, rate: int) -> None:
        fmt = self.settings.output_format
        if fmt.sample_rate != rate:
            if self._output_resampler is None or self._output_resampler.to_rate != fmt.sample_rate:
                self._output_resampler = StreamResampler(rate, fmt.sample_rate)
            samples = to_int16(self._output_resampler.process(samples))
        data = fmt.encode(samples)
        self._emit("response.output_audio.delta", response_id=response.id, item_id=response.item_id, output_index=0,
                   content_index=0, delta=base64.b64encode(data).decode())

    # --- the session's events, as the protocol's -------------------------------------------------

    def _on_event(self, event: Event) -> None:
        """A bus listener: called synchronously for every event. Never raises (it runs inside the core)."""
        if self.closed:
            return
        try:
            self._translate(event)
            if self.extra_events:
                for message in self.live.messages(event):
                    record = message.to_json()
                    self._emit(EXTRA_PREFIX + str(record.pop("type")), **record)
        except Exception:
            log.exception("realtime %s: event %s not translated", self.id, event.kind)

    def _translate(self, event: Event) -> None:
        if isinstance(event, SpeechStarted):
            onset = HeardSpeech(self._new_id("item"), event.onset)
            self._speech[event.segment_id] = onset
            while len(self._speech) > KEPT_SEGMENTS:
                del self._speech[next(iter(self._speech))]
            if not event.overlaps_assistant and self._response is None:
                self._announce(onset)
        elif isinstance(event, SpeechEnded):
            ended = self._speech.get(event.segment_id)
            if ended is not None:
                ended.end = event.end
                if ended.announced:
                    self._stopped(ended)
        elif isinstance(event, QueryHeard) and not event.typed:
            speech = self._speech.get(event.segment_id)
            if speech is None:
                speech = self._speech[event.segment_id] = HeardSpeech(self._new_id("item"), event.from_time)
            self._announce(speech)  # the client stops its playback now
            if not event.interim:
                self._typed_unanswered = 0  # a response.create from now on asks for something new
                speech.end = speech.end if speech.end is not None else event.from_time
                self._stopped(speech)
                self._user_item(speech.item_id, event.text, audio=True)
        elif isinstance(event, TurnStarted):
            self._open_response(event.turn_id)
        elif isinstance(event, AssistantAudio):
            response = self._response
            if response is not None and response.turn_id == event.turn_id and event.text:
                delta = (" " if response.transcript else "") + event.text
                response.transcript.append(event.text)
                self._emit("response.output_audio_transcript.delta", response_id=response.id,
                           item_id=response.item_id, output_index=0, content_index=0, delta=delta)
        elif isinstance(event, TurnEnded):
            response = self._response
            if response is not None and response.turn_id == event.turn_id:
                self._close_response(response, event)
        elif isinstance(event, AnswerTruncated):
            item_id = next((i for i, t in self._turn_of_item.items() if t == event.turn_id), None)
            if item_id is not None:
                self._emit("conversation.item.truncated", item_id=item_id, content_index=0,
                           audio_end_ms=round(event.heard_s * 1000))

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{secrets.token_hex(8)}"

    def _ms(self, clock_time: float) -> int:
        origin = self._input_origin if self._input_origin is not None else clock_time
        return max(0, round(1000 * (clock_time - origin)))

    def _announce(self, speech: HeardSpeech) -> None:
        if not speech.announced:
            speech.announced = True
            self._emit("input_audio_buffer.speech_started", audio_start_ms=self._ms(speech.onset),
                       item_id=speech.item_id)

    def _stopped(self, speech: HeardSpeech) -> None:
        if not speech.stopped and speech.end is not None:
            speech.stopped = True
            self._emit("input_audio_buffer.speech_stopped", audio_end_ms=self._ms(speech.end), item_id=speech.item_id)

    def _user_item(self, item_id: str, text: str, audio: bool) -> None:
        """A user message in the conversation: committed audio with its transcript, or a typed text."""
        previous, self._last_item_id = self._last_item_id, item_id
        if audio:
            self._emit("input_audio_buffer.committed", item_id=item_id, previous_item_id=previous)
        content = [{"type": "input_audio", "transcript": text}] if audio else [{"type": "input_text", "text": text}]
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
                "content": content}
        self._emit("conversation.item.added", previous_item_id=previous, item=item)
        if audio:
            self._emit("conversation.item.input_audio_transcription.completed", item_id=item_id, content_index=0,
                       transcript=text)
        self._emit("conversation.item.done", previous_item_id=previous, item=item)

    def _assistant_item(self, response: OpenResponse, status: str, transcript: str | None) -> dict[str, Any]:
        content = [] if transcript is None else [{"type": "audio" if self.beta else "output_audio",
                                                  "transcript": transcript}]
        return {"id": response.item_id, "object": "realtime.item", "type": "message", "role": "assistant",
                "status": status, "content": content}

    def _response_json(self, response: OpenResponse, status: str, details: dict | None,
                       output: list[dict]) -> dict[str, Any]:
        return {"object": "realtime.response", "id": response.id, "status": status, "status_details": details,
                "output": output, "conversation_id": self.settings.id, "output_modalities": ["audio"],
                "audio": {"output": {"format": self.settings.output_format.to_json(self.beta),
                                     "voice": self.settings.voice}},
                "usage": None, "metadata": None}

    def _open_response(self, turn_id: int) -> None:
        response = OpenResponse(turn_id, self._new_id("resp"), self._new_id("item"))
        self._response = response
        self._turn_of_item[response.item_id] = turn_id
        while len(self._turn_of_item) > KEPT_SEGMENTS:
            del self._turn_of_item[next(iter(self._turn_of_item))]
        ids: dict[str, Any] = {"response_id": response.id, "output_index": 0}
        self._emit("response.created", response=self._response_json(response, "in_progress", None, []))
        self._emit("response.output_item.added", **ids, item=self._assistant_item(response, "in_progress", None))
        self._emit("conversation.item.added", previous_item_id=self._last_item_id,
                   item=self._assistant_item(response, "in_progress", None))
        self._last_item_id = response.item_id
        self._emit("response.content_part.added", **ids, item_id=response.item_id, content_index=0,
                   part={"type": "audio", "transcript": ""})

    def _close_response(self, response: OpenResponse, ended: TurnEnded) -> None:
        self._response = None
        transcript = ended.answer.strip() if ended.status is TurnStatus.COMPLETED else ended.spoken
        ids: dict[str, Any] = {"response_id": response.id, "item_id": response.item_id, "output_index": 0,
                               "content_index": 0}
        self._emit("response.output_audio.done", **ids)
        self._emit("response.output_audio_transcript.done", **ids, transcript=transcript)
        self._emit("response.content_part.done", **ids, part={"type": "audio", "transcript": transcript})
        status, item_status = "completed", "completed"
        details: dict[str, Any] | None = None
        if ended.status is TurnStatus.INTERRUPTED or ended.status is TurnStatus.CLOSED:
            status, item_status = "cancelled", "incomplete"
            details = {"type": "cancelled", "reason": response.cancel_reason}
        elif ended.status is TurnStatus.FAILED:
            status, item_status = "failed", "incomplete"
            details = {"type": "failed", "error": {"type": "server_error", "code": "model_failed",
                                                   "message": "the model failed on this answer; ask again"}}
        item = self._assistant_item(response, item_status, transcript)
        self._emit("response.output_item.done", response_id=response.id, output_index=0, item=item)
        self._emit("conversation.item.done", previous_item_id=None, item=item)
        self._emit("response.done", response=self._response_json(response, status, details, [item]))

    # --- in --------------------------------------------------------------------------------------

    def _receive(self, message: str | bytes) -> None:
        """One client event. Never raises: a bad event gets an error event and the session goes on."""
        event_id = None
        try:
            event = parse_client_event(message)
            event_id = event.event_id
            getattr(self, "_on_" + event.type.replace(".", "_"))(event)
        except RealtimeError as error:
            self._send_error(error)
        except Exception as error:  # our fault: logged, answered, and the session goes on
            log.exception("realtime %s: a client event could not be handled", self.id)
            self._send_error(RealtimeError("server_error", f"the event could not be handled ({type(error).__name__});"
                                           " the session goes on", event_id=event_id, error_type=ErrorType.SERVER))

    def _on_session_update(self, event: ClientEvent) -> None:
        self.settings.update(event)
        self.session.set_instructions(self.settings.instructions)
        if not self.settings.server_turns:
            self.session.output.resume()  # the core may have paused for speech it will now never judge
        self._emit("session.updated", session=self.settings.to_json(self.beta))

    def _on_input_audio_buffer_append(self, event: ClientEvent) -> None:
        encoded = event.field("audio", str)
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise event.error("invalid_value", "'audio' is not valid base64", "audio") from None
        fmt = self.settings.input_format
        try:
            samples = fmt.decode(data)
        except FormatError as error:
            raise event.error("invalid_value", str(error), "audio") from None
        if samples.size == 0:
            return
        seconds = samples.size / fmt.sample_rate
        self._check_input_rate(event, seconds)
        if self._input_origin is None:
            self._input_origin = self.session.clock.now() - seconds
        if self.settings.server_turns:
            self.session.push_audio(AudioFrame(samples, fmt.sample_rate, timestamp=self.session.clock.now()))
            return
        limit = int(self.options.max_input_buffer_s * fmt.sample_rate)
        if self._buffered_samples + samples.size > limit:
            raise event.error("input_audio_buffer_full", f"more than {self.options.max_input_buffer_s:g} s of "
                              "uncommitted audio: commit or clear the buffer first", "audio")
        self._buffer.append(samples)
        self._buffered_samples += samples.size

    def _check_input_rate(self, event: ClientEvent, seconds: float) -> None:
        """Audio may come at most ``max_audio_ahead_s`` ahead of real time (a token bucket in seconds)."""
        now = asyncio.get_running_loop().time()
        if self._input_checked is not None:
            self._input_allowance = min(self.options.max_audio_ahead_s,
                                        self._input_allowance + now - self._input_checked)
        self._input_checked = now
        if seconds > self._input_allowance:
            raise event.error("input_audio_too_fast", f"audio is arriving faster than real time: this append of "
                              f"{seconds:.2f} s would run more than {self.options.max_audio_ahead_s:g} s ahead; it "
                              "was dropped (send audio as it is recorded)", "audio")
        self._input_allowance -= seconds

    def _on_input_audio_buffer_commit(self, event: ClientEvent) -> None:
        if self.settings.server_turns:
            return  # the duplex core commits on its own; accepted and ignored (documented)
        if not self._buffer:
            raise event.error("input_audio_buffer_commit_empty", "the input audio buffer is empty: append audio "
                              "before committing it")
        audio = AudioFrame(np.concatenate(self._buffer), self.settings.input_format.sample_rate)
        self._buffer, self._buffered_samples = [], 0
        item_id = self._new_id("item")
        transcript: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending_user.append(transcript)
        self._spawn(self._transcribe(item_id, audio, transcript), "transcribe")

    async def _transcribe(self, item_id: str, audio: AudioFrame, transcript: asyncio.Future[str]) -> None:
        try:
            text = clean_text(await self.session.transcribe(audio))
        except Exception as error:
            log.exception("realtime %s: transcription failed", self.id)
            transcript.set_result("")
            self._emit("conversation.item.input_audio_transcription.failed", item_id=item_id, content_index=0,
                       error={"type": "server_error", "code": "transcription_failed", "message": str(error)})
            return
        transcript.set_result(text)
        self._user_item(item_id, text, audio=True)

    def _on_input_audio_buffer_clear(self, event: ClientEvent) -> None:
        self._buffer, self._buffered_samples = [], 0
        self._emit("input_audio_buffer.cleared")

    def _on_conversation_item_create(self, event: ClientEvent) -> None:
        item = event.field("item", dict)
        kind = event.field("type", str, "message", where=item)
        role = event.field("role", str, "user", where=item)
        if kind != "message" or role != "user":
            raise event.error("unsupported_item", f"only user messages can be added here, not a {role} {kind} "
                              "(the instructions go in session.update)", "item")
        texts = []
        for part in event.field("content", list, where=item):
            part_type = part.get("type") if isinstance(part, dict) else None
            if part_type not in ("input_text", "text") or not isinstance(part.get("text"), str):
                raise event.error("unsupported_content", "a user message here holds input_text parts only "
                                  f"(got {part_type!r}); send speech with input_audio_buffer.append",
                                  "item.content")
            texts.append(part["text"])
        text = " ".join(texts)
        if len(text) > self.limits.max_chars:
            raise event.error("string_above_max_length", f"text too long ({len(text)} characters, the limit is "
                              f"{self.limits.max_chars})", "item.content")
        text = self.session.conversation.check_typed(text) if text else ""
        if not text:
            raise event.error("invalid_value", "the message has no text (control characters and invalid code points "
                              "are removed)", "item.content")
        if not self.limits.typing.take():
            raise event.error("rate_limit_exceeded", "too many messages, slow down", "item")
        given = item.get("id")
        item_id = given if isinstance(given, str) and 0 < len(given) <= MAX_ITEM_ID else self._new_id("item")
        if self.settings.server_turns:
            self.session.push_text(text)  # MessageTooLong (ValueError) was ruled out by check_typed
            self._typed_unanswered = 1
        else:
            ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            ready.set_result(text)
            self._pending_user.append(ready)
        self._user_item(item_id, text, audio=False)

    def _on_response_create(self, event: ClientEvent) -> None:
        if self.settings.server_turns and self._typed_unanswered:
            self._typed_unanswered = 0  # the typed item already started this answer
            return
        if self._response is not None:
            raise event.error("conversation_already_has_active_response", "a response is in progress: cancel it "
                              f"first ({self._response.id})")
        if not self._pending_user:
            raise event.error("nothing_to_answer", "no new user message to answer: add one with "
                              "conversation.item.create, or commit audio (turn detection off)")
        pending, self._pending_user = self._pending_user, []
        self._spawn(self._answer(pending), "answer")

    async def _answer(self, pending: list[asyncio.Future[str]]) -> None:
        texts = [text for text in [await future for future in pending] if text]
        if not texts:
            self._send_error(RealtimeError("nothing_to_answer", "the committed audio held no words"))
            return
        self.session.push_text(" ".join(texts))

    def _on_response_cancel(self, event: ClientEvent) -> None:
        if self._response is None:
            raise event.error("response_cancel_not_active", "there is no response in progress to cancel")
        self._response.cancel_reason = "client_cancelled"
        self.session.interrupt("the client cancelled the response")

    def _on_output_audio_buffer_clear(self, event: ClientEvent) -> None:
        if self._response is not None:
            self._response.cancel_reason = "client_cancelled"
            self.session.interrupt("the client cleared its output audio")
        self._emit("output_audio_buffer.cleared", response_id=None)

    def _on_conversation_item_truncate(self, event: ClientEvent) -> None:
        item_id = event.field("item_id", str)
        audio_end_ms = event.field("audio_end_ms", int)
        event.field("content_index", int, 0)
        if audio_end_ms < 0:
            raise event.error("invalid_value", "'audio_end_ms' must not be negative", "audio_end_ms")
        turn_id = self._turn_of_item.get(item_id)
        if turn_id is None:
            raise event.error("item_truncate_invalid_item_id", f"no assistant audio item {item_id!r} here", "item_id")
        if self.session.truncate_answer(turn_id, audio_end_ms / 1000) is None:
            raise event.error("item_truncate_invalid_item_id", f"item {item_id!r} is no longer in the history",
                              "item_id")
