"""Feature maps phi and denominators of SPEC section 1, on float32 tensors shaped [B, H, N, d].

This module is the single source of truth for the feature-map table: the ONNX function bodies,
the Triton kernels and the TensorRT plugin fields are all checked against these names.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

FEATURE_MAPS: tuple[str, ...] = ("relu", "elu", "rfa", "favor")
# Feature maps that draw random features: the op's 4th input (feature_proj, [H, P, d]) is required.
NEEDS_FEATURE_PROJ: frozenset[str] = frozenset({"rfa", "favor"})
# Constants fixed by the spec (not attributes of the op).
RFA_NORM_EPS = 1e-3
RFA_SCALE = 0.1
RFA_DEN_MIN, RFA_DEN_MAX = 1.0, 1e10
FAVOR_EPS = 1e-4


def check_feature_map(name: str) -> None:
    if name not in FEATURE_MAPS:
        raise ValueError(f"unknown feature_map {name!r}; allowed: {', '.join(FEATURE_MAPS)}")


def num_features(feature_map: str, head_dim: int, num_proj: int | None) -> int:
    """M, the length of phi(x) for one head."""
    if feature_map in ("relu", "elu"):
        return head_dim
    assert num_proj is not None
    return 2 * num_proj if feature_map == "rfa" else num_proj


def _favor(x: torch.Tensor, proj: torch.Tensor, is_query: bool) -> torch.Tensor:
    d = x.shape[-1]
    xs = x * d ** -0.25
    u = xs @ proj.transpose(-1, -2)  # [B, H, N, d] @ [H, d, P]
    sq = 0.5 * (xs * xs).sum(-1, keepdim=True)
    if is_query:  # per row
        c = u.amax(dim=-1, keepdim=True)
    else:  # over the whole (batch, head) block of keys
        c = u.amax(dim=(-2, -1), keepdim=True)
    return (torch.exp(u - sq - c) + FAVOR_EPS) / math.sqrt(proj.shape[1])


def _rfa(x: torch.Tensor, proj: torch.Tensor) -> torch.Tensor:
    xh = x / (torch.linalg.vector_norm(x, dim=-1, keepdim=True) + RFA_NORM_EPS)
    u = xh @ proj.transpose(-1, -2)
    return RFA_SCALE * torch.cat([torch.sin(u), torch.cos(u)], dim=-1)


def phi(
    x: torch.Tensor,
    feature_map: str,
    feature_proj: torch.Tensor | None = None,
    *,
    is_query: bool,
    stabilizer: float = 1e-3,
) -> torch.Tensor:
    """phi(x) for x of shape [B, H, N, d]; returns [B, H, N, M]."""
    if feature_map == "relu":
        return F.relu(x) + stabilizer
    if feature_map == "elu":
        return F.elu(x) + 1.0
    if feature_map == "rfa":
        return _rfa(x, feature_proj)
    if feature_map == "favor":
        return _favor(x, feature_proj, is_query)
    check_feature_map(feature_map)
    raise AssertionError("unreachable")


def denominator(t: torch.Tensor, feature_map: str, eps: float = 1e-6) -> torch.Tensor:
    """den(t) for t = phi(q) . z."""
    if feature_map == "elu":
        return t + eps
    if feature_map == "rfa":
        return t.abs().clamp(RFA_DEN_MIN, RFA_DEN_MAX)
    return t
