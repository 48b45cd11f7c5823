"""PyTorch to ONNX with com.flurka::FlurkaAttention nodes and their function bodies."""

from ..onnx_io import save_model
from ..ops.onnx_bodies import function_proto
from .onnx_export import DTYPES, ExportError, example_inputs, export_onnx

__all__ = ["DTYPES", "ExportError", "example_inputs", "export_onnx", "function_proto", "save_model"]
