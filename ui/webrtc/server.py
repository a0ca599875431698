"""The browser chat server: the page, SDP offer/answer behind an access token, and the session limit.

Routes:
  GET  /?token=T         the page (no external resources; it reads the token from its own URL)
  GET  /static/NAME      the page's script and style sheet
  POST /offer            {"sdp": ..., "type": "offer"} with "Authorization: Bearer T" -> the SDP answer
  GET  /health           {"calls": N, "max_sessions": M}, token required
Every refusal is JSON {"error": "..."} with a fitting status: 401 token, 400 bad offer, 413 too large,
503 busy. Each accepted offer gets its own duplex session (own conversation); models are shared.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import logging
import secrets
from collections import deque
from pathlib import Path

from aiohttp import web
from aiortc import RTCSessionDescription

from ui.webrtc.call import Call
from ui.webrtc.ice import restrict_ice_to
from ui.webrtc.options import ServerOptions

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class ChatServer:
    """Serves calls for one set of loaded models (``assistant.session.AssistantModels`` or alike)."""

    def __init__(self, models, options: ServerOptions | None = None) -> None:
        self.models = models
        self.options = options or ServerOptions()
        self.token = self.options.token or secrets.token_urlsafe(18)
        self.calls: dict[str, Call] = {}
        self.ended_calls: deque[Call] = deque(maxlen=8)  # the last few, for tests and diagnostics
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # --- HTTP ------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.options.max_body_bytes,
                              middlewares=[self._json_errors])
        app.router.add_get("/", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_post("/offer", self._offer)
        app.router.add_get("/health", self._health)
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

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        given = header[7:] if header.startswith("Bearer ") else request.query.get("token", "")
        return hmac.compare_digest(given.encode(), self.token.encode())

    async def _page(self, request: web.Request) -> web.Response:
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
        return web.json_response({"calls": len(self.calls), "max_sessions": self.options.max_sessions})

    async def _offer(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, "access token missing or wrong")
        body = await request.read()  # over max_body_bytes: the middleware answers 413
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, 'the body must be JSON: {"sdp": "...", "type": "offer"}')
        if not isinstance(data, dict) or data.get("type") != "offer" or not isinstance(data.get("sdp"), str):
            return _error(400, 'the body must be JSON: {"sdp": "...", "type": "offer"}')
        if len(self.calls) >= self.options.max_sessions:
            return _error(503, f"busy: {len(self.calls)} calls in progress, the limit is {self.options.max_sessions}; "
                               "try again later")
        call = self._new_call()
        try:
            answer = await call.answer(RTCSessionDescription(sdp=data["sdp"], type="offer"))
        except Exception as error:  # aiortc raises ValueError and others on SDP it cannot use
            await call.close(f"bad offer: {error}")
            return _error(400, f"malformed or unusable SDP offer: {error}")
        return web.json_response({"sdp": answer.sdp, "type": answer.type, "call_id": call.id})

    # --- calls -----------------------------------------------------------------------------------

    def _new_call(self) -> Call:
        call_id = str(next(self._ids))
        log_path = None
        if self.options.event_log_dir:
            log_path = Path(self.options.event_log_dir) / f"call-{call_id}.jsonl"
        session = self.models.new_session(event_log_path=log_path, output_sample_rate=self.options.output_sample_rate,
                                          keep_event_records=False)
        call = Call(call_id, session, self.options, self._forget)
        self.calls[call_id] = call  # counted against the limit before any await
        return call

    def _forget(self, call: Call) -> None:
        self.calls.pop(call.id, None)
        self.ended_calls.append(call)

    async def close_all(self, reason: str) -> None:
        await asyncio.gather(*(call.close(reason) for call in list(self.calls.values())), return_exceptions=True)

    # --- running ---------------------------------------------------------------------------------

    async def start(self) -> str:
        """Start listening; returns the page URL with the token."""
        restrict_ice_to(self.options.host)
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        ssl_context = None
        if self.options.certfile:
            import ssl

            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(self.options.certfile, self.options.keyfile or None)
        site = web.TCPSite(self._runner, self.options.host, self.options.port, ssl_context=ssl_context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self.url

    @property
    def url(self) -> str:
        host = self.options.host if self.options.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        scheme = "https" if self.options.certfile else "http"
        return f"{scheme}://{host}:{self.port}/?token={self.token}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self.close_all("server stopping")
            await self._runner.cleanup()
            self._runner = None


async def serve_forever(models, options: ServerOptions) -> None:
    server = ChatServer(models, options)
    url = await server.start()
    print(f"assistant: open {url} in a browser (Ctrl-C stops)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
