"""Shared fixtures. Each real model is loaded once per test session (CI has 2 cores and a time limit)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_QUESTION = REPO_ROOT / "assistant" / "samples" / "question.wav"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    from assistant.recordings import find_data_dir

    found = find_data_dir()
    if found is None:
        pytest.skip("the shared recordings (../shared/data/audio) are not beside this checkout")
    return found


@pytest.fixture(scope="session")
def config():
    from assistant.config import AssistantConfig

    return AssistantConfig()


@pytest.fixture(scope="session")
def stack(config):
    from assistant.backends import load_stack

    return load_stack(config, progress=False)


@pytest.fixture(scope="session")
def recognizer(stack):
    return stack.recognizer


@pytest.fixture(scope="session")
def synthesizer(stack):
    return stack.synthesizer


@pytest.fixture(scope="session")
def user_voice(stack):
    """The voice that speaks the tests' scripted user lines: Piper without its random variation, so a line
    sounds the same on every run and a test cannot pass or fail by the luck of one rendering."""
    return stack.synthesizer.steady()


@pytest.fixture(scope="session")
def language_model(stack):
    return stack.language_model


@pytest.fixture(scope="session")
def assistant_models(config, stack):
    """The assistant wiring (state decider, session factory) over the session's one copy of the models."""
    from assistant.session import AssistantModels

    return AssistantModels(config, stack=stack)


@pytest.fixture
async def make_server():
    """Starts chat servers on 127.0.0.1 (a free port; fake sessions unless ``new_session=`` is given); stops
    them after."""
    from tests.chat_server import FakeSessionFactory
    from ui.webrtc.options import ServerOptions
    from ui.webrtc.server import ChatServer

    servers = []

    async def start(new_session=None, **options) -> ChatServer:
        server = ChatServer(new_session or FakeSessionFactory(), ServerOptions(port=0, **options))
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()
