#!/usr/bin/env bash
# Create .venv with pinned CPU torch and the project (editable, with dev extras). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip 2>/dev/null || true
# Pin the CPU build of torch: a bare requirement can pull a multi-GB CUDA build.
python -m pip install -q "torch==2.13.0" 2>&1 | grep -v '^WARNING: Location' || true
python -m pip install -q -e ".[dev]" 2>&1 | grep -v '^WARNING: Location' || true
python -c "import flurka_export, torch, onnxruntime, triton" 
