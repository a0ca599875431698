"""Limits on the HTTP server's TCP connections: how many may be open, and how long one may take to ask.

aiohttp runs with no cap on connections and (before 3.11) no deadline for a request head, so 1124
half-open connections that never sent a byte exhausted the process's file descriptors: /health and new
calls failed. ``ConnectionLimiter`` wraps the protocol factory handed to ``loop.create_server`` (aiohttp
itself is not patched):

- at most ``max_connections`` are open; a new one beyond that takes the place of the oldest connection
  that has not yet sent a complete request head (a flood of idle sockets cannot lock out a real user), and
  is closed at once when every open connection is busy with a request;
- a connection that has not sent its first complete request head within ``header_timeout_s`` is closed.
  Later requests on a kept-alive connection are aiohttp's: its ``keepalive_timeout`` closes one left idle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

from aiohttp import web

log = logging.getLogger(__name__)
HEAD_END = b"\r\n\r\n"


class ConnectionLimiter:
    """A protocol factory for ``loop.create_server`` around ``inner`` (aiohttp's ``web.Server``)."""

    def __init__(self, inner: Callable[[], asyncio.Protocol], max_connections: int, header_timeout_s: float) -> None:
        self.inner = inner
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.open: dict[LimitedConnection, None] = {}  # oldest first (dicts keep insertion order)
        self.refused = 0  # closed at once: every slot busy with a request
        self.evicted = 0  # closed to make room, before they had sent a request head
        self.timed_out = 0  # closed for sending no complete request head in time

    def __call__(self) -> LimitedConnection:
        return LimitedConnection(self)

    def admit(self, connection: LimitedConnection) -> bool:
        if len(self.open) >= self.max_connections:
            waiting = next((c for c in self.open if not c.head_seen), None)
            if waiting is None:
                self.refused += 1
                return False
            self.evicted += 1
            waiting.drop()
        self.open[connection] = None
        return True

    def release(self, connection: LimitedConnection) -> None:
        self.open.pop(connection, None)


class LimitedConnection(asyncio.Protocol):
    """Passes everything to the real protocol, made only once the connection is admitted."""

    def __init__(self, limiter: ConnectionLimiter) -> None:
        self.limiter = limiter
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.head_seen = False
        self._tail = b""  # the last bytes seen, for a head end split across two reads
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # a stream server's transports are all full Transports
        self.transport = transport
        if not self.limiter.admit(self):
            transport.abort()
            return
        self._deadline = asyncio.get_running_loop().call_later(self.limiter.header_timeout_s, self._too_slow)
        self.inner = self.limiter.inner()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.inner is None:
            return
        if not self.head_seen:
            if HEAD_END in self._tail + data:
                self.head_seen = True
                self._cancel_deadline()
            self._tail = (self._tail + data)[-(len(HEAD_END) - 1):]
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.limiter.release(self)
        self._cancel_deadline()
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def drop(self) -> None:
        """Close now, and free the slot now (connection_lost comes a loop turn later)."""
        self.limiter.release(self)
        self._cancel_deadline()
        if self.transport is not None:
            self.transport.abort()

    def _too_slow(self) -> None:
        self._deadline = None
        self.limiter.timed_out += 1
        self.drop()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


class LimitedSite(web.TCPSite):
    """aiohttp's TCPSite, with each connection passing through a ``ConnectionLimiter``."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, max_connections: int,
                 header_timeout_s: float, ssl_context=None) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context)
        if runner.server is None:  # BaseSite.__init__ has already refused a runner not set up
            raise RuntimeError("call runner.setup() before making a site")
        self.limiter = ConnectionLimiter(runner.server, max_connections, header_timeout_s)
        self.bound_port: int | None = None

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner, as TCPSite.start does
        # A TLS handshake comes before connection_made: bound it by the same deadline.
        handshake_s = self.limiter.header_timeout_s if self._ssl_context is not None else None
        server = await asyncio.get_running_loop().create_server(
            self.limiter, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog,
            ssl_handshake_timeout=handshake_s)
        self._server = server
        self.bound_port = server.sockets[0].getsockname()[1]
