"""elu: phi(x) = elu(x) + 1, M = d, den(t) = t + eps (the Linear Transformer's feature map)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .base import EPS, FeatureMap, FusePattern


def _phi(x: torch.Tensor, proj: torch.Tensor | None, attrs: dict[str, Any], is_query: bool) -> torch.Tensor:
    return F.elu(x) + 1.0


def _onnx_body(lib: Any) -> tuple[Any, tuple[Any, ...]]:
    op, heads, kv_state, merge = lib.op, lib.heads, lib.kv_state, lib.merge

    @lib.script()
    def FlurkaAttentionElu(query, key, value, num_heads: int, eps: float = EPS.default):
        one = op.Constant(value_float=1.0)
        phq = op.Add(op.Elu(heads(query, num_heads)), one)
        phk = op.Add(op.Elu(heads(key, num_heads)), one)
        num, t = kv_state(phk, heads(value, num_heads), phq)
        return merge(num, op.Add(t, op.Constant(value_float=eps)), query)

    return FlurkaAttentionElu, ()


def _check(v: dict, read: Any, num_heads: int, head_dim: int) -> tuple[dict[str, Any], None] | str:
    eps = read.scalar(v["den_eps"])
    if not (read.close(read.scalar(v["one_q"]), 1.0) and read.close(read.scalar(v["one_k"]), 1.0)) or eps is None:
        return "not elu(x) + 1 with a constant eps"
    return {"eps": eps}, None


FEATURE_MAP = FeatureMap(
    name="elu", enum_id=1, summary="elu(x) + 1", attributes=(EPS,), needs_feature_proj=False,
    m_formula="d", phi_dim=lambda d, p, a: d, phi=_phi, den=lambda t, a: t + a["eps"], onnx_body=_onnx_body,
    fuse=FusePattern(
        variables=("one_q", "one_k", "den_eps"),
        phi=lambda op, x, v, w_t, is_query: op.Add(op.Elu(x), v["one_q" if is_query else "one_k"]),
        den=lambda op, t, v: op.Add(t, v["den_eps"]),
        check=_check,
    ),
    kernel_p=lambda d, p, a: 1, kernel_columns=lambda d, p, a: d,
    c_phi_dim="p->head_dim", c_kernel_p="1", c_kernel_columns="p->head_dim",
)
