"""Numerical parity between PyTorch, ONNX Runtime and TensorRT."""

from .compare import DEFAULT_TOLERANCES, Comparison, compare_arrays
from .inputs import default_shapes, make_inputs, parse_shapes

__all__ = ["DEFAULT_TOLERANCES", "Comparison", "compare_arrays", "default_shapes", "make_inputs", "parse_shapes"]
