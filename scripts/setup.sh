#!/usr/bin/env bash
# Create .venv with pinned CPU torch and the project (editable, with every extra the tests use). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
pip_quiet() {  # pip without the noise of this machine's unused local index entries; fails if pip fails
  python -m pip install -q --disable-pip-version-check "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }
  return "${PIPESTATUS[0]}"
}
# Pin the CPU build of torch: a bare requirement can pull a multi-GB CUDA build.
pip_quiet "torch==2.13.0"
pip_quiet -e ".[dev,flax,examples]"
# The Triton server for `serve` and its tests (extra `serve`): --no-deps, because nvidia-pytriton pins numpy<2 for its
# own Python API, which we do not use, and jax (extra `flax`) needs numpy>=2.
pip_quiet --no-deps "nvidia-pytriton>=0.5"
python -c "import flurka_export, torch, onnxruntime, triton; from flurka_export.serve.distribution import find_distribution as f; f()"
