"""GGUF models on llama.cpp: the fast CPU path (and GPU offload when built with CUDA).

The prompt is read ahead of generation in small blocks (``prefill_tokens``), so that a long prompt shows
progress (an empty piece per block: the worker's stall watch sees the model working, not hung) and a
cancelled answer stops within one block instead of reading the whole prompt first while it holds the model.
llama.cpp keeps what it read: the generation call that follows finds the prompt cached and starts at once.
``prepare`` reads the next prompt's beginning in idle time (after a turn, or after the history was trimmed),
and gives way to a real request within one block.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, cast

from duplex.models import ChatMessage, GenerationOptions

if TYPE_CHECKING:
    from llama_cpp.llama_types import CreateChatCompletionStreamResponse

LOCK_POLL_S = 0.25  # how often a request waiting for the model looks at its cancel flag
PROGRESS_FRESH_S = 5.0  # a waiting request reports progress while the model's holder made some this recently


class _CacheOptions(TypedDict, total=False):
    type_k: int
    type_v: int
    flash_attn: bool


class LlamaCppModel:
    def __init__(self, model_path: str | Path, context_tokens: int = 2048, threads: int | None = None,
                 gpu_layers: int = 0, kv_cache_f32: bool = True, prefill_tokens: int = 128) -> None:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ImportError("the llama.cpp backend needs llama-cpp-python: pip install 'assistant[llama]'") from None
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"GGUF model not found: {path}")
        self.name = f"llama.cpp:{path.name}"
        self.model_path = path
        # An f32 KV cache: with llama.cpp's default f16 cache, batched prompt evaluation tipped SmolLM2-135M's
        # greedy first token ("What is the capital of France?" -> "La femme de France, ..."), while an f32
        # cache matches transformers' fp32 output. Same speed here; twice the (small) cache memory.
        cache: _CacheOptions = {"type_k": 0, "type_v": 0, "flash_attn": False} if kv_cache_f32 else {}
        self.llama = Llama(model_path=str(path), n_ctx=context_tokens, n_threads=threads or os.cpu_count(),
                           n_gpu_layers=gpu_layers, verbose=False, **cache)
        self.context_tokens = context_tokens
        self.prefill_tokens = prefill_tokens
        self._formatter = self._chat_formatter()
        # One llama.cpp context serves one request at a time; workers (and calls) sharing the model queue here.
        self.lock = threading.Lock()
        self._progress_at = 0.0  # monotonic time of the holder's last block or token
        self._waiting = 0  # requests queued for the lock: idle-time reading gives way to them
        self._waiting_lock = threading.Lock()

    def _chat_formatter(self):
        """The formatter llama-cpp-python itself builds from the file's chat template (None: the file has none,
        and prompts are not read ahead)."""
        from llama_cpp import llama_chat_format

        template = self.llama.metadata.get("tokenizer.chat_template")
        if template is None or self.llama.chat_handler is not None or self.llama.chat_format != "chat_template.default":
            return None
        eos, bos = self.llama.token_eos(), self.llama.token_bos()
        text = self.llama._model.token_get_text
        return llama_chat_format.Jinja2ChatFormatter(template=template, eos_token=text(eos) if eos != -1 else "",
                                                     bos_token=text(bos) if bos != -1 else "", stop_token_ids=[eos])

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=False))

    def prompt_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The tokens llama-cpp-python's chat completion will read for ``messages`` (same template, same flags)."""
        if self._formatter is None:
            raise RuntimeError(f"{self.name} has no chat template in the file to read prompts ahead with")
        result = self._formatter(messages=[{"role": m.role, "content": m.content} for m in messages])
        return self.llama.tokenize(result.prompt.encode("utf-8", "replace"), add_bos=not result.added_special,
                                   special=True)

    def stream_chat(self, messages: Sequence[ChatMessage], options: GenerationOptions,
                    cancel: threading.Event | None = None) -> Iterator[str]:
        cancel = cancel or threading.Event()
        self._queued(+1)
        try:
            while not self.lock.acquire(timeout=LOCK_POLL_S):
                if cancel.is_set():
                    return
                if time.monotonic() - self._progress_at < PROGRESS_FRESH_S:
                    yield ""  # queued behind a request that is moving: progress, not a hang
        finally:
            self._queued(-1)
        try:
            self._progress_at = time.monotonic()
            if self._formatter is not None:
                for _ in self._read_prompt(self.prompt_tokens(messages), options.max_tokens, cancel.is_set):
                    yield ""
                if cancel.is_set():
                    return
            # The annotation covers stream=False too (a whole response); with stream=True it is a generator.
            stream = cast("Generator[CreateChatCompletionStreamResponse, None, None]",
                          self.llama.create_chat_completion(
                              # llama_cpp types a message per role literal; a union of roles matches none of them
                              messages=[{"role": m.role, "content": m.content}  # type: ignore[misc]
                                        for m in messages], stream=True,
                              max_tokens=options.max_tokens, temperature=options.temperature, top_p=options.top_p,
                              repeat_penalty=options.repeat_penalty,
                              stop=list(options.stop) or None))
            try:
                for chunk in stream:
                    self._progress_at = time.monotonic()
                    if cancel.is_set():
                        break
                    piece = chunk["choices"][0]["delta"].get("content")
                    if isinstance(piece, str) and piece:
                        yield piece
            finally:
                stream.close()
        finally:
            self.lock.release()

    def _queued(self, delta: int) -> None:
        with self._waiting_lock:
            self._waiting += delta

    def prepare(self, messages: Sequence[ChatMessage], cancel: threading.Event | None = None) -> None:
        """Read ``messages``' prompt into the cache while the model is idle; stops as soon as a request waits."""
        if self._formatter is None or not self.lock.acquire(blocking=False):
            return
        try:
            def give_way() -> bool:
                return self._waiting > 0 or (cancel is not None and cancel.is_set())

            for _ in self._read_prompt(self.prompt_tokens(messages), 0, give_way):
                pass
        finally:
            self.lock.release()

    def _read_prompt(self, tokens: list[int], max_tokens: int, should_stop: Callable[[], bool]) -> Iterator[int]:
        """Evaluate all but the prompt's last token, block by block, after what the cache already holds."""
        if len(tokens) + max_tokens > self.context_tokens:
            raise ValueError(f"the prompt ({len(tokens)} tokens) and the answer ({max_tokens}) do not fit the "
                             f"model's context of {self.context_tokens} tokens")
        llama = self.llama
        llama.n_tokens = llama.longest_token_prefix(llama._input_ids.tolist(), tokens[:-1])
        for start in range(llama.n_tokens, len(tokens) - 1, self.prefill_tokens):
            if should_stop():
                return
            llama.eval(tokens[start:min(start + self.prefill_tokens, len(tokens) - 1)])
            self._progress_at = time.monotonic()
            yield start

