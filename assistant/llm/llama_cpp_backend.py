"""GGUF models on llama.cpp: the fast CPU path (and GPU offload when built with CUDA)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from duplex.llm import ChatMessage, GenerationOptions


class LlamaCppModel:
    def __init__(self, model_path: str | Path, context_tokens: int = 2048, threads: int | None = None,
                 gpu_layers: int = 0, kv_cache_f32: bool = True) -> None:
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
        cache = {"type_k": 0, "type_v": 0, "flash_attn": False} if kv_cache_f32 else {}
        self.llama = Llama(model_path=str(path), n_ctx=context_tokens, n_threads=threads or os.cpu_count(),
                           n_gpu_layers=gpu_layers, verbose=False, **cache)
        # One llama.cpp context serves one request at a time; workers sharing the model queue here.
        self.lock = threading.Lock()

    def stream_chat(self, messages: Sequence[ChatMessage], options: GenerationOptions,
                    cancel: threading.Event | None = None) -> Iterator[str]:
        with self.lock:
            stream = self.llama.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in messages], stream=True,
                max_tokens=options.max_tokens, temperature=options.temperature, top_p=options.top_p,
                stop=list(options.stop) or None)
            try:
                for chunk in stream:
                    if cancel is not None and cancel.is_set():
                        break
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            finally:
                stream.close()
