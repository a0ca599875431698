"""A client for any OpenAI-compatible chat server (vLLM, llama.cpp's server, Ollama, ...), streaming."""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence

from duplex.models import ChatMessage, GenerationOptions, approximate_tokens


class OpenAICompatibleModel:
    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.timeout_s = timeout_s
        self.name = f"openai:{model}@{self.base_url}"

    def prepare(self, messages: Sequence[ChatMessage], cancel: threading.Event | None = None) -> None:
        pass  # no prompt cache kept between requests here

    def count_tokens(self, text: str) -> int:
        return approximate_tokens(text)  # the server's tokenizer is not at hand

    def stream_chat(self, messages: Sequence[ChatMessage], options: GenerationOptions,
                    cancel: threading.Event | None = None) -> Iterator[str]:
        body = {"model": self.model, "stream": True, "max_tokens": options.max_tokens,
                "temperature": options.temperature, "top_p": options.top_p,
                "messages": [{"role": m.role, "content": m.content} for m in messages]}
        if options.stop:
            body["stop"] = list(options.stop)
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(f"{self.base_url}/chat/completions", json.dumps(body).encode(),
                                         headers, method="POST")
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout_s)
        except urllib.error.HTTPError as error:
            detail = error.read(500).decode("utf-8", "replace")
            raise RuntimeError(f"{self.base_url} answered HTTP {error.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as error:
            raise ConnectionError(f"cannot reach the OpenAI-compatible server at {self.base_url}: {error}") from None
        with response:
            for raw in response:
                if cancel is not None and cancel.is_set():
                    return
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue  # SSE comments and keep-alives
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    event = json.loads(data)
                except json.JSONDecodeError:
                    raise RuntimeError(f"{self.base_url} sent a malformed stream event: {data[:200]!r}") from None
                if "error" in event:
                    raise RuntimeError(f"{self.base_url} reported an error: {event['error']}")
                for choice in event.get("choices", []):
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        yield piece
