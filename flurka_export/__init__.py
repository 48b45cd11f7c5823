"""flurka-export: FLuRKA transformers from PyTorch to ONNX Runtime and TensorRT."""

from __future__ import annotations

from typing import Any

from .version import __version__


def export_onnx(model_or_checkpoint_dir: Any, path: Any, **options: Any) -> Any:
    """PyTorch to ONNX; see flurka_export.export.export_onnx."""
    from .export import export_onnx as _export

    return _export(model_or_checkpoint_dir, path, **options)


__all__ = ["__version__", "export_onnx"]
