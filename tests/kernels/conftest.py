"""Kernel tests run in Triton's interpreter on CPU tensors (CI), or compiled on a GPU with
FLURKA_TEST_DEVICE=cuda (scripts/gpu_check.sh). The interpreter flag must be set before triton is imported."""

import os

if os.environ.get("FLURKA_TEST_DEVICE", "cpu") == "cpu":
    os.environ.setdefault("TRITON_INTERPRET", "1")
