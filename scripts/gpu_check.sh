#!/usr/bin/env bash
# GPU checks of the fused FlurkaAttention kernel, for a machine with a CUDA GPU (for example an H200 with
# torch + CUDA, Triton, nvcc/gcc, no internet). Each step prints its own PASS/FAIL and the next step
# runs even if one fails; the exit status is 1 if any failed.
#   1. kernel tests (tests/kernels/test_triton_kernel.py) compiled on the GPU, if pytest is installed
#   2. numerics: JIT kernel vs the reference op on CUDA, all feature maps and dtypes
#   3. aot: build-kernels for this GPU, launcher compiled into a .so with -lcuda, called via ctypes
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
OUT_DIR=${1:-${OUT:-/tmp/flurka_gpu}}
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
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

step "environment" bash -c "nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null; \
  $PYTHON -c 'import torch, triton; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"triton\", triton.__version__, torch.cuda.get_device_name())'; \
  command -v nvcc && nvcc --version | tail -1; command -v gcc"
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
