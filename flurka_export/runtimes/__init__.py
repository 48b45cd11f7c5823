"""Runtimes behind one interface (`Runtime`, Polygraphy runners): PyTorch, ONNX Runtime, TensorRT.

Each backend imports its runtime lazily, so a missing optional runtime fails only where it is used.
"""

from .base import BenchRequest, RunRequest, Runtime, RuntimeUnavailable, TimedCall
from .registry import REFERENCE, get_runtime, parse_runtime_list, runtime_names, runtime_of_variant

__all__ = ["REFERENCE", "BenchRequest", "RunRequest", "Runtime", "RuntimeUnavailable", "TimedCall", "get_runtime",
           "parse_runtime_list", "runtime_names", "runtime_of_variant"]
