"""TensorRT: FlurkaAttention runs as the plugin from libflurka_trt_plugin.so (needs an NVIDIA GPU)."""

from __future__ import annotations

from typing import Any

from .base import RunRequest, Runtime, RuntimeUnavailable


class TrtRuntime(Runtime):
    name = "trt"
    description = "TensorRT with the FlurkaAttention plugin"

    def unavailable_reason(self) -> str | None:
        from ..trt.availability import tensorrt_missing_reason

        return tensorrt_missing_reason(short=True)

    def cannot_run(self, request: RunRequest) -> str | None:
        why = super().cannot_run(request)
        if why is None and request.engine is None and not request.build_engine:
            return "no TensorRT engine given (use --engine model.plan, or --build-engine with --plugin)"
        return why

    def make_runner(self, request: RunRequest) -> Any:
        from ..trt.runner import make_trt_runner

        why = self.cannot_run(request)
        if why:
            raise RuntimeUnavailable(why)
        try:
            return make_trt_runner(engine=request.engine, plugin=request.plugin,
                                   onnx_path=request.onnx_path if request.build_engine else None)
        except RuntimeError as e:
            raise RuntimeUnavailable(str(e)) from None
