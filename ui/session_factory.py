"""What every transport is given to make its sessions: a factory, so that ``ui/`` never learns how models
are loaded or configured (only the CLI knows both sides)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from duplex.session import DuplexSession


class SessionFactory(Protocol):
    def __call__(self, *, output_sample_rate: int, event_log_path: Path | None = None,
                 keep_event_records: bool = True) -> DuplexSession:
        """A new session, not yet started, whose voice comes out at ``output_sample_rate`` Hz.

        ``event_log_path``: append its events there as JSONL. ``keep_event_records=False`` for live calls:
        hours of events would pile up in memory (the file keeps them)."""
        ...
