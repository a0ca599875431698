"""Scenario files: the loader's validation (file and line in every error, before any model loads) and the
library's coverage."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.replay.scenario import (
    CATEGORIES,
    LIBRARY_DIR,
    ScenarioError,
    ScenarioRole,
    load_scenario,
    load_scenarios,
)
from audio.frames import AudioFrame
from audio.wavfile import write_wav

GOOD = """\
category: barge_in
max_answer_tokens: 60
timeline:
  - at: 0.5
    say: "Tell me a story."
  - after: 3.0
    say: "What is two plus two?"
    role: interruption
expect:
  interrupted: {within_ms: 500}
  answers: {count: 2, within_s: 4}
"""


def write(tmp_path, text, name="case.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path, data_dir=None) -> str:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, data_dir)
    return str(caught.value)


def test_a_good_file_loads_into_typed_items(tmp_path):
    scenario = load_scenario(write(tmp_path, GOOD))
    assert scenario.name == "case" and scenario.category == "barge_in" and scenario.max_answer_tokens == 60
    first, second = scenario.items
    assert (first.source, first.at, first.line) == ("say", 0.5, 4) and first.role is ScenarioRole.QUERY
    assert (second.after, second.at, second.line) == (3.0, None, 6) and second.role is ScenarioRole.INTERRUPTION
    assert scenario.expect.interrupted and scenario.expect.interrupt_within_ms == 500
    assert scenario.expect.answer_count == 2 and scenario.expect.answer_within_s == 4


def test_unknown_key_names_file_and_line(tmp_path):
    path = write(tmp_path, GOOD.replace("    role: interruption", "    role: interruption\n    volume: 3"))
    message = error_of(path)
    assert message.startswith(f"{path}:9: unknown key 'volume'")


def test_unknown_expectation_names_its_line(tmp_path):
    path = write(tmp_path, GOOD + "  answer_is_polite: true\n")
    assert error_of(path).startswith(f"{path}:12: unknown key 'answer_is_polite' in 'expect'")


def test_missing_audio_file_names_its_line(tmp_path):
    path = write(tmp_path, GOOD.replace('say: "What is two plus two?"', "audio: clips/missing.wav"))
    message = error_of(path)
    assert message.startswith(f"{path}:7: file not found") and "missing.wav" in message


def test_times_out_of_order_name_the_later_entry(tmp_path):
    text = GOOD.replace("  - after: 3.0", "  - at: 0.2")
    path = write(tmp_path, text)
    assert error_of(path).startswith(f"{path}:6: times out of order: at 0.2 s comes after an entry at 0.5 s (line 4)")


def test_shared_recordings_need_the_requirement(tmp_path):
    path = write(tmp_path, GOOD.replace('say: "What is two plus two?"', "audio: data:speech/x.wav"))
    assert "add 'requires: shared-data'" in error_of(path)


def test_missing_shared_file_is_an_error_only_when_the_folder_exists(tmp_path):
    text = "requires: shared-data\n" + GOOD.replace('say: "What is two plus two?"', "audio: data:speech/x.wav")
    path = write(tmp_path, text)
    assert load_scenario(path, None).requires_shared_data  # absent folder: it will be skipped, not rejected
    (tmp_path / "data").mkdir()
    assert "audio file not found" in error_of(path, tmp_path / "data")


@pytest.mark.parametrize("change, expected", [
    (("category: barge_in", "category: karaoke"), "unknown category 'karaoke'"),
    (("  - after: 3.0", "  - after: -1"), "'after' must be >= 0"),
    (("    role: interruption", "    role: heckler"), "unknown role 'heckler'"),
    (("  - at: 0.5\n", "  - at: 0.5\n    after: 1\n"), "exactly one of 'at'"),
    (("max_answer_tokens: 60", "max_answer_tokens: lots"), "'max_answer_tokens' must be int"),
    (("  answers: {count: 2, within_s: 4}", "  answers: {count: 2, within_s: 4}\n  answers: true"), "duplicate key"),
    (("timeline:", "timeline: ["), "not valid YAML"),
])
def test_each_malformation_is_one_clear_message(tmp_path, change, expected):
    path = write(tmp_path, GOOD.replace(*change))
    message = error_of(path)
    assert message.startswith(f"{path}:") and expected in message


def test_an_unknown_role_names_its_line_and_every_role_spelled_as_in_the_files(tmp_path):
    path = write(tmp_path, GOOD.replace("    role: interruption", "    role: heckler"))
    assert error_of(path) == (f"{path}:8: unknown role 'heckler' (expected one of: query, interruption, stop, "
                              "backchannel, before_pause, after_pause, noise, side_talk, typed, camera, context)")


def test_cli_rejects_a_malformed_file_before_any_model_loads(tmp_path, monkeypatch, capsys):
    import assistant.session
    from assistant.cli import main

    def no_models(*args, **kwargs):
        raise AssertionError("models were loaded for a malformed scenario")

    monkeypatch.setattr(assistant.session, "AssistantModels", no_models)
    good = write(tmp_path, GOOD, "a_good.yaml")
    bad = write(tmp_path, GOOD.replace("category: barge_in", "category: barge_in\nspeed: 2"), "b_bad.yaml")
    assert main(["replay", str(good), str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [(f"error: {bad}:2: unknown key 'speed' in a scenario (expected one of: "
                    "category, clock, description, echo_gain, expect, known_failure, max_answer_tokens, name, "
                    "requires, tail_s, timeline)")]


def test_the_library_is_valid_and_covers_every_category(tmp_path):
    scenarios = load_scenarios([LIBRARY_DIR], None)
    assert len(scenarios) >= 40
    assert {s.category for s in scenarios} == set(CATEGORIES)
    long = [s for s in scenarios if s.category == "long_session"]
    assert long and max(i.at or 0 for i in long[0].items) >= 540  # about ten minutes of conversation
    generated = [s for s in scenarios if not s.requires_shared_data]
    assert len(generated) >= 20  # these run on a fresh clone without the shared recordings


def test_the_library_covers_every_shared_noise_file(tmp_path):
    from assistant.recordings import DEFAULT_DATA_DIR

    noise_dir = DEFAULT_DATA_DIR / "noise"
    if not noise_dir.is_dir():
        pytest.skip("the shared recordings (../shared/data/audio) are not beside this checkout")
    scenarios = load_scenarios([LIBRARY_DIR], DEFAULT_DATA_DIR)
    used = {p.resolve() for s in scenarios if s.category == "noise_during_answer" for i in s.items for p in i.paths}
    files = {p.resolve() for p in noise_dir.rglob("*.wav")}
    assert files <= used, f"noise files without an answer scenario: {sorted(f.name for f in files - used)}"
    assert any(i.source == "babble" for s in scenarios for i in s.items)


def test_images_and_noise_files_resolve_relative_to_the_scenario(tmp_path):
    clip = AudioFrame(np.zeros(1600, np.float32), 16000)
    write_wav(tmp_path / "hum.wav", clip)
    text = ("category: camera\ntimeline:\n  - at: 0\n    image:\n    color: [1, 2, 3]\n"
            "  - at: 0\n    noise: hum.wav\n    level_dbfs: -30\n  - at: 1\n    say: What is this?\n"
            "expect:\n  answers: true\n")
    scenario = load_scenario(write(tmp_path, text))
    image, noise, _ = scenario.items
    assert image.color == (1, 2, 3) and noise.paths == (tmp_path / "hum.wav",) and noise.level_dbfs == -30
