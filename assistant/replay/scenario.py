"""Scenario files: a YAML timeline of what the user does and what the assistant is expected to do.

The whole format is documented in docs/replay.md. Loading validates everything that can be checked without
a model (keys, types, files, the order of times) and fails with one ``ScenarioError`` naming the file and
line, so a typo never costs a model load.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import yaml

from assistant.config import ConfigError

CATEGORIES = ("plain_turn", "barge_in", "noise_during_answer", "noise_while_idle", "pause", "backchannel",
              "typed", "own_voice", "double_interrupt", "camera", "side_talk", "long_session", "unclear")


class ScenarioRole(str, enum.Enum):
    """What a user item is, for the metrics (spelled as in the scenario files)."""

    QUERY = "query"  # a question to an idle assistant
    INTERRUPTION = "interruption"  # a question that barges in
    STOP = "stop"  # a bare "Stop.": the voice must stop, and no answer start
    BACKCHANNEL = "backchannel"
    BEFORE_PAUSE = "before_pause"  # the first half of a sentence before a pause
    AFTER_PAUSE = "after_pause"
    NOISE = "noise"
    SIDE_TALK = "side_talk"  # talk aimed at someone else
    TYPED = "typed"
    CAMERA = "camera"
    CONTEXT = "context"  # speech that sets the scene, not scored


# spoken by the user (their level sets the noise's signal-to-noise ratio)
SPEECH_ROLES = frozenset({ScenarioRole.QUERY, ScenarioRole.INTERRUPTION, ScenarioRole.STOP, ScenarioRole.BACKCHANNEL,
                          ScenarioRole.BEFORE_PAUSE, ScenarioRole.AFTER_PAUSE, ScenarioRole.SIDE_TALK,
                          ScenarioRole.CONTEXT})
# the user takes a turn: it closes the window in which the assistant's reaction to the item before is scored
USER_TURN_ROLES = frozenset({ScenarioRole.QUERY, ScenarioRole.INTERRUPTION, ScenarioRole.STOP, ScenarioRole.TYPED,
                             ScenarioRole.BACKCHANNEL, ScenarioRole.BEFORE_PAUSE, ScenarioRole.AFTER_PAUSE,
                             ScenarioRole.SIDE_TALK})
# asks for an answer ('answers: within_s' is timed from the last of these)
ASK_ROLES = frozenset({ScenarioRole.QUERY, ScenarioRole.INTERRUPTION, ScenarioRole.TYPED, ScenarioRole.AFTER_PAUSE})
# cuts the assistant's voice ('interrupted: within_ms' is timed from the first of these)
INTERRUPTING_ROLES = frozenset({ScenarioRole.INTERRUPTION, ScenarioRole.STOP, ScenarioRole.TYPED})
SOURCES = ("say", "audio", "noise", "babble", "type", "image")
DEFAULT_ROLE = {"say": ScenarioRole.QUERY, "audio": ScenarioRole.QUERY, "noise": ScenarioRole.NOISE,
                "babble": ScenarioRole.NOISE, "type": ScenarioRole.TYPED, "image": ScenarioRole.CAMERA}
ITEM_KEYS = {
    "say": {"voice", "gain_db"},
    "audio": {"start", "end", "gain_db"},
    "noise": {"start", "duration", "level_dbfs", "snr_db", "loop"},
    "babble": {"start", "duration", "level_dbfs", "snr_db"},
    "type": set(),
    "image": {"color", "width", "height"},
}
COMMON_ITEM_KEYS = {"at", "after", "after_answer", "role", "label"}
TOP_KEYS = {"name", "description", "category", "requires", "known_failure", "clock", "tail_s",
            "max_answer_tokens", "echo_gain", "timeline", "expect"}
EXPECT_KEYS = {"answers", "stays_silent", "interrupted", "not_interrupted", "resumes", "history_contains",
               "history_lacks", "answer_mentions", "answers_lack", "turns"}
DATA_PREFIX = "data:"  # a path inside the shared recordings folder (../shared/data/audio)


class ScenarioError(ConfigError):
    """A malformed scenario file: the message starts with ``file:line:``."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path, self.line = Path(path), line
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


@dataclass(frozen=True)
class TimelineItem:
    line: int
    source: str  # one of SOURCES
    role: ScenarioRole
    at: float | None  # seconds from the start, or
    after: float | None  # seconds after the end of the previous item, or
    after_answer: float | None = None  # seconds after the assistant's latest answer began to be heard
    text: str = ""  # what ``say`` speaks or ``type`` types
    paths: tuple[Path, ...] = ()  # audio, noise and babble files, or the image file
    voice: Path | None = None  # a Piper voice (.onnx) other than the configured one
    start_s: float = 0.0  # where in the file the slice begins
    end_s: float | None = None  # audio: where it ends
    duration_s: float | None = None  # noise and babble: how long (a looped noise bed can outlast its file)
    gain_db: float = 0.0
    level_dbfs: float | None = None  # noise level (RMS) ...
    snr_db: float | None = None  # ... or relative to the scenario's speech level
    loop: bool = False
    color: tuple[int, int, int] | None = None  # image: a plain frame of this colour
    size: tuple[int, int] = (320, 240)
    label: str = ""


@dataclass(frozen=True)
class Expectations:
    answers: bool = False
    answer_within_s: float | None = None
    answer_count: int = 1
    stays_silent: bool = False
    interrupted: bool = False
    interrupt_within_ms: float | None = None
    not_interrupted: bool = False
    resumes: bool = False
    history_contains: tuple[str, ...] = ()
    history_lacks: tuple[str, ...] = ()
    answer_mentions: tuple[str, ...] = ()  # any one of these words
    answers_lack: tuple[str, ...] = ()  # none of these words in any answer (the camera's text parroted)
    turns: int | None = None
    line: int = 0


@dataclass(frozen=True)
class Scenario:
    path: Path
    name: str
    description: str
    category: str
    items: tuple[TimelineItem, ...]
    expect: Expectations
    requires_shared_data: bool = False
    known_failure: str = ""  # why it fails with the current models: reported, but not a CI failure
    clock: str = "virtual"  # the preferred clock when the command line does not choose
    tail_s: float = 4.0  # seconds run after the last item
    max_answer_tokens: int | None = None
    echo_gain: float = 0.0  # > 0: the assistant's voice leaks back into the microphone (open speakers)


# --- YAML with line numbers ----------------------------------------------------------------------------

class _Mapping(dict):
    line: int = 0
    key_lines: dict


class _Duplicate(Exception):
    def __init__(self, line: int, key: Any) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.line = line


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Mapping:
    loader.flatten_mapping(node)
    mapping = _Mapping()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise _Duplicate(key_node.start_mark.line + 1, key)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Reader:
    """Typed access to one mapping, with errors that name the file and the line."""

    def __init__(self, path: Path, mapping: _Mapping, allowed: set[str], what: str) -> None:
        self.path, self.mapping, self.what = path, mapping, what
        for key in mapping:
            if key not in allowed:
                raise ScenarioError(path, self.line_of(key),
                                    f"unknown key {key!r} in {what} (expected one of: {', '.join(sorted(allowed))})")

    def line_of(self, key: str | None = None) -> int:
        return self.mapping.key_lines.get(key, self.mapping.line) if key else self.mapping.line

    def fail(self, key: str | None, message: str) -> ScenarioError:
        return ScenarioError(self.path, self.line_of(key), message)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None, required: bool = False) -> Any:
        if key not in self.mapping:
            if required:
                raise self.fail(None, f"{self.what} needs {key!r}")
            return default
        value = self.mapping[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(key, f"{key!r} must be {names}, not {value!r}")
        return value

    @overload
    def number(self, key: str, default: float, minimum: float | None = None, required: bool = False) -> float: ...

    @overload
    def number(self, key: str, default: None = None, minimum: float | None = None,
               required: bool = False) -> float | None: ...

    def number(self, key: str, default: float | None = None, minimum: float | None = None,
               required: bool = False) -> float | None:
        value = self.get(key, float, default, required)
        if value is not None and minimum is not None and value < minimum:
            raise self.fail(key, f"{key!r} must be >= {minimum:g}, not {value:g}")
        return value

    def words(self, key: str) -> tuple[str, ...]:
        value = self.get(key, (str, list), None)
        if value is None:
            return ()
        values = [value] if isinstance(value, str) else value
        if not values or not all(isinstance(v, str) and v.strip() for v in values):
            raise self.fail(key, f"{key!r} must be a word or a list of words")
        return tuple(v.strip().lower() for v in values)


def _resolve(reader: _Reader, key: str, raw: str, data_dir: Path | None, needs_data: bool) -> Path:
    if raw.startswith(DATA_PREFIX):
        if not needs_data:
            raise reader.fail(key, f"{raw!r} is in the shared recordings: add 'requires: shared-data'")
        path = (data_dir or Path("<shared data>")) / raw[len(DATA_PREFIX):]
        if data_dir is not None and not path.is_file():
            raise reader.fail(key, f"audio file not found: {path}")
        return path
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = reader.path.parent / path
    if not path.is_file():
        raise reader.fail(key, f"file not found: {path}")
    return path


def _item(path: Path, node: Any, data_dir: Path | None, needs_data: bool, index: int, parent_line: int) -> TimelineItem:
    if not isinstance(node, _Mapping):
        raise ScenarioError(path, parent_line, f"timeline entry {index + 1} must be a mapping (at: ..., say: ...)")
    sources = [s for s in SOURCES if s in node]
    if len(sources) != 1:
        raise ScenarioError(path, node.line, f"a timeline entry needs exactly one of {', '.join(SOURCES)}"
                                             f" (found {', '.join(sources) or 'none'})")
    source = sources[0]
    reader = _Reader(path, node, COMMON_ITEM_KEYS | {source} | ITEM_KEYS[source], f"a '{source}' entry")
    at = reader.number("at", minimum=0.0)
    after = reader.number("after", minimum=0.0)
    after_answer = reader.number("after_answer", minimum=0.0)
    if sum(v is not None for v in (at, after, after_answer)) != 1:
        raise reader.fail(None, "a timeline entry needs exactly one of 'at' (seconds), 'after' (seconds after the "
                                "previous entry) or 'after_answer' (seconds into the assistant's answer)")
    spelled = reader.get("role", str, DEFAULT_ROLE[source].value)
    try:
        role = ScenarioRole(spelled)
    except ValueError:
        raise reader.fail("role", f"unknown role {spelled!r} (expected one of: "
                                  f"{', '.join(r.value for r in ScenarioRole)})") from None
    fields: dict[str, Any] = {"line": node.line, "source": source, "role": role, "at": at, "after": after,
                              "after_answer": after_answer, "label": reader.get("label", str, ""),
                              "gain_db": reader.number("gain_db", 0.0) or 0.0}
    if source in ("say", "type"):
        fields["text"] = reader.get(source, str, required=True).strip()
        if not fields["text"]:
            raise reader.fail(source, f"'{source}' needs some text")
        if "voice" in node:
            fields["voice"] = _resolve(reader, "voice", reader.get("voice", str), data_dir, needs_data)
    elif source in ("audio", "noise"):
        fields["paths"] = (_resolve(reader, source, reader.get(source, str), data_dir, needs_data),)
    elif source == "babble":
        raw = reader.get("babble", list)
        if len(raw) < 2 or not all(isinstance(p, str) for p in raw):
            raise reader.fail("babble", "'babble' lists two or more speech files to mix")
        fields["paths"] = tuple(_resolve(reader, "babble", p, data_dir, needs_data) for p in raw)
    elif source == "image":
        value = node["image"]
        if isinstance(value, str):
            fields["paths"] = (_resolve(reader, "image", value, data_dir, needs_data),)
        elif value is not None:
            raise reader.fail("image", "'image' is a file path, or empty with 'color: [r, g, b]'")
        color = reader.get("color", list)
        if color is not None:
            if len(color) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in color):
                raise reader.fail("color", "'color' is [red, green, blue], each 0-255")
            fields["color"] = tuple(color)
        elif value is None:
            raise reader.fail("image", "an image entry needs a file or 'color'")
        fields["size"] = (int(reader.number("width", 320, 16)), int(reader.number("height", 240, 16)))
    fields["start_s"] = reader.number("start", 0.0, 0.0) or 0.0
    fields["end_s"] = reader.number("end", None, 0.0)
    if fields["end_s"] is not None and fields["end_s"] <= fields["start_s"]:
        raise reader.fail("end", f"'end' ({fields['end_s']:g}) must come after 'start' ({fields['start_s']:g})")
    fields["duration_s"] = reader.number("duration", None, 0.05)
    fields["level_dbfs"] = reader.number("level_dbfs")
    fields["snr_db"] = reader.number("snr_db")
    if fields["level_dbfs"] is not None and fields["snr_db"] is not None:
        raise reader.fail("snr_db", "give 'level_dbfs' or 'snr_db', not both")
    fields["loop"] = reader.get("loop", bool, False)
    return TimelineItem(**fields)


def _expectations(path: Path, node: Any, line: int) -> Expectations:
    if not isinstance(node, _Mapping) or not node:
        raise ScenarioError(path, line, "'expect' is a mapping of expectations, e.g. {answers: {within_s: 4}}")
    reader = _Reader(path, node, EXPECT_KEYS, "'expect'")
    fields: dict[str, Any] = {"line": node.line}
    for flag in ("stays_silent", "not_interrupted", "resumes"):
        fields[flag] = reader.get(flag, bool, False)
    answers = node.get("answers", False)
    if isinstance(answers, _Mapping):
        sub = _Reader(path, answers, {"within_s", "count"}, "'answers'")
        fields.update(answers=True, answer_within_s=sub.number("within_s", None, 0.0),
                      answer_count=int(sub.number("count", 1, 1)))
    else:
        fields["answers"] = reader.get("answers", bool, False)
    interrupted = node.get("interrupted", False)
    if isinstance(interrupted, _Mapping):
        sub = _Reader(path, interrupted, {"within_ms"}, "'interrupted'")
        fields.update(interrupted=True, interrupt_within_ms=sub.number("within_ms", None, 0.0))
    else:
        fields["interrupted"] = reader.get("interrupted", bool, False)
    for key in ("history_contains", "history_lacks", "answer_mentions", "answers_lack"):
        fields[key] = reader.words(key)
    turns = reader.get("turns", int)
    if turns is not None and turns < 0:
        raise reader.fail("turns", "'turns' must be >= 0")
    fields["turns"] = turns
    if fields["stays_silent"] and (fields["answers"] or fields["interrupted"]):
        raise reader.fail("stays_silent", "'stays_silent' contradicts 'answers' / 'interrupted'")
    if fields["interrupted"] and fields["not_interrupted"]:
        raise reader.fail("not_interrupted", "'interrupted' and 'not_interrupted' contradict each other")
    return Expectations(**fields)


def load_scenario(path: str | Path, data_dir: Path | None = None) -> Scenario:
    """Parse and validate one file. ``data_dir``: the shared recordings, or None when absent."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ScenarioError(path, None, f"cannot read the scenario file: {error.strerror or error}") from None
    try:
        root = yaml.load(text, Loader=_LineLoader)
    except _Duplicate as error:
        raise ScenarioError(path, error.line, str(error)) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        raise ScenarioError(path, mark.line + 1 if mark else None, f"not valid YAML: {problem}") from None
    if not isinstance(root, _Mapping):
        raise ScenarioError(path, 1, "a scenario file is a mapping with 'timeline' and 'expect'")
    reader = _Reader(path, root, TOP_KEYS, "a scenario")
    category = reader.get("category", str, required=True)
    if category not in CATEGORIES:
        raise reader.fail("category", f"unknown category {category!r} (expected one of: {', '.join(CATEGORIES)})")
    requires = reader.get("requires", (str, list), [])
    requires = [requires] if isinstance(requires, str) else requires
    for need in requires:
        if need != "shared-data":
            raise reader.fail("requires", f"unknown requirement {need!r} (the only one is 'shared-data')")
    needs_data = "shared-data" in requires
    clock = reader.get("clock", str, "virtual")
    if clock not in ("virtual", "real"):
        raise reader.fail("clock", f"'clock' is virtual or real, not {clock!r}")
    timeline = reader.get("timeline", list, required=True)
    if not timeline:
        raise reader.fail("timeline", "the timeline is empty")
    items: list[TimelineItem] = []
    last_at: tuple[float, int] | None = None
    dynamic_from: int | None = None  # the line of the first entry placed by the answer's timing
    for index, node in enumerate(timeline):
        item = _item(path, node, data_dir, needs_data, index, reader.line_of("timeline"))
        if dynamic_from is None and item.after_answer is not None:
            dynamic_from = item.line
        if dynamic_from is not None and (item.at is not None or item.source == "image"):
            raise ScenarioError(path, item.line, f"an entry after an 'after_answer' entry (line {dynamic_from}) "
                                                 "is placed with 'after' or 'after_answer', and cannot be an image")
        if item.at is not None:
            if last_at is not None and item.at < last_at[0]:
                raise ScenarioError(path, item.line, f"times out of order: at {item.at:g} s comes after an entry "
                                                     f"at {last_at[0]:g} s (line {last_at[1]})")
            last_at = (item.at, item.line)
        items.append(item)
    if "expect" not in root:
        raise reader.fail(None, "a scenario needs 'expect' (what the assistant should do)")
    max_tokens = reader.get("max_answer_tokens", int)
    if max_tokens is not None and max_tokens < 1:
        raise reader.fail("max_answer_tokens", "'max_answer_tokens' must be >= 1")
    return Scenario(
        path=path, name=reader.get("name", str, path.stem), description=reader.get("description", str, ""),
        category=category, items=tuple(items), expect=_expectations(path, root["expect"], reader.line_of("expect")),
        requires_shared_data=needs_data, known_failure=reader.get("known_failure", str, "").strip(), clock=clock,
        tail_s=reader.number("tail_s", 4.0, 0.0), max_answer_tokens=max_tokens,
        echo_gain=reader.number("echo_gain", 0.0, 0.0))


def scenario_files(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given; folders give their ``*.yaml`` / ``*.yml`` files, sorted."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted([*path.rglob("*.yaml"), *path.rglob("*.yml")])
            if not found:
                raise ScenarioError(path, None, "no scenario files (*.yaml) in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ScenarioError(path, None, "no such scenario file or folder")
    return files


def load_scenarios(paths: Sequence[str | Path], data_dir: Path | None = None) -> list[Scenario]:
    """Every scenario under ``paths``, all validated before anything runs."""
    scenarios = [load_scenario(f, data_dir) for f in scenario_files(paths)]
    seen: dict[str, Path] = {}
    for scenario in scenarios:
        if scenario.name in seen:
            raise ScenarioError(scenario.path, 1,
                                f"scenario name {scenario.name!r} is also used by {seen[scenario.name]}")
        seen[scenario.name] = scenario.path
    return scenarios


LIBRARY_DIR = Path(__file__).resolve().parent / "scenarios"
