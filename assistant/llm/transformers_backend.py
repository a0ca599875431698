"""Any transformers causal LM (a hub id, a local folder, or a GGUF file), on the device it is given."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from duplex.models import ChatMessage, GenerationOptions


class TransformersModel:
    def __init__(self, model: str | Path, device: str, dtype: str = "auto") -> None:
        """``device``: ``cpu``, ``cuda`` or ``cuda:N``."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = str(model)
        source, gguf_file = model, None
        if model.endswith(".gguf"):  # transformers loads a GGUF from its folder plus the file name
            path = Path(model)
            if not path.is_file():
                raise FileNotFoundError(f"GGUF model not found: {path}")
            source, gguf_file = str(path.parent), path.name
        local = Path(source).exists()
        self.device = device
        if dtype == "auto":  # GGUF weights are dequantised; fp32 on CPU, bf16 on GPU
            torch_dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        else:
            torch_dtype = getattr(torch, dtype)
        self.name = f"transformers:{Path(model).name if local else model}"
        self.tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file, local_files_only=local)
        # transformers' decorated PreTrainedModel.to() is typed as taking the model, not a device
        self.model = AutoModelForCausalLM.from_pretrained(
            source, gguf_file=gguf_file, local_files_only=local, dtype=torch_dtype).to(self.device)  # type: ignore[arg-type]
        self.model.eval()
        self.lock = threading.Lock()

    def prepare(self, messages: Sequence[ChatMessage], cancel: threading.Event | None = None) -> None:
        pass  # no prompt cache kept between requests here

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def encode_chat(self, messages: Sequence[ChatMessage]):
        encoded = self.tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in messages], add_generation_prompt=True,
            return_tensors="pt", return_dict=True)
        # return_dict=True gives a BatchEncoding; transformers annotates the union over all the flags
        return {key: value.to(self.device) for key, value in encoded.items()}  # type: ignore[union-attr]

    def stream_chat(self, messages: Sequence[ChatMessage], options: GenerationOptions,
                    cancel: threading.Event | None = None) -> Iterator[str]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        stop_now = cancel or threading.Event()
        local_stop = threading.Event()

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs) -> bool:
                return stop_now.is_set() or local_stop.is_set()

        with self.lock:
            inputs = self.encode_chat(messages)
            streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True,
                                            timeout=120.0)
            sampling = options.temperature > 0
            kwargs = dict(inputs, max_new_tokens=options.max_tokens, do_sample=sampling, streamer=streamer,
                          stopping_criteria=StoppingCriteriaList([_Cancelled()]),
                          pad_token_id=self.tokenizer.eos_token_id)
            if sampling:
                kwargs.update(temperature=options.temperature, top_p=options.top_p)
            if options.repeat_penalty != 1.0:
                kwargs.update(repetition_penalty=options.repeat_penalty)
            errors: list[BaseException] = []

            def generate() -> None:
                try:
                    self.model.generate(**kwargs)
                except BaseException as error:  # surfaced in the consuming thread below
                    errors.append(error)
                    streamer.end()

            thread = threading.Thread(target=generate, name="transformers-generate", daemon=True)
            thread.start()
            text = ""
            try:
                for piece in streamer:
                    if stop_now.is_set():
                        break
                    if not piece:
                        continue
                    text += piece
                    hit = next((s for s in options.stop if s in text), None)
                    if hit:
                        yield piece[: len(piece) - (len(text) - text.index(hit))]
                        break
                    yield piece
            finally:
                local_stop.set()
                thread.join()
            if errors:
                raise errors[0]
