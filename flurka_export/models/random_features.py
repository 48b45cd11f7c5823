"""Random feature matrices for rfa and favor, drawn once from a seed (never redrawn in eval/export)."""

from __future__ import annotations

import torch

from ..ops.feature_maps import get


def gaussian_features(num_heads: int, num_features: int, head_dim: int, generator: torch.Generator) -> torch.Tensor:
    """RFA: W_h ~ N(0, I), shape [H, P, d] (sigma = tau = 1; scale it to change the kernel width)."""
    return torch.randn(num_heads, num_features, head_dim, generator=generator)


def orthogonal_features(num_heads: int, num_features: int, head_dim: int, generator: torch.Generator) -> torch.Tensor:
    """FAVOR+: orthogonal random features (blocks of orthogonal rows, row norms chi(d) distributed)."""
    heads = []
    for _ in range(num_heads):
        blocks = []
        for _ in range(-(-num_features // head_dim)):
            q, _ = torch.linalg.qr(torch.randn(head_dim, head_dim, generator=generator))
            blocks.append(q.T)
        w = torch.cat(blocks)[:num_features]
        norms = torch.randn(num_features, head_dim, generator=generator).norm(dim=1, keepdim=True)
        heads.append(w * norms)
    return torch.stack(heads)


# FeatureMap.random_features -> how to draw them (tests check every feature map with feature_proj has one).
DRAWS = {"gaussian": gaussian_features, "orthogonal": orthogonal_features}


def draw_feature_proj(feature_map: str, num_heads: int, num_features: int, head_dim: int, seed: int) -> torch.Tensor:
    """feature_proj [H, P, d] of `feature_map`, P = num_features, drawn from `seed`."""
    kind = get(feature_map).random_features
    if kind is None:
        raise ValueError(f"feature_map {feature_map!r} has no random features")
    return DRAWS[kind](num_heads, num_features, head_dim, torch.Generator().manual_seed(seed))
