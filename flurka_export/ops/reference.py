"""Plain PyTorch reference of FlurkaAttention (docs/op-spec.md section 1, step 3): the semantics
everything else (ONNX body, Triton kernel, TensorRT plugin) is compared against."""

from __future__ import annotations

from typing import Any

import torch

from .feature_maps import DEFAULTS, denominator, get, phi

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def _split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    b, n, hd = x.shape
    return x.reshape(b, n, num_heads, hd // num_heads).transpose(1, 2)


def validate_inputs(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    feature_proj: torch.Tensor | None,
    num_heads: int,
    feature_map: str,
    **attributes: Any,
) -> None:
    """Raise ValueError naming the offending shape or value (attributes: those of `feature_map`)."""
    fmap = get(feature_map)
    fmap.attribute_values(attributes)
    for name, t in (("query", query), ("key", key), ("value", value)):
        if t.dim() != 3:
            raise ValueError(f"{name} must have rank 3 [B, N, H*d], got shape {tuple(t.shape)}")
        if t.dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"{name} has dtype {t.dtype}; allowed: float32, float16, bfloat16 (float64 for tests)")
    if not isinstance(num_heads, int) or num_heads < 1:
        raise ValueError(f"num_heads must be a positive int, got {num_heads!r}")
    if query.dtype != key.dtype or query.dtype != value.dtype:
        raise TypeError(f"query, key, value must share one dtype, got {query.dtype}, {key.dtype}, {value.dtype}")
    for name, t in (("query", query), ("key", key), ("value", value)):
        if t.shape[-1] % num_heads:
            raise ValueError(f"{name} last dim {t.shape[-1]} is not divisible by num_heads={num_heads}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"query and key must have the same H*d, got {query.shape[-1]} and {key.shape[-1]}")
    if key.shape[:2] != value.shape[:2]:
        raise ValueError(
            f"key and value must have the same [B, Nk], got {tuple(key.shape[:2])} and {tuple(value.shape[:2])}"
        )
    if query.shape[0] != key.shape[0]:
        raise ValueError(f"query and key batch differ: {query.shape[0]} vs {key.shape[0]}")
    if key.shape[1] < 1:
        raise ValueError("key length Nk must be at least 1")
    if fmap.needs_feature_proj:
        if feature_proj is None:
            raise ValueError(f"feature_map {feature_map!r} needs feature_proj of shape [H, P, d]; none given")
        d = query.shape[-1] // num_heads
        if feature_proj.dim() != 3 or feature_proj.shape[0] != num_heads or feature_proj.shape[2] != d:
            raise ValueError(
                f"feature_proj must have shape [H={num_heads}, P, d={d}], got {tuple(feature_proj.shape)}"
            )


def flurka_attention_reference(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    feature_proj: torch.Tensor | None = None,
    *,
    num_heads: int,
    feature_map: str,
    stabilizer: float = DEFAULTS["stabilizer"],
    eps: float = DEFAULTS["eps"],
    nu: int = DEFAULTS["nu"],  # type: ignore[assignment]
) -> torch.Tensor:
    """out_ih = phi(Q_ih) S_h / den(phi(Q_ih) . z_h), S and z accumulated in float32 (float64 stays)."""
    acc = torch.float64 if query.dtype == torch.float64 else torch.float32
    b, nq, _ = query.shape
    q = _split_heads(query.to(acc), num_heads)
    k = _split_heads(key.to(acc), num_heads)
    v = _split_heads(value.to(acc), num_heads)
    proj = feature_proj.to(acc) if feature_proj is not None else None
    attrs = {"stabilizer": stabilizer, "eps": eps, "nu": nu}
    phq = phi(q, feature_map, proj, is_query=True, **attrs)
    phk = phi(k, feature_map, proj, is_query=False, **attrs)
    s = phk.transpose(-1, -2) @ v  # [B, H, M, dv]
    z = phk.sum(dim=-2, keepdim=True)  # [B, H, 1, M]
    num = phq @ s  # [B, H, Nq, dv]
    den = denominator(phq @ z.transpose(-1, -2), feature_map, **attrs)  # [B, H, Nq, 1], no [Nq, M] temporary
    out = (num / den).transpose(1, 2).reshape(b, nq, -1)
    return out.to(query.dtype)
