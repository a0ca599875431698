"""The scenario library on the real bundled models: every scenario runs on the virtual clock (model work is
charged at its measured time; idle time and playback are skipped), and two run in real time as a check that
both clocks tell the same story. A scenario marked ``known_failure`` may fail (the eval reports it); any
other failed expectation fails CI. Scenarios that need the shared recordings skip when the folder is absent.
"""

from __future__ import annotations

import pytest

from assistant.recordings import find_data_dir
from assistant.replay.report import status_lines
from assistant.replay.runner import ReplayOptions, run_scenarios
from assistant.replay.scenario import LIBRARY_DIR, load_scenarios

pytestmark = pytest.mark.slow

REAL_TIME = ("plain_turn_capital", "barge_in_mid")


@pytest.fixture(scope="module")
def library():
    return load_scenarios([LIBRARY_DIR], find_data_dir())


@pytest.mark.timeout(1500)
async def test_library_on_the_virtual_clock(assistant_models, library, tmp_path):
    options = ReplayOptions(out_dir=tmp_path, clock="virtual", data_dir=find_data_dir(), progress=False)
    results = await run_scenarios(assistant_models, library, options)
    print("\n" + "\n".join(status_lines(results)))
    failed = [r.scenario.name for r in results if r.failed]
    assert not failed, f"scenarios failed: {failed}"
    ran = [r for r in results if r.status != "skipped"]
    assert all((r.out_dir / name).is_file() for r in ran
               for name in ("events.jsonl", "audio.wav", "timeline.png", "metrics.json"))
    skipped = [r for r in results if r.status == "skipped"]
    assert all("shared recordings" in r.skip_reason for r in skipped)


@pytest.mark.timeout(300)
async def test_a_few_scenarios_in_real_time(assistant_models, library, tmp_path):
    chosen = [s for s in library if s.name in REAL_TIME]
    options = ReplayOptions(out_dir=tmp_path, clock="real", data_dir=find_data_dir(), progress=False)
    results = await run_scenarios(assistant_models, chosen, options)
    print("\n" + "\n".join(status_lines(results)))
    assert [r.clock for r in results] == ["real"] * len(REAL_TIME)
    assert not [r.scenario.name for r in results if r.failed]
