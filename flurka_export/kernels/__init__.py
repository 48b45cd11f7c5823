"""Fused Triton kernels for FlurkaAttention (placeholder until the kernel issue lands)."""

from __future__ import annotations

import torch


def kernel_supports(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, num_heads: int) -> bool:
    return False


def flurka_attention_triton(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201
    raise NotImplementedError("the fused Triton kernel is not built yet")
