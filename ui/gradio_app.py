"""``assistant gradio``: the same full-duplex assistant in a gradio page (fastrtc's WebRTC component).

Microphone and camera stream in, the assistant's voice streams out, over one WebRTC call per browser tab;
each call gets its own ``DuplexSession``. The page shows the conversation (what the user said or typed, the
words of each answer the user actually heard, interrupted ones marked) and the state decisions, and has a
text box whose message interrupts like speech (decided ``<3>``).

Offline by construction: gradio's analytics and version check are off (GRADIO_ANALYTICS_ENABLED=False),
the model hub is never asked (HF_HUB_OFFLINE=1), no STUN/TURN server is given to the browser or the server
(an empty ICE server list; both default to public STUN otherwise), the theme uses system fonts (the default
one loads Google Fonts), and fastrtc's own hub-downloaded helpers (VAD, STT, TTS) are not used.
The server binds 127.0.0.1 and asks for a login: user ``assistant``, password the access token (``--token``,
else $ASSISTANT_TOKEN, else a random one printed at start).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import socket
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from audio.frames import AudioFrame
from duplex.events import Event, TurnEnded, TurnStarted, TurnStatus
from duplex.session import DuplexSession
from ui.live_events import LiveEvents, WorkerRoles
from ui.session_factory import SessionFactory
from ui.terminal_view import format_message

OFFLINE_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
GRADIO_USER = "assistant"
TURN_MARKS = {TurnStatus.INTERRUPTED: " [interrupted]", TurnStatus.FAILED: " [failed]"}


@dataclass
class GradioOptions:
    host: str = "127.0.0.1"  # this machine only; anything else also needs https for the browser's microphone
    port: int = 7860  # 0 picks a free port
    token: str = ""  # the login password; "" = $ASSISTANT_TOKEN, else random per start
    output_sample_rate: int = 48000  # what the voice track sends (Opus runs at 48 kHz)
    frame_s: float = 0.02
    camera_interval_s: float = 0.25  # hand at most this many camera frames a second (1/x) to the session
    max_calls: int = 2  # calls at once (each is a session on the shared models)
    shown_decisions: int = 40  # lines of the decision log on the page


def set_offline_environment() -> None:
    """Before gradio is imported: no analytics, no version check, no model hub."""
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value


class ConversationView:
    """Follows one session's bus: the chat (user / assistant messages) and the state-decision log."""

    def __init__(self, session: DuplexSession) -> None:
        self.session = session
        self.live = LiveEvents(session)
        self.start_time = session.clock.now()
        self.chat: list[dict[str, str]] = []
        self.lines: list[str] = []
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="gradio-view")

    async def _follow(self) -> None:
        subscription = self.session.bus.subscribe("gradio-view", max_data=2000)
        try:
            async for event in subscription:
                self.on_event(event)
        finally:
            subscription.close()

    def on_event(self, event: Event) -> None:
        if isinstance(event, TurnStarted):
            self.chat.append({"role": "user", "content": event.question})
        elif isinstance(event, TurnEnded):
            said = event.spoken or "…"
            self.chat.append({"role": "assistant", "content": said + TURN_MARKS.get(event.status, "")})
        for message in self.live.messages(event):
            if isinstance(message, WorkerRoles):
                continue
            line = format_message(message, self.start_time)
            if line is not None:
                self.lines.append(line)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


EXTERNAL_SCRIPT = re.compile(rb"<script\s+src=\"https://[^\"]+\"[^>]*>\s*</script>")


class StripExternalScripts:
    """ASGI middleware: gradio's page template loads iframe-resizer from cdnjs (only useful when the page is
    embedded elsewhere); an offline page must not reach out, so HTML responses lose external scripts."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        chunks: list[bytes] = []

        async def filtered(message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                if headers.get(b"content-type", b"").startswith(b"text/html"):
                    start = message  # hold the headers until the body is rewritten
                    return
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = EXTERNAL_SCRIPT.sub(b"", b"".join(chunks))
                new_headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                new_headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": new_headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, filtered)


def make_handler_class():
    """The fastrtc handler class (built lazily: fastrtc imports gradio, which must see the offline settings)."""
    from fastrtc import AsyncAudioVideoStreamHandler

    class AssistantCallHandler(AsyncAudioVideoStreamHandler):
        """One browser call: microphone and camera into a new session, its voice back out."""

        def __init__(self, new_session: SessionFactory, options: GradioOptions) -> None:
            super().__init__(expected_layout="mono", output_sample_rate=options.output_sample_rate,
                             input_sample_rate=48000)
            self.new_session, self.options = new_session, options
            self.session: DuplexSession | None = None
            self.view: ConversationView | None = None
            self.session_loop: asyncio.AbstractEventLoop | None = None
            self._frame = int(options.output_sample_rate * options.frame_s)
            self._started_at: float | None = None
            self._sent = 0
            self._last_image: np.ndarray | None = None
            self._last_image_at = 0.0
            self._early: deque[AudioFrame] = deque(maxlen=500)  # 10 s of 20 ms frames

        def copy(self) -> AssistantCallHandler:
            return AssistantCallHandler(self.new_session, self.options)

        async def start_up(self) -> None:
            session = self.new_session(output_sample_rate=self.options.output_sample_rate)
            await session.start()
            self.session_loop = asyncio.get_running_loop()
            self.view = ConversationView(session)
            self.view.start()
            while self._early:
                session.push_audio(self._early.popleft())
            self.session = session

        async def receive(self, frame: tuple[int, np.ndarray]) -> None:
            rate, samples = frame
            audio = AudioFrame(np.asarray(samples).reshape(-1), rate)
            if self.session is None:
                self._early.append(audio)  # the session is still starting: the user may already be talking
            else:
                self.session.push_audio(audio)

        async def emit(self):
            """The next 20 ms of the assistant's voice, read when it is due: an interrupt that drops the
            queue then silences the call at once, and the playback queue counts what was really sent."""
            rate = self.options.output_sample_rate
            now = time.monotonic()
            if self._started_at is None:
                self._started_at = now
            else:
                due = self._started_at + self._sent / rate
                if due - now < -0.1:  # the loop stalled: restart the pacing rather than send a burst
                    self._started_at = now - self._sent / rate
                elif due > now:
                    await asyncio.sleep(due - now)
            self._sent += self._frame
            if self.session is None:
                return rate, np.zeros((1, self._frame), dtype=np.int16)
            return rate, self.session.output.read(self._frame).reshape(1, -1)

        async def video_receive(self, frame: np.ndarray) -> None:
            self._last_image = frame
            now = time.monotonic()
            if self.session is not None and now - self._last_image_at >= self.options.camera_interval_s:
                self._last_image_at = now
                self.session.push_image(np.ascontiguousarray(frame[..., ::-1]))  # fastrtc gives BGR

        async def video_emit(self):
            if self._last_image is None:
                return np.zeros((240, 320, 3), dtype=np.uint8)
            return self._last_image  # the page shows the camera as the session sees it

        def type_text(self, text: str) -> None:
            """From any thread: a typed message, handed to the session on its loop. Raises the session's
            ValueError for a message it refuses (too long in the model's tokens)."""
            session, loop = self.session, self.session_loop
            if session is None or loop is None:
                return

            async def push() -> None:
                session.push_text(text)

            asyncio.run_coroutine_threadsafe(push(), loop).result(timeout=5.0)

        async def shutdown(self) -> None:
            if self.view is not None:
                self.view.close()
            if self.session is not None:
                await self.session.close()

    return AssistantCallHandler


def _call_id(value: Any) -> str:
    """The WebRTC component's value: its call id (a string, or an object holding it)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return str(value.get("webrtc_id", ""))
    return str(getattr(value, "webrtc_id", "") or "")


def build_app(new_session: SessionFactory, options: GradioOptions):
    """The gradio Blocks app: each call on a new session from ``new_session``."""
    set_offline_environment()
    import gradio as gr
    from fastrtc import WebRTC

    from ui.webrtc.ice import restrict_ice_to

    restrict_ice_to(options.host)  # aioice skips loopback and offers every other interface otherwise
    handler = make_handler_class()(new_session, options)
    no_ice: dict[str, list[dict[str, str]]] = {"iceServers": []}
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])
    with gr.Blocks(title="assistant", theme=theme, analytics_enabled=False) as app:
        gr.Markdown("### assistant: talk (it listens while it speaks), show the camera, or type to interrupt")
        with gr.Row():
            with gr.Column(scale=1):
                call = WebRTC(label="microphone and camera", modality="audio-video", mode="send-receive",
                              rtc_configuration=no_ice, server_rtc_configuration=no_ice, elem_id="call",
                              track_constraints={"audio": {"echoCancellation": True, "noiseSuppression": False,
                                                           "autoGainControl": False},
                                                 "video": {"width": 640, "height": 480}})
                typed = gr.Textbox(label="type a message (interrupts like speech)", elem_id="typed")
                send = gr.Button("send", elem_id="send")
            with gr.Column(scale=1):
                chat = gr.Chatbot(label="conversation", type="messages", elem_id="chat", height=360, allow_tags=False)
                decisions = gr.Textbox(label="state decisions and who is speaking", lines=12, max_lines=12,
                                       elem_id="decisions", interactive=False)
        call.stream(handler, inputs=[call], outputs=[call], time_limit=None, concurrency_limit=options.max_calls)

        def handler_for(value: Any):
            return call.handlers.get(_call_id(value))

        def refresh(value: Any):
            current = handler_for(value)
            if current is None or current.view is None:
                return gr.skip(), gr.skip()
            return list(current.view.chat), "\n".join(current.view.lines[-options.shown_decisions:])

        def submit(value: Any, text: str):
            current = handler_for(value)
            if current is None:
                raise gr.Error("start the call first (the button under the camera)")
            if text.strip():
                try:
                    current.type_text(text)
                except ValueError as error:  # the text stays in the box: nothing is lost
                    raise gr.Error(str(error)) from None
            return ""

        gr.Timer(0.5).tick(refresh, inputs=[call], outputs=[chat, decisions], show_progress="hidden")
        typed.submit(submit, inputs=[call, typed], outputs=[typed], show_progress="hidden")
        send.click(submit, inputs=[call, typed], outputs=[typed], show_progress="hidden")
    app.assistant_call = call  # its ``handlers``: the live calls by id (tests look in)
    return app


def serving_port(host: str, port: int) -> int:
    """``port``, or for 0 a port free on ``host`` now: gradio reads 0 (and None) as "its default", 7860."""
    if port:
        return port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))  # the kernel's pick; another process could take it before gradio binds (rare)
        return probe.getsockname()[1]


def access_token(options: GradioOptions) -> str:
    return options.token or os.environ.get("ASSISTANT_TOKEN", "") or secrets.token_urlsafe(12)


def launch(new_session: SessionFactory, options: GradioOptions, block: bool = True):
    """Serve the app; returns (app, url, token). ``block=False`` returns at once (tests)."""
    app = build_app(new_session, options)
    token = access_token(options)
    app.queue()
    from starlette.middleware import Middleware

    app.launch(server_name=options.host, server_port=serving_port(options.host, options.port),
               auth=(GRADIO_USER, token), app_kwargs={"middleware": [Middleware(StripExternalScripts)]},
               share=False, inbrowser=False, prevent_thread_lock=True, show_api=False, quiet=True,
               max_threads=8)
    url = app.local_url
    print(f"assistant gradio app on {url} (user {GRADIO_USER}, password {token})", flush=True)
    if block:
        try:
            app.block_thread()
        finally:
            app.close()
    return app, url, token

