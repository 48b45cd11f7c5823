"""PyTorch: the reference every other runtime is compared against (the op's CPU reference, or the
fused Triton kernel on CUDA)."""

from __future__ import annotations

from typing import Any

from .base import RunRequest, Runtime, RuntimeUnavailable


class TorchRuntime(Runtime):
    name = "torch"
    description = "PyTorch (reference op on CPU, fused Triton kernel on CUDA); float32 reference"

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
