"""TensorRT as a Polygraphy runner, with the FlurkaAttention plugin loaded."""

from __future__ import annotations

import os
from typing import Any

from ..trt.availability import import_tensorrt
from ..trt.build_info import read_build_info
from ..trt.plugin import load_plugin


def make_trt_runner(engine: str | os.PathLike | None = None, onnx_path: str | os.PathLike | None = None,
                    plugin: str | os.PathLike | None = None, name: str = "tensorrt") -> Any:
    """From a saved plan (`engine`) or by building one from `onnx_path` in memory."""
    try:
        import_tensorrt()
    except ImportError as e:
        raise RuntimeError(str(e)) from None
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    if engine is None and onnx_path is None:
        raise RuntimeError("no TensorRT engine given (use --engine model.plan, or --build-engine with --plugin)")
    info = read_build_info(engine) if engine is not None else None
    if plugin is not None or not (info and info.plugin_serialized):
        load_plugin(plugin)  # a plan that carries its plugin library loads it itself (EngineFromBytes allows host code)
    if engine is not None:
        with open(engine, "rb") as f:
            data = f.read()
    else:
        from ..trt.engine import build_engine

        data, _ = build_engine(onnx_path, plugin=plugin)
    return TrtRunner(EngineFromBytes(data), name=name)
