"""The packages' dependency rules, read from the source: ``ui/`` never imports ``assistant`` (transports
take a session factory; only ``assistant/cli.py`` knows both), and the core (``duplex/``) and the sound
layer (``audio/``) import neither ``ui`` nor ``assistant``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def imported_packages(source: str) -> set[str]:
    """The top-level packages ``source`` imports anywhere (inside functions too); relative imports stay home."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.partition(".")[0])
    return found


def forbidden_imports(package: str, forbidden: set[str]) -> list[str]:
    modules = sorted((REPO_ROOT / package).rglob("*.py"))
    assert modules, f"no modules under {package}/"
    return [f"{path.relative_to(REPO_ROOT)} imports {name}"
            for path in modules for name in sorted(imported_packages(path.read_text()) & forbidden)]


def test_the_walker_finds_imports_in_functions_and_ignores_relative_ones():
    source = "import os\nfrom . import x\ndef f():\n    from assistant.session import AssistantModels\n" \
             "    import ui.desktop as d\n"
    assert imported_packages(source) == {"os", "assistant", "ui"}


def test_ui_never_imports_assistant():
    assert forbidden_imports("ui", {"assistant"}) == []


@pytest.mark.parametrize("package", ["duplex", "audio"])
def test_the_core_and_the_sound_layer_import_neither_ui_nor_assistant(package):
    assert forbidden_imports(package, {"ui", "assistant"}) == []
