"""PyTorch: the reference every other runtime is compared against (the op's CPU reference, or the
fused Triton kernel on CUDA)."""

from __future__ import annotations

from typing import Any

from .base import BenchRequest, RunRequest, Runtime, RuntimeUnavailable, TimedCall


class TorchRuntime(Runtime):
    name = "torch"
    description = "PyTorch (reference op on CPU, fused Triton kernel on CUDA); float32 reference"
    bench_needs = ("checkpoint",)

    def unavailable_reason(self) -> str | None:
        return None  # a core dependency

    def variants(self) -> dict[str, str | None]:
        import torch

        return {"torch-cpu": None,
                "torch-cuda": None if torch.cuda.is_available() else "no CUDA device visible to PyTorch"}

    def make_runner(self, request: RunRequest) -> Any:
        from .torch_runner import TorchRunner

        if request.torch_model is None:
            raise RuntimeUnavailable("the PyTorch reference needs the checkpoint the model was exported from")
        return TorchRunner(request.torch_model, capture_layers=request.capture_layers)

    def timed_call(self, request: BenchRequest) -> TimedCall:
        import torch

        from ..models import load_pretrained

        if request.threads:
            torch.set_num_threads(request.threads)
        device = "cuda" if request.variant == "torch-cuda" else "cpu"
        model = load_pretrained(request.files["checkpoint"]).to(device).eval()

        def make_call(feeds: dict[str, Any]) -> Any:
            args = {k: torch.from_numpy(v).to(device) for k, v in feeds.items()}  # the spec's inputs, by name

            def call() -> Any:
                with torch.inference_mode():
                    return model(**args)
            return call

        if device == "cuda":
            return TimedCall(make_call, sync=torch.cuda.synchronize, memory="cuda")
        return TimedCall(make_call, memory="host")
