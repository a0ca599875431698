#!/usr/bin/env bash
# Set up (first time), then run the assistant's main job on the bundled offline models: the browser voice
# and video chat. It prints a URL with a one-time access token; open it, allow microphone and camera, talk.
# Extra arguments go to `assistant serve` (e.g. --port 9000, --llm transformers:MODEL, --set llm.max_answer_tokens=60).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${ASSISTANT_VENV:-.venv}/bin/assistant" serve "$@"
