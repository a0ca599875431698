"""The browser chat server: the page, SDP offer/answer behind an access token, and the session limit.

Routes:
  GET  /?token=T         the page (no external resources; it reads the token from its own URL)
  GET  /static/NAME      the page's script and style sheet
  POST /offer            {"sdp": ..., "type": "offer"} with "Authorization: Bearer T" -> the SDP answer
  GET  /health           {"calls": N, "realtime": R, "max_sessions": M}, token required
  GET  /v1/realtime       an OpenAI Realtime WebSocket session (``ui.realtime``), same token (Bearer, ?token=
                          or the subprotocol openai-insecure-api-key.T); ?model= is accepted and reported
Every refusal is JSON {"error": "..."} with a fitting status: 401 token, 400 bad offer, 408 body too slow,
413 too large, 503 busy, 500 (logged) for a bug. An offer's SDP is checked (it must send microphone audio)
before a session is built: each session costs memory. Calls and Realtime sockets share ``max_sessions``.
Each accepted offer or socket gets its own duplex session (own
conversation, own event log file, never overwritten); models are shared. Connections pass through
``ui.webrtc.limits`` (a cap and a request-head deadline). ``serve_forever`` stops on SIGINT or SIGTERM,
even when SIGINT was ignored at start (as nohup, CI runners and supervisors start a process), closing every
call and so flushing its event log; repeated log lines are rate limited (``ui.webrtc.log_limit``).
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import logging
import secrets
import signal
import time
from collections import deque
from pathlib import Path

from aiohttp import web
from aiortc import RTCSessionDescription
from aiortc.sdp import SessionDescription

from ui.realtime.connection import RealtimeConnection, TextLimits
from ui.realtime.formats import AudioFormat
from ui.session_factory import SessionFactory
from ui.webrtc import log_limit
from ui.webrtc.call import Call, CallSummary
from ui.webrtc.ice import restrict_ice_to
from ui.webrtc.limits import LimitedSite
from ui.webrtc.options import ServerOptions
from ui.webrtc.rate import TokenBucket
from ui.webrtc.sctp import tolerate_invalid_text

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
KEY_PROTOCOL = "openai-insecure-api-key."  # browsers cannot set headers on a WebSocket: the key rides here


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def sdp_problem(sdp: str) -> str | None:
    """Why an offer is no use for a call (None: it is). Parsed the way aiortc will parse it."""
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as error:  # aiortc raises ValueError, KeyError, IndexError... on broken lines
        return f"malformed SDP offer: {type(error).__name__}: {error}"
    for media in parsed.media:  # a missing direction means sendrecv; port 0 is a refused m-line
        if media.kind == "audio" and media.port != 0 and (media.direction or "sendrecv") in ("sendrecv", "sendonly"):
            return None
    return "unusable SDP offer: the offer must send microphone audio (an audio m-line, sendrecv or sendonly)"


class ChatServer:
    """Serves calls, each on a new session from ``new_session`` (sessions share the models behind it)."""

    def __init__(self, new_session: SessionFactory, options: ServerOptions | None = None) -> None:
        self.new_session = new_session
        self.options = options or ServerOptions()
        self.token = self.options.token or secrets.token_urlsafe(18)
        self.calls: dict[str, Call] = {}
        self.realtime: dict[str, RealtimeConnection] = {}
        self.ended_calls: deque[CallSummary] = deque(maxlen=8)  # the last few, for tests and diagnostics
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.site: LimitedSite | None = None
        self.port: int | None = None

    # --- HTTP ------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.options.max_body_bytes,
                              middlewares=[self._json_errors])
        app.router.add_get("/", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_post("/offer", self._offer)
        app.router.add_get("/health", self._health)
        app.router.add_get(self.options.realtime.path, self._realtime)
        app.on_shutdown.append(lambda _app: self.close_all("server stopping"))
        return app

    @web.middleware
    async def _json_errors(self, request: web.Request, handler):
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"request body too large (the limit is {self.options.max_body_bytes} bytes)")
        except web.HTTPNotFound:
            return _error(404, f"no such path: {request.path}")
        except web.HTTPMethodNotAllowed:
            return _error(405, f"{request.method} is not allowed on {request.path}")
        except web.HTTPException:
            raise
        except Exception as error:  # a bug: logged here once, answered in JSON like every other refusal
            log.exception("%s %s failed", request.method, request.path)
            return _error(500, f"internal server error ({type(error).__name__})")

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        given = header[7:] if header.startswith("Bearer ") else request.query.get("token", "")
        if not given:
            protocols = request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            given = next((p.strip()[len(KEY_PROTOCOL):] for p in protocols if p.strip().startswith(KEY_PROTOCOL)), "")
        return hmac.compare_digest(given.encode(), self.token.encode())

    @property
    def sessions_in_use(self) -> int:
        return len(self.calls) + len(self.realtime)

    def _busy(self) -> web.Response | None:
        if self.sessions_in_use >= self.options.max_sessions:
            return _error(503, f"busy: {self.sessions_in_use} sessions in progress, the limit is "
                               f"{self.options.max_sessions}; try again later")
        return None

    async def _page(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return web.Response(status=401, content_type="text/plain",
                                text="Access token missing or wrong: open the URL the server printed.")
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            return _error(404, f"no such file: {name}")
        return web.FileResponse(STATIC_DIR / name, headers={"Content-Type": STATIC_FILES[name]})

    async def _health(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, "access token missing or wrong")
        return web.json_response({"calls": len(self.calls), "realtime": len(self.realtime),
                                  "max_sessions": self.options.max_sessions})

    async def _offer(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, "access token missing or wrong")
        try:  # over max_body_bytes: the middleware answers 413; a body sent byte by byte holds a connection
            body = await asyncio.wait_for(request.read(), self.options.header_timeout_s)
        except TimeoutError:
            return _error(408, f"the offer's body did not arrive within {self.options.header_timeout_s:g} s")
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, 'the body must be JSON: {"sdp": "...", "type": "offer"}')
        except RecursionError:  # "[[[[..." deeper than Python's recursion limit
            return _error(400, 'the body must be JSON: {"sdp": "...", "type": "offer"} (this one is nested too deeply)')
        if not isinstance(data, dict) or data.get("type") != "offer" or not isinstance(data.get("sdp"), str):
            return _error(400, 'the body must be JSON: {"sdp": "...", "type": "offer"}')
        problem = sdp_problem(data["sdp"])
        if problem is not None:
            return _error(400, problem)
        busy = self._busy()
        if busy is not None:
            return busy
        call = self._new_call()
        try:
            answer = await call.answer(RTCSessionDescription(sdp=data["sdp"], type="offer"))
        except Exception as error:  # aiortc raises ValueError and others on SDP it cannot use
            await call.close(f"bad offer: {error}")
            return _error(400, f"malformed or unusable SDP offer: {error}")
        return web.json_response({"sdp": answer.sdp, "type": answer.type, "call_id": call.id})

    async def _realtime(self, request: web.Request) -> web.StreamResponse:
        """One OpenAI Realtime session over a WebSocket (``ui.realtime``), refused before the upgrade."""
        if not self._authorised(request):
            return _error(401, "access token missing or wrong (send it as 'Authorization: Bearer TOKEN')")
        busy = self._busy()
        if busy is not None:
            return busy
        options = self.options.realtime
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        socket = web.WebSocketResponse(max_msg_size=options.max_message_bytes, heartbeat=options.heartbeat_s,
                                       protocols=[p for p in offered if p == "realtime"])
        if not socket.can_prepare(request).ok:
            return _error(400, f"{options.path} is a WebSocket endpoint: connect with a Realtime client")
        connection_id = str(next(self._ids))
        log_path = self._event_log_path(connection_id, "realtime") if self.options.event_log_dir else None
        session = self.new_session(output_sample_rate=AudioFormat.PCM16.sample_rate, event_log_path=log_path,
                                   keep_event_records=False)
        limits = TextLimits(self.options.max_text_chars,
                            TokenBucket(self.options.text_rate_per_s, self.options.text_burst))
        connection = RealtimeConnection(
            connection_id, session, socket, options, limits, model=request.query.get("model", "duplex"),
            beta=request.headers.get("OpenAI-Beta", "").startswith("realtime=v1"),
            extra_events=request.query.get("duplex_events", "1") != "0",
            on_closed=self._forget_realtime)
        self.realtime[connection_id] = connection  # counted against the limit before any await
        try:
            await socket.prepare(request)
            await connection.run()
        finally:
            await connection.close(connection.close_reason or "server stopping")
        return socket

    # --- calls -----------------------------------------------------------------------------------

    def _new_call(self) -> Call:
        call_id = str(next(self._ids))
        log_path = self._event_log_path(call_id) if self.options.event_log_dir else None
        session = self.new_session(output_sample_rate=self.options.output_sample_rate, event_log_path=log_path,
                                   keep_event_records=False)
        call = Call(call_id, session, self.options, self._forget)
        self.calls[call_id] = call  # counted against the limit before any await
        return call

    def _event_log_path(self, call_id: str, kind: str = "call") -> Path:
        """A name no earlier run used: call ids start at 1 again on every start (call-1.jsonl was overwritten)."""
        folder = Path(self.options.event_log_dir)
        while True:
            path = folder / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{call_id}-{secrets.token_hex(2)}.jsonl"
            if not path.exists():
                return path

    def _forget_realtime(self, connection: RealtimeConnection) -> None:
        self.realtime.pop(connection.id, None)

    def _forget(self, call: Call) -> None:
        self.calls.pop(call.id, None)
        self.ended_calls.append(call.summary())

    async def close_all(self, reason: str) -> None:
        """Close every call, each within ``stop_timeout_s`` (a close that hangs still frees its slot)."""
        closing = [asyncio.wait_for(call.close(reason), self.options.stop_timeout_s)
                   for call in list(self.calls.values())]
        closing += [asyncio.wait_for(connection.close(reason), self.options.stop_timeout_s)
                    for connection in list(self.realtime.values())]
        for result in await asyncio.gather(*closing, return_exceptions=True):
            if isinstance(result, BaseException):
                log.warning("a call did not close cleanly: %r", result)

    # --- running ---------------------------------------------------------------------------------

    async def start(self) -> str:
        """Start listening; returns the page URL with the token."""
        restrict_ice_to(self.options.host)
        tolerate_invalid_text()
        # aiohttp's default keep-alive is an hour (each idle connection would hold a slot that long), and
        # a request still running at stop may take stop_timeout_s (aiohttp would wait 60 s).
        self._runner = web.AppRunner(self.app(), access_log=None, keepalive_timeout=self.options.keepalive_timeout_s,
                                     shutdown_timeout=self.options.stop_timeout_s)
        await self._runner.setup()
        ssl_context = None
        if self.options.certfile:
            import ssl

            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(self.options.certfile, self.options.keyfile or None)
        self.site = LimitedSite(self._runner, self.options.host, self.options.port, ssl_context=ssl_context,
                                max_connections=self.options.max_connections,
                                header_timeout_s=self.options.header_timeout_s)
        try:
            await self.site.start()
        except BaseException:
            await self._runner.cleanup()
            self._runner = None
            raise
        self.port = self.site.bound_port
        return self.url

    @property
    def url(self) -> str:
        scheme = "https" if self.options.certfile else "http"
        return f"{scheme}://{self._reachable_host}:{self.port}/?token={self.token}"

    @property
    def realtime_url(self) -> str:
        scheme = "wss" if self.options.certfile else "ws"
        return f"{scheme}://{self._reachable_host}:{self.port}{self.options.realtime.path}"

    @property
    def _reachable_host(self) -> str:
        """The bound address, or loopback when bound to every interface (a URL cannot name "0.0.0.0")."""
        return self.options.host if self.options.host not in ("0.0.0.0", "::", "") else "127.0.0.1"

    async def stop(self) -> None:
        if self._runner is not None:
            await self.close_all("server stopping")
            await self._runner.cleanup()
            self._runner = None


async def serve_forever(new_session: SessionFactory, options: ServerOptions) -> None:
    """Serve until SIGINT or SIGTERM, then close every call (flushing its event log) and return."""
    uninstall_log_limit = log_limit.install(options.log_repeat_limit)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handled = {}  # signal -> its handler before
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Works even when SIGINT was ignored at start, where Python raises no KeyboardInterrupt at all.
        try:
            previous = signal.getsignal(sig)
            loop.add_signal_handler(sig, stop.set)
            handled[sig] = previous
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or not Unix
            pass
    server = ChatServer(new_session, options)
    try:
        url = await server.start()
        print(f"assistant: open {url} in a browser (Ctrl-C stops)", flush=True)
        print(f"assistant: Realtime clients connect to {server.realtime_url} with the same token", flush=True)
        await stop.wait()
        log.info("stopping: closing %d calls", len(server.calls))
    finally:
        try:
            await server.stop()
        finally:
            for sig, previous in handled.items():
                loop.remove_signal_handler(sig)
                if previous is not None:  # remove_signal_handler put Python's default back, not what was there
                    signal.signal(sig, previous)
            uninstall_log_limit()
