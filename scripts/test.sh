#!/usr/bin/env bash
# Set up (first time), then run the whole test suite on the real bundled models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${ASSISTANT_VENV:-.venv}/bin/python" -m pytest "$@"
