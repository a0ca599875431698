#!/usr/bin/env bash
# Set up (first time), check lint, import order and types on the whole tree, then run the whole test suite
# on the real bundled models. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY="${ASSISTANT_VENV:-.venv}/bin/python"
"$PY" -m ruff check .
"$PY" -m mypy
exec "$PY" -m pytest "$@"
