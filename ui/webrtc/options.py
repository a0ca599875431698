"""Options of the browser chat server, typed, with their defaults in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

from ui.realtime.options import RealtimeOptions


@dataclass
class ServerOptions:
    host: str = "127.0.0.1"  # bind address; ICE host candidates are restricted to it as well
    port: int = 8080  # 0 picks a free port
    token: str = ""  # "" = a random token made at start and printed with the URL
    # Calls beyond this get HTTP 503 "busy". 2: on 2 cores, 2 calls asking at once answer in p90 1.13 s and
    # 3 in 2.31 s (benchmarks/call_load.py, docs/benchmarks.md); 4 let every call's answers come late.
    max_sessions: int = 2
    max_body_bytes: int = 64 * 1024  # an SDP offer is ~5 KB; anything far larger is refused with 413
    max_message_bytes: int = 4096  # one data channel message from the page
    max_text_chars: int = 2000  # one typed message
    text_rate_per_s: float = 1.0  # typed messages per second and call, on average...
    text_burst: int = 5  # ...and at once; more get "too many messages, slow down" (each interrupts the answer)
    ice_servers: list[str] = field(default_factory=list)  # e.g. ["stun:stun.example.org:3478"]; none by default
    camera_interval_s: float = 0.1  # hand at most this many camera frames a second (1/x) to the session
    connect_timeout_s: float = 10.0  # an accepted offer with no microphone frame this long after it: closed
    media_timeout_s: float = 5.0  # no microphone frame for this long (browsers send even when muted): peer gone
    max_connections: int = 256  # open HTTP connections; beyond that idle ones make room or the new one is closed
    header_timeout_s: float = 10.0  # a connection's first request head, and an offer's body, must arrive within this
    keepalive_timeout_s: float = 30.0  # an idle kept-alive HTTP connection is closed after this
    log_repeat_limit: int = 10  # the same log message at most this many times per 10 s, then a count
    stop_timeout_s: float = 3.0  # on SIGINT/SIGTERM, each call's close may take this long
    output_sample_rate: int = 48000  # what the voice track sends (Opus runs at 48 kHz)
    event_log_dir: str = ""  # append one JSONL event log per call here, uniquely named ("" = memory only)
    certfile: str = ""  # TLS: browsers allow the microphone on hosts other than localhost only over https
    keyfile: str = ""
    realtime: RealtimeOptions = field(default_factory=RealtimeOptions)  # the OpenAI Realtime endpoint
