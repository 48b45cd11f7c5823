"""Fused Triton kernels for FlurkaAttention (forward): `flurka_attention_triton` and `kernel_supports`.

Importing this package does not import triton; the kernels are wrapped on first use.
"""

from __future__ import annotations

from .launch import HEAD_DIMS, flurka_attention_triton, kernel_config, kernel_supports

__all__ = ["HEAD_DIMS", "flurka_attention_triton", "kernel_config", "kernel_supports"]
