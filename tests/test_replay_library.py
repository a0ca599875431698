"""The scenario library on the real bundled models: every scenario runs on the virtual clock (model work is
charged at its measured time; idle time and playback are skipped), and two run in real time as a check that
both clocks tell the same story. A scenario marked ``known_failure`` may fail (the eval reports it); any
other scenario must pass. Scenarios that need the shared recordings skip when the folder is absent.

The tiny models' decisions depend on timing (on a loaded machine the ASR is slower, so the decider sees more
trailing silence), so a failed scenario is run once more: one that fails twice fails the test, and those
that passed only on the second try are printed.
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


async def run_with_one_retry(models, scenarios, options):
    results = await run_scenarios(models, scenarios, options)
    print("\n" + "\n".join(status_lines(results)))
    failed = [r.scenario for r in results if r.failed]
    if not failed:
        return results, []
    retried = await run_scenarios(models, failed, options)
    print("second try:\n" + "\n".join(status_lines(retried)))
    return results, retried


@pytest.mark.timeout(1800)
async def test_library_on_the_virtual_clock(assistant_models, library, tmp_path):
    options = ReplayOptions(out_dir=tmp_path, clock="virtual", data_dir=find_data_dir(), progress=False)
    results, retried = await run_with_one_retry(assistant_models, library, options)
    failed_twice = [r.scenario.name for r in retried if r.failed]
    assert not failed_twice, f"scenarios failed twice: {failed_twice}"
    print(f"passed on the second try: {[r.scenario.name for r in retried]}")
    ran = [r for r in results if r.status != "skipped"]
    assert all((r.out_dir / name).is_file() for r in ran
               for name in ("events.jsonl", "audio.wav", "timeline.png", "metrics.json"))
    skipped = [r for r in results if r.status == "skipped"]
    assert all("shared recordings" in r.skip_reason for r in skipped)


@pytest.mark.timeout(400)
async def test_a_few_scenarios_in_real_time(assistant_models, library, tmp_path):
    chosen = [s for s in library if s.name in REAL_TIME]
    options = ReplayOptions(out_dir=tmp_path, clock="real", data_dir=find_data_dir(), progress=False)
    results, retried = await run_with_one_retry(assistant_models, chosen, options)
    assert [r.clock for r in results] == ["real"] * len(REAL_TIME)
    assert not [r.scenario.name for r in retried if r.failed]
    barge_in = next(r for r in results + retried if r.scenario.name == "barge_in_mid" and not r.failed)
    assert barge_in.measures.interrupt_stops_s and barge_in.measures.interrupt_stops_s[0] < 0.6
