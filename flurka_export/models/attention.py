"""Self-attention for every attention kind (docs/op-spec.md section 6), in the authors' order: downsample X,
then project."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import NEEDS_FEATURE_PROJ, flurka_attention
from .config import FlurkaConfig, is_low_rank
from .random_features import draw_feature_proj


class SequenceTooLongError(ValueError):
    pass


def check_seq_len(n: int, max_seq_len: int) -> None:
    if n > max_seq_len:
        raise SequenceTooLongError(
            f"sequence length {n} exceeds the model's max_seq_len (N_max) {max_seq_len}; "
            f"position embeddings and the low-rank projections E_K, E_V cover N_max tokens; longer inputs are refused, never truncated"
        )


class FlurkaSelfAttention(nn.Module):
    def __init__(self, config: FlurkaConfig, layer_idx: int = 0) -> None:
        super().__init__()
        d_model, h = config.hidden_size, config.num_heads
        self.kind = config.attention
        self.num_heads = h
        self.max_seq_len = config.max_seq_len
        self.feature_map = config.feature_map
        self.stabilizer = config.stabilizer
        self.eps = config.eps
        self.nu = config.nu
        self.dropout = config.dropout
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        seed = config.seed * 100003 + layer_idx
        if is_low_rank(self.kind):
            g = torch.Generator().manual_seed(seed)
            k, n_max = config.low_rank, config.max_seq_len
            # E_K, E_V ~ N(0, (1/k)^2), separate for keys and values, shared over heads and batch.
            self.E_K = nn.Parameter(torch.randn(k, n_max, generator=g) / k)
            self.E_V = nn.Parameter(torch.randn(k, n_max, generator=g) / k)
        if self.feature_map in NEEDS_FEATURE_PROJ:
            proj = draw_feature_proj(self.feature_map, h, config.num_features, config.head_dim, seed + 7919)
            self.register_buffer("feature_proj", proj)
        else:
            self.feature_proj = None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: [B, N, D]; mask: [B, N] with 1 for real tokens (key padding mask)."""
        b, n, _ = x.shape
        check_seq_len(n, self.max_seq_len)
        xm = x if mask is None else x * mask.unsqueeze(-1).to(x.dtype)
        q = self.query(x)
        if is_low_rank(self.kind):
            # Step 1: shorten the sequence first (k.D^2 projection cost instead of N.D^2).
            xk = self.E_K[:, :n].to(x.dtype) @ xm  # [k, N] @ [B, N, D] -> [B, k, D]
            xv = self.E_V[:, :n].to(x.dtype) @ xm
        else:
            xk = xv = xm
        k, v = self.key(xk), self.value(xv)
        if self.feature_map is not None:
            ctx = flurka_attention(
                q, k, v, self.feature_proj,
                num_heads=self.num_heads, feature_map=self.feature_map, stabilizer=self.stabilizer, eps=self.eps, nu=self.nu,
            )
        else:
            ctx = self._softmax(q, k, v, mask if self.kind == "softmax" else None)
        return self.out(ctx)

    def _softmax(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, nq, dm = q.shape
        h = self.num_heads

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, t.shape[1], h, dm // h).transpose(1, 2)

        attn_mask = None if mask is None else mask[:, None, None, :].to(torch.bool)
        ctx = F.scaled_dot_product_attention(
            heads(q), heads(k), heads(v), attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )
        return ctx.transpose(1, 2).reshape(b, nq, dm)
