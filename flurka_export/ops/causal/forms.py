"""The three forms of the causal core (docs/op-spec.md, "Causal kernel attention"), in the shape of
flash-linear-attention's ops: `naive` (masked O(T^2)), `chunked` (prefill: masked products inside a chunk of
C tokens, the state between chunks) and `recurrent` (token by token).

Each takes phi(q), phi(k) [B, H, T, M], v1 = [v, 1] [B, H, T, E] (E = dv + 1: the ones column carries z)
and the state [B, H, M, E], all in one float dtype, and returns (o [B, H, T, E], the new state):
S_t = S_{t-1} + phi(k_t)^T v1_t, o_t = phi(q_t) S_t (inclusive: token t sees itself).
Masks are applied with torch.where, never by multiplying, so a non-finite entry above the diagonal
cannot leak.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _tril(n: int, device: torch.device) -> torch.Tensor:
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


def naive(phq: torch.Tensor, phk: torch.Tensor, v1: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """O(T^2): o = phi(q) S_0 + tril(phi(q) phi(k)^T) v1."""
    scores = torch.where(_tril(phq.shape[-2], phq.device), phq @ phk.transpose(-1, -2), 0.0)
    return phq @ state + scores @ v1, state + phk.transpose(-1, -2) @ v1


def chunked(phq: torch.Tensor, phk: torch.Tensor, v1: torch.Tensor, state: torch.Tensor,
            chunk_size: int = 64) -> tuple[torch.Tensor, ...]:
    """Chunk-parallel prefill: T is padded to a multiple of C with zero rows (a zero phi(k) adds nothing);
    chunk j sees the state after chunks 0..j-1 (an exclusive cumulative sum of each chunk's phi(k)^T v1)
    and its own keys through a masked C x C product."""
    b, h, t, m = phq.shape
    e = v1.shape[-1]
    c = max(1, min(int(chunk_size), t))
    n = -(-t // c)
    pad = (0, 0, 0, n * c - t)
    q = F.pad(phq, pad).reshape(b, h, n, c, m)
    k = F.pad(phk, pad).reshape(b, h, n, c, m)
    v = F.pad(v1, pad).reshape(b, h, n, c, e)
    kv = k.transpose(-1, -2) @ v  # [B, H, n, M, E]: each chunk's contribution
    before = torch.cumsum(torch.cat([torch.zeros_like(kv[:, :, :1]), kv[:, :, :-1]], dim=2), dim=2)
    starts = state.unsqueeze(2) + before  # the state each chunk starts from
    intra = torch.where(_tril(c, phq.device), q @ k.transpose(-1, -2), 0.0) @ v
    o = (q @ starts + intra).reshape(b, h, n * c, e)[:, :, :t]
    return o, starts[:, :, -1] + kv[:, :, -1]


def recurrent(phq: torch.Tensor, phk: torch.Tensor, v1: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Token by token, as a decoder runs (T = 1 per call in generation)."""
    outs = []
    for i in range(phq.shape[-2]):
        state = state + phk[:, :, i:i + 1].transpose(-1, -2) @ v1[:, :, i:i + 1]
        outs.append(phq[:, :, i:i + 1] @ state)
    return torch.cat(outs, dim=2), state


FORMS = {"naive": naive, "chunked": chunked, "recurrent": recurrent}
