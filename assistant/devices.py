"""Which device a model runs on: the one place that turns a configured device into a concrete one."""

from __future__ import annotations

import re

from assistant.config import ConfigError

_CONCRETE = re.compile(r"cpu|cuda(:\d+)?")


def pick_device(requested: str, option: str = "device") -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cpu``, ``cuda`` and ``cuda:N`` as given.

    ``option`` names the setting in the error for anything else (e.g. ``asr.device``).
    """
    device = requested.strip().lower()
    if device == "auto":
        return "cuda" if _torch_sees_a_gpu() else "cpu"
    if _CONCRETE.fullmatch(device):
        return device
    raise ConfigError(f"{option} {requested!r}: choose auto, cpu, cuda or cuda:N (N: the GPU's index)")


def _torch_sees_a_gpu() -> bool:
    try:
        import torch
    except ImportError:  # torch is optional for the default CPU models
        return False
    return torch.cuda.is_available()
