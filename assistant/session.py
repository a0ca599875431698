"""Wire loaded models, the state decider and options into a duplex session for any transport."""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

from assistant.backends import ModelStack, load_describer, load_stack, load_vad
from assistant.config import AssistantConfig, ConfigError
from duplex.bus import EventLog
from duplex.clock import Clock
from duplex.models import StateDecider, WorkerModels
from duplex.session import DuplexSession


def worker_models(stack: ModelStack) -> WorkerModels:
    return WorkerModels(stack.recognizer, stack.language_model, stack.synthesizer)


def make_state_decider(config: AssistantConfig) -> StateDecider:
    """The trained query-vs-noise head, on SmolLM2's hidden state too when llama.cpp is there to give it."""
    from duplex.state import LearnedStateDecider

    embedder = None
    if config.state_embedder == "smollm2" or (config.state_embedder == "auto" and find_spec("llama_cpp")):
        from assistant.llm.embedding import LlamaCppEmbedder

        embedder = LlamaCppEmbedder(threads=os.cpu_count() or 1)  # 85 ms per decision on 2 threads, 160 on one
    elif config.state_embedder not in ("auto", "none"):
        raise ConfigError(f"state_embedder must be auto, smollm2 or none, not {config.state_embedder!r}")
    return LearnedStateDecider(embedder=embedder, speaking_threshold=config.state_speaking_threshold)


class AssistantModels:
    """Everything loaded once per process and shared by its sessions (each session has its own state)."""

    def __init__(self, config: AssistantConfig, progress: bool = True, stack: ModelStack | None = None) -> None:
        """``stack``: models already loaded for ``config`` (tests share one copy across transports)."""
        self.config = config
        self.stack = stack or load_stack(config, progress=progress)
        self.second_stack = load_stack(config, progress=progress) if config.separate_worker_models else None
        self.decider = make_state_decider(config)
        self.describer = load_describer(config.vision)  # the camera's frames into words (None: no vision)

    def new_session(self, clock: Clock | None = None, event_log_path: str | Path | None = None,
                    output_sample_rate: int | None = None, keep_event_records: bool = True) -> DuplexSession:
        """``keep_event_records=False`` for live calls: hours of events would pile up in memory (the file keeps
        them)."""
        config = self.config
        options = config.duplex
        if output_sample_rate is not None:
            from dataclasses import replace

            options = replace(options, output_sample_rate=output_sample_rate)
        shared = worker_models(self.stack)
        models: WorkerModels | tuple[WorkerModels, WorkerModels] = shared
        if self.second_stack is not None:
            models = (shared, worker_models(self.second_stack))
        return DuplexSession(
            models, self.decider, lambda: load_vad(config.vad), options, system_prompt=config.llm.system_prompt,
            generation=config.llm.generation(),
            clock=clock, event_log=EventLog(event_log_path, keep=keep_event_records), vision=self.describer)
