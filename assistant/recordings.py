"""The shared evaluation recordings (``../shared/data/audio``): find the folder and read its manifest."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "audio"


@dataclass(frozen=True)
class Recording:
    path: Path
    group: str  # e.g. "speech/cmu_arctic", "noise/room_tone"
    duration_s: float
    transcript: str

    @property
    def kind(self) -> str:  # "speech", "noisy_speech" or "noise"
        return self.group.split("/", 1)[0]


def find_data_dir(data_dir: str | Path | None = None) -> Path | None:
    """The recordings folder if it exists (``data_dir`` or the default beside the checkout), else None."""
    candidate = Path(data_dir) if data_dir else DEFAULT_DATA_DIR
    return candidate if (candidate / "MANIFEST.tsv").is_file() else None


def load_manifest(data_dir: str | Path) -> list[Recording]:
    data_dir = Path(data_dir)
    with open(data_dir / "MANIFEST.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [Recording(data_dir / row["path"], row["group"], float(row["duration_s"]), row["transcript"] or "")
            for row in rows]


def english_transcribed(recordings: list[Recording], kind: str = "speech",
                        max_seconds: float = 30.0) -> list[Recording]:
    """Recordings of one kind with a plain single-speaker English transcript, short enough for one window."""
    foreign = ("leopard_test_de", "leopard_test_es", "leopard_test_fr")
    return [r for r in recordings if r.kind == kind and r.transcript and r.duration_s <= max_seconds
            and ":" not in r.transcript and " / " not in r.transcript
            and not any(name in r.path.name for name in foreign)]
