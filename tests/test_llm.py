"""The language model backends, on the bundled SmolLM2 GGUF: llama.cpp, transformers and an
OpenAI-compatible server (llama.cpp's own server, started for real on 127.0.0.1)."""

import socket
import subprocess
import sys
import threading
import time

import pytest

from assistant import bundled
from assistant.llm.openai_backend import OpenAICompatibleModel
from duplex.models import ChatMessage, GenerationOptions

pytestmark = pytest.mark.slow

QUESTION = [ChatMessage("system", "You are a helpful assistant."),
            ChatMessage("user", "What is the capital of France?")]


def test_llama_cpp_streams_tokens(language_model):
    pieces = [p for p in language_model.stream_chat(QUESTION, GenerationOptions(max_tokens=40)) if p]
    assert len(pieces) > 3, pieces
    assert "paris" in "".join(pieces).lower()


def test_llama_cpp_stops_when_cancelled(language_model):
    cancel = threading.Event()
    pieces = []
    for piece in language_model.stream_chat(QUESTION, GenerationOptions(max_tokens=200), cancel):
        if not piece:
            continue  # progress while the prompt is read
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.set()
    assert len(pieces) == 3
    # the shared model is free again for the next request
    assert list(language_model.stream_chat(QUESTION, GenerationOptions(max_tokens=5)))


def long_history(turns: int = 25) -> list[ChatMessage]:
    messages = [ChatMessage("system", "You are a helpful assistant.")]
    for i in range(turns):
        messages += [ChatMessage("user", f"Question {i}: what is {i} plus {i + 1}? Tell me about number {i}."),
                     ChatMessage("assistant", f"{i} plus {i + 1} is {2 * i + 1}. It is a fine number to add.")]
    return messages


def blocks_read(pieces: list[str]) -> int:
    """The "still working" pieces before the first word: one per block of prompt read."""
    return next((i for i, piece in enumerate(pieces) if piece), len(pieces))


def test_llama_cpp_counts_real_tokens(language_model):
    assert language_model.count_tokens("What is the capital of France?") == 7
    assert language_model.count_tokens("中文" * 100) > 100  # not four characters a token
    assert language_model.count_tokens("broken \ud800 surrogate") > 0  # no UnicodeEncodeError


def test_llama_cpp_reads_a_long_prompt_in_blocks_and_stops_reading_when_cancelled(language_model):
    language_model.llama.reset()
    cancel = threading.Event()
    pieces = []
    for piece in language_model.stream_chat(long_history(), GenerationOptions(max_tokens=20), cancel):
        pieces.append(piece)
        cancel.set()  # at the first block: the rest of the prompt is not read
    assert pieces == [""]
    assert language_model.lock.acquire(blocking=False)  # nothing holds the shared model
    language_model.lock.release()


def test_llama_cpp_prepare_reads_the_history_ahead_so_the_next_answer_reads_only_the_question(language_model):
    history = long_history()
    question = ChatMessage("user", "And what is 2 plus 2?")
    language_model.llama.reset()
    cold = list(language_model.stream_chat([*history[:-2], question], GenerationOptions(max_tokens=8)))
    language_model.llama.reset()
    language_model.prepare(history)
    warm = list(language_model.stream_chat([*history, question], GenerationOptions(max_tokens=8)))
    assert blocks_read(cold) >= 5 and blocks_read(warm) <= 1, (blocks_read(cold), blocks_read(warm))
    assert "".join(warm).strip()


LONGER = [ChatMessage("system", "You are a helpful assistant."),
          ChatMessage("user", "Tell me about the moon and the tides.")]


def test_a_repeat_penalty_reaches_both_backends_decoding(language_model, transformers_model):
    """Greedy decoding is deterministic: the same prompt with a strong penalty on words already said (the
    moon, the tides, "the") must come out otherwise."""
    for model in (language_model, transformers_model):
        plain = "".join(model.stream_chat(LONGER, GenerationOptions(max_tokens=40)))
        again = "".join(model.stream_chat(LONGER, GenerationOptions(max_tokens=40)))
        penalised = "".join(model.stream_chat(LONGER, GenerationOptions(max_tokens=40, repeat_penalty=2.0)))
        assert plain == again and penalised != plain, (model, plain, penalised)


@pytest.fixture(scope="module")
def transformers_model():
    from assistant.llm.transformers_backend import TransformersModel

    return TransformersModel(bundled.smollm2_gguf(), device="cpu")


def test_transformers_loads_the_same_gguf_and_streams(transformers_model, language_model):
    options = GenerationOptions(max_tokens=12)
    pieces = list(transformers_model.stream_chat(QUESTION, options))
    assert len(pieces) > 2
    text = "".join(pieces)
    assert "paris" in text.lower(), text
    reference = "".join(language_model.stream_chat(QUESTION, options))
    print(f"\ntransformers: {text!r}\nllama.cpp:    {reference!r}")


def test_transformers_stops_when_cancelled(transformers_model):
    cancel = threading.Event()
    pieces = []
    for piece in transformers_model.stream_chat(QUESTION, GenerationOptions(max_tokens=200), cancel):
        pieces.append(piece)
        if len(pieces) == 2:
            cancel.set()
    assert len(pieces) == 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    pytest.importorskip("uvicorn", reason="llama-cpp-python[server] is not installed")
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    log = open(log_path, "wb")  # a file, not a pipe: the server's load log would fill a pipe and block it
    process = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(bundled.smollm2_gguf()),
                                "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
                                "--type_k", "0", "--type_v", "0", "--flash_attn", "false"],
                               stdout=log, stderr=log)
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            pytest.fail(f"llama.cpp server exited: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                log_tail = log_path.read_text(errors='replace')[-2000:]
                pytest.fail(f"llama.cpp server did not listen within 120 s: {log_tail}")
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}/v1"
    process.terminate()
    process.wait(timeout=10)
    log.close()


def test_openai_compatible_client_streams_from_a_real_server(llama_server):
    model = OpenAICompatibleModel(llama_server, "smollm2", api_key="")
    pieces = list(model.stream_chat(QUESTION, GenerationOptions(max_tokens=30)))
    assert len(pieces) > 3
    assert "paris" in "".join(pieces).lower()


def test_openai_compatible_client_reports_an_unreachable_server():
    model = OpenAICompatibleModel(f"http://127.0.0.1:{free_port()}/v1", "m", timeout_s=2)
    with pytest.raises(ConnectionError, match="cannot reach"):
        list(model.stream_chat(QUESTION, GenerationOptions()))
