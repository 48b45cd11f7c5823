"""ONNX Runtime through Polygraphy's runner; FlurkaAttention runs as its model-local function body."""

from __future__ import annotations

import os

from polygraphy.backend.onnxrt import OnnxrtRunner


def available_providers() -> list[str]:
    import onnxruntime as ort

    return ort.get_available_providers()


def default_providers() -> list[str]:
    have = available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in have]


def make_session(model: str | os.PathLike | bytes, providers: list[str] | None = None, threads: int | None = None,  # noqa: ANN201
                 arena: bool = True):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only: constant-folding notes on fp16 are not actionable
    opts.enable_cpu_mem_arena = arena
    if threads:
        opts.intra_op_num_threads = threads
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, sess_options=opts, providers=providers or default_providers())


def make_ort_runner(model: str | os.PathLike | bytes, providers: list[str] | None = None,
                    name: str = "onnxruntime") -> OnnxrtRunner:
    """A Polygraphy OnnxrtRunner over a session built with our options (a path or serialized bytes)."""
    return OnnxrtRunner(lambda: make_session(model, providers), name=name)
