"""relu: phi(x) = max(x, 0) + stabilizer, M = d, den(t) = t (Performer's generalized ReLU kernel)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .base import STABILIZER, FeatureMap, FusePattern


def _phi(x: torch.Tensor, proj: torch.Tensor | None, attrs: dict[str, Any], is_query: bool) -> torch.Tensor:
    return F.relu(x) + attrs["stabilizer"]


def _onnx_body(lib: Any) -> tuple[Any, tuple[Any, ...]]:
    op, heads, kv_state, merge = lib.op, lib.heads, lib.kv_state, lib.merge

    @lib.script()
    def FlurkaAttentionRelu(query, key, value, num_heads: int, stabilizer: float = STABILIZER.default):
        stab = op.Constant(value_float=stabilizer)
        phq = op.Add(op.Relu(heads(query, num_heads)), stab)
        phk = op.Add(op.Relu(heads(key, num_heads)), stab)
        num, t = kv_state(phk, heads(value, num_heads), phq)
        return merge(num, t, query)

    return FlurkaAttentionRelu, ()


def _check(v: dict, read: Any, num_heads: int, head_dim: int) -> tuple[dict[str, Any], None] | str:
    stab = read.scalar(v["stab_q"])
    if stab is None or not read.close(read.scalar(v["stab_k"]), stab):
        return "relu stabilizer is not one scalar constant"
    return {"stabilizer": stab}, None


FEATURE_MAP = FeatureMap(
    name="relu", enum_id=0, summary="max(x, 0) + stabilizer", attributes=(STABILIZER,), needs_feature_proj=False,
    m_formula="d", phi_dim=lambda d, p, a: d, phi=_phi, den=lambda t, a: t, onnx_body=_onnx_body,
    fuse=FusePattern(
        variables=("stab_q", "stab_k"),
        phi=lambda op, x, v, w_t, is_query: op.Add(op.Relu(x), v["stab_q" if is_query else "stab_k"]),
        den=lambda op, t, v: t,
        check=_check,
    ),
    kernel_p=lambda d, p, a: 1, kernel_columns=lambda d, p, a: d,
    c_phi_dim="p->head_dim", c_kernel_p="1", c_kernel_columns="p->head_dim",
)
