"""The gradio app in a real browser: Debian's chromium with a fake microphone (a WAV file) and fake camera,
fastrtc's WebRTC component to our handler, the real models behind it. Assertions read the page itself
(the conversation and the decision log it shows) and the requests the browser made (none may leave the
machine)."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.error
import urllib.request

import pytest

from audio.wavfile import read_audio
from tests.browser import chromium, write_microphone_wav
from tests.chat_server import threads_started_from_now
from tests.conftest import SAMPLE_QUESTION

pytestmark = pytest.mark.slow

LEAD_S = 8.0  # the fake microphone starts with the page's camera preview, before the call: lead with silence


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def gradio_app(assistant_models):
    from ui.gradio_app import GradioOptions, launch

    app, url, token = launch(assistant_models.new_session, GradioOptions(port=free_port(), token="test-token"),
                             block=False)
    yield app, url, token
    app.close()


async def text_of(page, selector: str) -> str:
    if selector.endswith("textarea"):
        return await page.input_value(selector)
    return await page.inner_text(selector)


async def wait_for_text(page, selector: str, predicate, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = await text_of(page, selector)
        if predicate(text):
            return text
        await asyncio.sleep(0.5)
    raise AssertionError(f"{selector} never showed what was expected within {timeout_s} s; it shows:\n{text}")


def test_the_app_asks_for_the_login(gradio_app):
    _, url, _ = gradio_app
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url + "config", timeout=10)
    assert refused.value.code == 401


async def test_spoken_question_answered_and_typed_message_interrupts(gradio_app, tmp_path):
    from ui.gradio_app import GRADIO_USER

    app, url, token = gradio_app
    session_threads = threads_started_from_now()

    question = read_audio(SAMPLE_QUESTION).convert(sample_rate=16000).mono_float32()
    wav = write_microphone_wav(tmp_path / "mic.wav", [(LEAD_S, question)], LEAD_S + 40)
    outside: list[str] = []
    async with chromium(wav) as browser:
        page = await browser.new_page()
        page.on("request", lambda r: outside.append(r.url) if r.url.startswith(("http", "ws"))
                and not r.url.startswith(url.rstrip("/")) else None)
        await page.goto(url)
        await page.fill("input[type=text]", GRADIO_USER)
        await page.fill("input[type=password]", token)
        await page.click("button:has-text('Login')")
        await page.wait_for_selector("#call button[aria-label='start stream']", state="attached", timeout=20000)
        await page.wait_for_function(  # the camera preview runs: the call can start
            "() => { const v = document.querySelector('#call video');"
            " return v && v.srcObject && v.srcObject.getTracks().some(t => t.readyState === 'live'); }",
            timeout=20000)
        await page.dispatch_event("#call button[aria-label='start stream']", "click")  # the footer covers it
        calls = app.assistant_call.handlers
        deadline = time.monotonic() + 20
        while not any(getattr(h, "session", None) for h in calls.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert calls, "the call never reached the server"
        # The spoken question (from the fake microphone) is answered, and the page shows both.
        chat = await wait_for_text(page, "#chat", lambda t: "paris" in t.lower(), 60)
        log = await text_of(page, "#decisions textarea")
        assert "capital of france" in chat.lower()
        assert "decision  <1> query" in log and "assistant ● speaking" in log
        # A typed message while the assistant speaks interrupts it like speech would.
        await page.fill("#typed textarea", "Tell me a long story about a brave little dragon.")
        await page.press("#typed textarea", "Enter")
        await wait_for_text(page, "#decisions textarea", lambda t: t.count("assistant ● speaking") >= 2, 40)
        await asyncio.sleep(1.0)
        await page.fill("#typed textarea", "What is two plus two?")
        await page.press("#typed textarea", "Enter")
        log = await wait_for_text(page, "#decisions textarea",
                                  lambda t: "What is two plus two?" in t and t.count("completed:") >= 2, 40)
        chat = await text_of(page, "#chat")
        sessions = [h.session for h in calls.values() if getattr(h, "session", None)]
        await page.close()  # close the call before the browser (fastrtc serves a limited number at once)
        # A closed tab ends its session: its model threads and memory must not outlive the call.
        deadline = time.monotonic() + 40
        while (not all(s.closed for s in sessions) or session_threads()) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert sessions and all(s.closed for s in sessions), "the closed page's session is still open"
        assert not session_threads(), f"the closed page's session left threads running: {session_threads()}"
    print(log)
    assert "interrupted after" in log and "decision  <3> typed" in log
    assert "[interrupted]" in chat and "two plus two" in chat.lower()
    assert not outside, f"the page reached outside this machine: {outside}"
