"""Fused Triton kernels for FlurkaAttention (forward): `flurka_attention_triton` and `kernel_supports`.

Importing this package registers the fused kernel as the CUDA implementation of torch.ops.flurka.attention
(the ops package stays below this one: it never imports the kernels). It does not import triton; the
kernels are wrapped on first use.
"""

from __future__ import annotations

from .launch import HEAD_DIMS, flurka_attention_triton, kernel_config, kernel_supports, register_cuda_kernel

register_cuda_kernel()

__all__ = ["HEAD_DIMS", "flurka_attention_triton", "kernel_config", "kernel_supports"]
