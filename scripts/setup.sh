#!/usr/bin/env bash
# Create .venv and install flurka-export into it. Idempotent; prints what it does as it goes.
#   scripts/setup.sh        what the main job needs (torch CPU, ONNX, ONNX Runtime, Polygraphy): ~1.3 GB
#   scripts/setup.sh dev    also everything the tests use (Triton, JAX/Flax, transformers, Triton server, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-core}
PY=${PYTHON:-python3}
say() { printf '[setup] %s\n' "$*"; }
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $("$PY" --version 2>&1)"
  "$PY" -m venv .venv
fi
. .venv/bin/activate
pip_install() {  # pip's own progress, without this machine's index noise; fails if pip fails
  python -m pip install --disable-pip-version-check --progress-bar on "$@" 2>&1 \
    | { grep --line-buffered -v -E '^(WARNING: Location|Requirement already satisfied| +Attempting uninstall| +Found existing| +Uninstalling| +Successfully uninstalled)' || true; }
  return "${PIPESTATUS[0]}"
}
# Pin the CPU build of torch: a bare requirement can pull a multi-GB CUDA build.
if python -c 'import torch, sys; sys.exit(torch.__version__ != "2.13.0+cpu" and torch.__version__ != "2.13.0")' 2>/dev/null; then
  say "torch 2.13.0 (CPU) already installed"
else
  say "installing torch 2.13.0 (CPU build)"
  pip_install "torch==2.13.0"
fi
case "$MODE" in
  core) say "installing flurka-export and its runtime dependencies (onnx, onnxruntime, onnxscript, polygraphy)"
        pip_install -e . ;;
  dev)  say "installing flurka-export with the test extras (triton, jax/flax, transformers, onnxslim, ...)"
        pip_install -e ".[dev,flax,examples]"
        # The Triton server for `serve` and its tests: --no-deps, because nvidia-pytriton pins numpy<2 for its own
        # Python API, which we do not use, and jax (extra `flax`) needs numpy>=2.
        say "installing the Triton Inference Server binary (nvidia-pytriton, for serve)"
        pip_install --no-deps "nvidia-pytriton>=0.5"
        python -c "from flurka_export.serve.distribution import find_distribution as f; f()" ;;
  *)    echo "usage: scripts/setup.sh [core|dev]" >&2; exit 2 ;;
esac
python -c "import flurka_export, torch, onnxruntime" && say "ready: . .venv/bin/activate; flurka-export --help"
