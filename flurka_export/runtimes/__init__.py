"""Runtimes behind one interface (`Runtime`, Polygraphy runners): PyTorch, ONNX Runtime, TensorRT.

Each backend imports its runtime lazily, so a missing optional runtime fails only where it is used.
"""

from .base import RunRequest, Runtime, RuntimeUnavailable
from .registry import REFERENCE, get_runtime, parse_runtime_list, runtime_names

__all__ = ["REFERENCE", "RunRequest", "Runtime", "RuntimeUnavailable", "get_runtime", "parse_runtime_list",
           "runtime_names"]
