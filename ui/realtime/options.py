"""Options of the Realtime endpoint, typed, with their defaults in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RealtimeOptions:
    path: str = "/v1/realtime"  # where `assistant serve` accepts Realtime WebSocket sessions
    max_message_bytes: int = 16 * 1024 * 1024  # one client event; the protocol allows 15 MiB appends
    audio_lead_s: float = 0.1  # voice sent ahead of real time, for the client's jitter; the rest is paced
    audio_chunk_s: float = 0.02  # one response.output_audio.delta (the pacing step; an interrupt waits at most this)
    max_audio_ahead_s: float = 20.0  # input audio may run this far ahead of real time; beyond it, appends are refused
    max_input_buffer_s: float = 120.0  # uncommitted audio kept with turn detection off; beyond it, appends are refused
    max_outbox_events: int = 5000  # events queued for a client that does not read; beyond it, the socket is closed
    heartbeat_s: float = 10.0  # WebSocket pings; a client that answers none within this is gone and its slot freed
    voice: str = "joe"  # the one voice we have; a session.update naming another is accepted and reported
