"""The Realtime protocol's words: session settings, client events checked into typed values, errors.

JSON lives only here and at the socket: a client event becomes a ``ClientEvent`` (its type, its id and its
fields as given) once it is valid JSON with a known type; each handler then reads its fields through
``field``, which raises a ``RealtimeError`` naming the parameter. Every error reaches the client as the
protocol's error event, ``{"type": "error", "error": {"type", "code", "message", "param", "event_id"}}``.

Server events are built with their GA names; ``event_name`` renames them for a client that asked for the
beta protocol (header ``OpenAI-Beta: realtime=v1``).
"""

from __future__ import annotations

import builtins
import enum
import json
from dataclasses import dataclass, field
from typing import Any

from ui.realtime.formats import AudioFormat, FormatError

EXTRA_PREFIX = "duplex."  # our own events (decisions, roles, latencies): existing clients ignore them

BETA_NAMES = {
    "conversation.item.added": "conversation.item.created",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
}

HANDLED = (
    "session.update", "input_audio_buffer.append", "input_audio_buffer.commit", "input_audio_buffer.clear",
    "conversation.item.create", "conversation.item.truncate", "response.create", "response.cancel",
    "output_audio_buffer.clear",
)
REFUSED = {  # known to the protocol, not served here: each gets an error saying so
    "conversation.item.delete": "the history keeps what was said; items cannot be deleted here",
    "conversation.item.retrieve": "items are not kept as audio here",
    "transcription_session.update": "transcription-only sessions are not served here",
}
TURN_DETECTION_TYPES = ("server_vad", "semantic_vad")  # both mean: our duplex core decides turns
# session.update fields accepted and ignored (reported back as given): they tune a cloud model we do not run
IGNORED_SESSION_FIELDS = ("tools", "tool_choice", "temperature", "max_response_output_tokens", "max_output_tokens",
                          "include", "tracing", "prompt", "truncation", "speed", "input_audio_noise_reduction",
                          "input_audio_transcription", "output_modalities", "modalities")


class ErrorType(str, enum.Enum):
    INVALID_REQUEST = "invalid_request_error"
    SERVER = "server_error"


class RealtimeError(Exception):
    """A client event the server will not act on; sent back as the protocol's error event."""

    def __init__(self, code: str, message: str, param: str | None = None, event_id: str | None = None,
                 error_type: ErrorType = ErrorType.INVALID_REQUEST) -> None:
        super().__init__(message)
        self.code, self.message, self.param, self.event_id, self.error_type = code, message, param, event_id, error_type

    def to_event(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": self.error_type.value, "code": self.code, "message": self.message,
                                           "param": self.param, "event_id": self.event_id}}


@dataclass(frozen=True)
class ClientEvent:
    type: str
    event_id: str | None
    data: dict[str, Any]

    def field(self, path: str, kind: builtins.type | tuple[builtins.type, ...], default: Any = ...,
              where: dict | None = None) -> Any:
        """The value at ``path`` ("item.content") of this event (or of ``where``), checked to be a ``kind``;
        ``default`` when absent (no default: the field is required)."""
        node: Any = self.data if where is None else where
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is ...:
                    raise RealtimeError("missing_required_parameter", f"{self.type} needs {path!r}", path,
                                        self.event_id)
                return default
            node = node[part]
        if not isinstance(node, kind) or (isinstance(node, bool) and bool not in _as_tuple(kind)):
            names = " or ".join(k.__name__ for k in _as_tuple(kind))
            raise RealtimeError("invalid_type", f"{path!r} must be {names}, not {type(node).__name__}",
                                path, self.event_id)
        return node

    def error(self, code: str, message: str, param: str | None = None) -> RealtimeError:
        return RealtimeError(code, message, param, self.event_id)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def parse_client_event(message: str | bytes) -> ClientEvent:
    """A socket message as a client event; RealtimeError for anything that is not one we know."""
    if isinstance(message, bytes):
        raise RealtimeError("invalid_message", "binary messages are not part of the protocol; send JSON text")
    try:
        data = json.loads(message)
    except json.JSONDecodeError as error:
        raise RealtimeError("invalid_json", f"the event is not valid JSON: {error.msg} at character {error.pos}") \
            from None
    except RecursionError:  # "[[[[..." deeper than Python's recursion limit
        raise RealtimeError("invalid_json", "the event is nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise RealtimeError("invalid_event", 'an event is a JSON object with a string "type"')
    event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
    kind = data["type"]
    if kind in REFUSED:
        raise RealtimeError("unsupported_event", f"{kind} is not supported: {REFUSED[kind]}", "type", event_id)
    if kind not in HANDLED:
        raise RealtimeError("invalid_event_type", f"unknown event type {kind!r}; this server handles "
                            + ", ".join(HANDLED), "type", event_id)
    return ClientEvent(kind, event_id, data)


@dataclass
class SessionSettings:
    """What ``session.update`` may change, and what ``session.created`` / ``.updated`` report."""

    id: str
    model: str
    instructions: str
    voice: str
    input_format: AudioFormat = AudioFormat.PCM16
    output_format: AudioFormat = AudioFormat.PCM16
    turn_detection: dict[str, Any] | None = field(default_factory=lambda: {"type": "server_vad"})
    ignored: dict[str, Any] = field(default_factory=dict)  # accepted fields we do not act on, echoed back

    @property
    def server_turns(self) -> bool:
        """True: the duplex core hears the audio and decides turns; False: the client commits them."""
        return self.turn_detection is not None

    def update(self, event: ClientEvent) -> None:
        """Apply a session.update (GA ``session.audio.*`` or beta flat fields); nothing changes on an error."""
        session = event.field("session", dict)
        audio = event.field("audio", dict, {}, where=session)
        audio_in = event.field("input", dict, {}, where=audio)
        audio_out = event.field("output", dict, {}, where=audio)
        changes: dict[str, Any] = {}
        if "instructions" in session:
            changes["instructions"] = event.field("session.instructions", str)
        voice = audio_out.get("voice", session.get("voice"))
        if voice is not None:
            if not isinstance(voice, (str, dict)):
                raise event.error("invalid_type", "'voice' must be a string", "session.audio.output.voice")
            changes["voice"] = voice if isinstance(voice, str) else str(voice.get("id", self.voice))
        for name, given, param in (("input_format", audio_in.get("format", session.get("input_audio_format")),
                                    "session.audio.input.format"),
                                   ("output_format", audio_out.get("format", session.get("output_audio_format")),
                                    "session.audio.output.format")):
            if given is not None:
                try:
                    changes[name] = AudioFormat.parse(given)
                except FormatError as error:
                    raise event.error("invalid_value", str(error), param) from None
        for holder, param in ((audio_in, "session.audio.input.turn_detection"), (session, "session.turn_detection")):
            if "turn_detection" in holder:
                changes["turn_detection"] = self._turn_detection(event, holder["turn_detection"], param)
                break
        ignored = {key: session[key] for key in IGNORED_SESSION_FIELDS if key in session}
        for key, value in changes.items():
            setattr(self, key, value)
        self.ignored.update(ignored)

    @staticmethod
    def _turn_detection(event: ClientEvent, value: Any, param: str) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict) or value.get("type", "server_vad") not in TURN_DETECTION_TYPES:
            raise event.error("invalid_value", "turn_detection must be null (the client commits turns) or "
                              "{'type': 'server_vad'} / {'type': 'semantic_vad'} (the duplex core decides)", param)
        return {"type": "server_vad", **value}

    def to_json(self, beta: bool) -> dict[str, Any]:
        if beta:
            return {"id": self.id, "object": "realtime.session", "model": self.model, "modalities": ["audio", "text"],
                    "instructions": self.instructions, "voice": self.voice,
                    "input_audio_format": self.input_format.to_json(beta=True),
                    "output_audio_format": self.output_format.to_json(beta=True),
                    "turn_detection": self.turn_detection, "input_audio_transcription": {"model": "whisper"},
                    **self.ignored}
        return {"type": "realtime", "object": "realtime.session", "id": self.id, "model": self.model,
                "output_modalities": ["audio"], "instructions": self.instructions,
                "audio": {"input": {"format": self.input_format.to_json(beta=False),
                                    "turn_detection": self.turn_detection, "transcription": {"model": "whisper"}},
                          "output": {"format": self.output_format.to_json(beta=False), "voice": self.voice}},
                **self.ignored}


def event_name(name: str, beta: bool) -> str:
    return BETA_NAMES.get(name, name) if beta else name
