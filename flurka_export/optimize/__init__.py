"""`flurka-export optimize`: ONNX Runtime fusions and int8 quantization (graph passes in passes/), each step
checked to keep every FlurkaAttention node and body, and the result checked against the input in ONNX Runtime."""

from .pipeline import optimize_file

__all__ = ["optimize_file"]
