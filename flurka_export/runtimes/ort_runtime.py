"""ONNX Runtime: FlurkaAttention runs as its model-local function body (CPU or CUDA provider)."""

from __future__ import annotations

from typing import Any

from .base import BenchRequest, RunRequest, Runtime, RuntimeUnavailable, TimedCall

# ONNX Runtime's CPU provider has no bfloat16 kernels for the elementwise and matmul ops of a
# transformer (session creation fails with "Could not find an implementation for Add(14)").
BF16_CPU_REASON = ("ONNX Runtime's CPU provider cannot run bf16 models (no bfloat16 kernels for Add, MatMul, ...); "
                   "run bf16 with TensorRT or ONNX Runtime's CUDA provider, or export fp32/fp16 for CPU")


class OrtRuntime(Runtime):
    name = "ort"
    description = "ONNX Runtime (FlurkaAttention through its function body)"
    onnx_variants = True

    def unavailable_reason(self) -> str | None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError as e:
            return f"ONNX Runtime is not installed ({e}); pip install onnxruntime"
        return None

    def cannot_run(self, request: RunRequest) -> str | None:
        why = super().cannot_run(request)
        if why is None and request.dtype == "bf16" and "CUDAExecutionProvider" not in self._providers(request):
            return BF16_CPU_REASON
        return why

    def variants(self) -> dict[str, str | None]:
        why = self.unavailable_reason()
        if why:
            return {"ort-cpu": why, "ort-cuda": why}
        from .ort_runner import available_providers

        cuda = "CUDAExecutionProvider" in available_providers()
        return {"ort-cpu": None,
                "ort-cuda": None if cuda else "onnxruntime has no CUDAExecutionProvider; pip install onnxruntime-gpu"}

    @staticmethod
    def _providers(request: RunRequest) -> list[str]:
        from .ort_runner import default_providers

        return request.providers or default_providers()

    def make_runner(self, request: RunRequest) -> Any:
        from .ort_runner import make_ort_runner

        why = self.cannot_run(request)
        if why:
            raise RuntimeUnavailable(why)
        source = request.onnx_model.SerializeToString() if request.onnx_model is not None else request.onnx_path
        if source is None:
            raise RuntimeUnavailable("ONNX Runtime needs an ONNX model")
        return make_ort_runner(source, request.providers)

    def timed_call(self, request: BenchRequest) -> TimedCall:
        from .ort_runner import make_session

        cpu = ["CPUExecutionProvider"]
        providers = ["CUDAExecutionProvider", *cpu] if request.variant == "ort-cuda" else cpu
        sess = make_session(request.onnx_path, providers=providers, threads=request.threads)
        timed = lambda feeds: (lambda: sess.run(None, feeds))  # noqa: E731
        if request.variant == "ort-cuda":
            return TimedCall(timed)  # device memory of ORT CUDA is not visible from here
        # Memory is measured on a second session without the CPU arena: an arena keeps what one call used and
        # serves the next call from it, so the RSS peak of a call would read 0 MB once the arena is grown.
        plain = make_session(request.onnx_path, providers=cpu, threads=request.threads, arena=False)
        return TimedCall(timed, memory="host", make_memory_call=lambda feeds: (lambda: plain.run(None, feeds)))
