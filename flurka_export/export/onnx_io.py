"""Loading ONNX files with clear errors (corrupt, missing, not a model)."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError


class OnnxFileError(ValueError):
    pass


def load_onnx(path: str | os.PathLike, *, load_external_data: bool = True) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise OnnxFileError(f"{path} does not exist or is not a file")
    if path.suffix.lower() in (".json", ".txt", ".safetensors", ".msgpack", ".npz", ".npy", ".pt", ".bin"):
        raise OnnxFileError(f"{path} is not a valid ONNX model (a {path.suffix} file; expected a .onnx file)")
    try:
        model = onnx.load(str(path), load_external_data=load_external_data)
    except (DecodeError, RuntimeWarning, UnicodeDecodeError, OSError, ValueError, Exception) as e:
        raise OnnxFileError(f"{path} is not a valid ONNX model ({type(e).__name__}: {e})") from None
    if not model.graph.node and not model.graph.output:
        raise OnnxFileError(f"{path} is not a valid ONNX model (no graph found)")
    return model
