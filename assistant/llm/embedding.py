"""The LLM's hidden state for a transcript, for the state decision's trained head (``duplex.state``).

VITA has the LLM emit a state token as its first output token. With SmolLM2-135M a prompt for it calls
everything a query, so instead the hidden state at the position where the assistant's first token would
be produced (the last token of a ChatML prompt ending in ``<|im_start|>assistant\\n``) feeds a linear head
trained by ``duplex.state.train`` (``assistant train-state``). llama.cpp gives that state with ``embedding=True``
and LAST pooling. The prompt's special tokens are parsed as tokens (``Llama.embed`` would tokenize them as text).

Cost on the 2-core VM, one thread: ~80-150 ms per transcript (about 8 ms per token; see docs/state-decision.md).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

SYSTEM_PROMPT = "You are a voice assistant. You hear everything said in the room."
PROMPT_TEMPLATE = ("<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{text}<|im_end|>\n"
                   "<|im_start|>assistant\n")


class LlamaCppEmbedder:
    """Last-token hidden state of a GGUF chat model (default: the bundled SmolLM2-135M-Instruct).

    Its own ``Llama`` object in embedding mode (the weights file is memory-mapped, so a second object
    beside the chat model costs little memory). ``name`` ties trained weights to model + prompt + pooling.
    """

    def __init__(self, model_path: str | Path | None = None, threads: int = 1, context_tokens: int = 512) -> None:
        try:
            import llama_cpp
        except ImportError:
            raise ImportError("the LLM embedding needs llama-cpp-python: pip install 'assistant[llama]'") from None
        if model_path is None:
            from assistant.bundled import smollm2_gguf

            model_path = smollm2_gguf()
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"GGUF model not found: {path}")
        self._llama_cpp = llama_cpp
        self.llama = llama_cpp.Llama(model_path=str(path), embedding=True,
                                     pooling_type=llama_cpp.LLAMA_POOLING_TYPE_LAST, n_ctx=context_tokens,
                                     n_batch=context_tokens, n_ubatch=context_tokens, n_threads=threads,
                                     n_threads_batch=threads, verbose=False)
        self.name = f"llama.cpp-last-token:{path.name}:chatml-v1"
        self.dimension = int(self.llama.n_embd())
        self._max_tokens = context_tokens
        self._lock = threading.Lock()
        self._prefix_tokens: list[int] | None = None

    def prompt(self, text: str) -> str:
        return PROMPT_TEMPLATE.format(system=SYSTEM_PROMPT, text=text.strip())

    def _decode(self, tokens: list[int], start: int) -> None:
        batch = self.llama._batch
        batch.reset()
        for i, token in enumerate(tokens):
            batch.batch.token[i] = token
            batch.batch.pos[i] = start + i
            batch.batch.seq_id[i][0] = 0
            batch.batch.n_seq_id[i] = 1
            batch.batch.logits[i] = True  # embedding mode wants every token as an output
        batch.batch.n_tokens = len(tokens)
        self.llama._ctx.decode(batch)

    def embed(self, text: str) -> np.ndarray:
        """Hidden state at the assistant turn's first position. The fixed prompt prefix (system message and
        ``<|im_start|>user``) stays in the KV cache, so only the transcript's tokens and the five closing
        template tokens are evaluated per call; the result equals evaluating the whole prompt."""
        suffix = PROMPT_TEMPLATE.split("{text}", 1)[1]
        with self._lock:
            if self._prefix_tokens is None:
                prefix = PROMPT_TEMPLATE.split("{text}", 1)[0].format(system=SYSTEM_PROMPT)
                self._prefix_tokens = self.llama.tokenize(prefix.encode("utf-8"), add_bos=True, special=True)
                self.llama._ctx.kv_cache_clear()
                self._decode(self._prefix_tokens, 0)
            start = len(self._prefix_tokens)
            closing = self.llama.tokenize(suffix.encode("utf-8"), add_bos=False, special=True)
            tokens = self.llama.tokenize(text.strip().encode("utf-8"), add_bos=False, special=False) + closing
            room = self._max_tokens - start
            if len(tokens) > room:  # keep the end: the assistant-turn opening must be the last token
                tokens = tokens[-room:]
            self.llama._ctx.kv_cache_seq_rm(0, start, -1)
            self._decode(tokens, start)
            pointer = self._llama_cpp.llama_get_embeddings_seq(self.llama._ctx.ctx, 0)
            return np.array(pointer[:self.dimension], dtype=np.float32)
