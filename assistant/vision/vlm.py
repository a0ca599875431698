"""A vision-language model through transformers: the frame's pixels go to the model, which writes the
description the answering LLM sees. Any model id or local folder that ``AutoModelForImageTextToText``
loads (LLaVA, Idefics3/SmolVLM, Qwen2-VL, ...), on the device it is given. Weights come from the local
disk or the hub cache: nothing is downloaded at run time when ``HF_HUB_OFFLINE`` is set.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

DEFAULT_PROMPT = "Describe what the camera shows in one short sentence. Read out any visible text exactly."


class TransformersVisionDescriber:
    def __init__(self, model: str | Path, device: str, dtype: str = "auto",
                 prompt: str = DEFAULT_PROMPT, max_new_tokens: int = 48) -> None:
        """``device``: ``cpu``, ``cuda`` or ``cuda:N``."""
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        source = str(model)
        local = Path(source).exists()
        self.device = device
        if dtype == "auto":
            torch_dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        else:
            torch_dtype = getattr(torch, dtype)
        self.name = f"transformers:{Path(source).name if local else source}"
        self.prompt, self.max_new_tokens = prompt, max_new_tokens
        self.processor = AutoProcessor.from_pretrained(source, local_files_only=local)
        # transformers' decorated PreTrainedModel.to() is typed as taking the model, not a device
        self.model = AutoModelForImageTextToText.from_pretrained(source, local_files_only=local,
                                                                 dtype=torch_dtype).to(self.device)  # type: ignore[arg-type]
        self.model.eval()
        self._lock = threading.Lock()  # one generation at a time on the shared weights

    def _prompt_text(self) -> str:
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": self.prompt}]}]
        if getattr(self.processor, "chat_template", None):
            return self.processor.apply_chat_template(messages, add_generation_prompt=True)
        token = getattr(self.processor, "image_token", None) or "<image>"
        return f"{token}\n{self.prompt}"

    def describe(self, frame: np.ndarray) -> str:
        import torch
        from PIL import Image

        image = Image.fromarray(frame)
        with self._lock, torch.inference_mode():
            inputs = self.processor(images=[image], text=self._prompt_text(), return_tensors="pt")
            inputs = {key: value.to(self.device) for key, value in inputs.items()}
            if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
                inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
            output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)[0].strip()
