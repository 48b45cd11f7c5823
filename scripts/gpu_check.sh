#!/usr/bin/env bash
# GPU checks of the fused FlurkaAttention kernel, for a machine with a CUDA GPU: torch built with CUDA,
# Triton, nvcc or gcc. Nothing is installed and no network is needed: the repository is used through
# PYTHONPATH. Without a GPU visible to torch, or without Triton, it stops at once with one line on stderr
# and exit status 1. Otherwise each step prints its own PASS/FAIL and the next step runs even if one
# fails; the exit status is 1 if any failed.
#   1. kernel tests (tests/kernels/test_triton_kernel.py) compiled on the GPU, if pytest is installed
#   2. numerics: JIT kernel vs the reference op on CUDA, all feature maps and dtypes
#   3. aot: build-kernels for this GPU, launcher compiled into a .so (it opens libcuda.so.1), called via ctypes
#   4. timing: kernel vs the unfused reference vs torch SDPA (flash), N = 4k..64k, k = 256 keys
# Usage: scripts/gpu_check.sh [OUT_DIR]   (PYTHON=... to choose the interpreter)
set -u
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    PYTHON=.venv/bin/python
  else
    PYTHON=python3
  fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# Preflight: every step needs torch with a visible CUDA GPU, and Triton. Say in one line what is missing.
if ! command -v "${PYTHON%% *}" >/dev/null 2>&1; then
  echo "gpu_check: no Python interpreter '$PYTHON' (set PYTHON=...)" >&2
  exit 1
fi
# stdout only: a warning on stderr (torch without numpy warns) is no reason to stop.
missing=$($PYTHON - 2>/dev/null <<'EOF'
import sys


def problem():
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        return f"no PyTorch ({type(e).__name__}: {e})"
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU"
    try:
        import triton  # noqa: F401
    except Exception as e:  # noqa: BLE001
        return f"no Triton ({type(e).__name__}: {e})"
    return ""


found = problem()
print(found)
sys.exit(1 if found else 0)
EOF
)
if [ $? -ne 0 ]; then
  echo "gpu_check: needs a CUDA GPU visible to PyTorch, and Triton; $PYTHON: ${missing:-the check itself failed}" >&2
  exit 1
fi

OUT_DIR=${1:-${OUT:-/tmp/flurka_gpu}}
mkdir -p "$OUT_DIR"
export TRITON_DEFAULT_FP_FUSION=${TRITON_DEFAULT_FP_FUSION:-1}
unset TRITON_INTERPRET
failed=()

step() {
  local name=$1; shift
  local t0=$SECONDS
  echo "=================== $name"
  if "$@"; then
    echo "=================== PASS $name ($((SECONDS - t0)) s)"
  else
    echo "=================== FAIL $name ($((SECONDS - t0)) s)"
    failed+=("$name")
  fi
}

step "environment" bash -c "set -e; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true; \
  $PYTHON -c 'import torch, triton; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"triton\", triton.__version__, torch.cuda.get_device_name())'; \
  if command -v nvcc; then nvcc --version | tail -1; fi; command -v gcc || command -v cc || command -v nvcc"
if $PYTHON -c "import pytest" 2>/dev/null; then
  step "kernel tests on GPU" env FLURKA_TEST_DEVICE=cuda timeout 300 $PYTHON -m pytest -q -p no:cacheprovider \
    tests/kernels/test_triton_kernel.py
else
  echo "=================== SKIP kernel tests on GPU (no pytest); the numerics step covers the same ground"
fi
step "numerics (JIT kernel vs reference)" timeout 300 $PYTHON benchmarks/kernel_gpu.py --step numerics
step "aot (build-kernels + C launcher via ctypes)" timeout 400 $PYTHON benchmarks/kernel_gpu.py --step aot --out "$OUT_DIR"
step "timing (kernel vs reference vs SDPA)" timeout 300 $PYTHON benchmarks/kernel_gpu.py --step timing

if [ ${#failed[@]} -eq 0 ]; then
  echo "gpu_check: all steps passed"
else
  echo "gpu_check: FAILED: ${failed[*]}"
  exit 1
fi
