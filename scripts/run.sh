#!/usr/bin/env bash
# Set up (first time), then run the assistant's main job on the bundled offline models.
# Until the browser voice chat lands, that is: answer the bundled spoken question and write the answer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p out
exec "${ASSISTANT_VENV:-.venv}/bin/assistant" ask --audio assistant/samples/question.wav --out out/answer.wav "$@"
