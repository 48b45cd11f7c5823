"""rfa: Random Feature Attention. xh = x / (|x| + RFA_NORM_EPS), u = W_h xh, phi = RFA_SCALE [sin u, cos u]
(M = 2P), den(t) = clamp(|t|, RFA_DEN_MIN, RFA_DEN_MAX). W_h = feature_proj[h], already scaled by sigma/tau."""

from __future__ import annotations

from typing import Any

import torch

from .base import FeatureMap, FusePattern

RFA_NORM_EPS = 1e-3
RFA_SCALE = 0.1
RFA_DEN_MIN = 1.0
RFA_DEN_MAX = 1e10


def _phi(x: torch.Tensor, proj: torch.Tensor | None, attrs: dict[str, Any], is_query: bool) -> torch.Tensor:
    xh = x / (torch.linalg.vector_norm(x, dim=-1, keepdim=True) + RFA_NORM_EPS)
    u = xh @ proj.transpose(-1, -2)
    return RFA_SCALE * torch.cat([torch.sin(u), torch.cos(u)], dim=-1)


def _onnx_body(lib: Any) -> tuple[Any, tuple[Any, ...]]:
    op, heads, kv_state, merge = lib.op, lib.heads, lib.kv_state, lib.merge

    @lib.script()
    def _rfa_phi(x, w_t):
        norm = op.ReduceL2(x, op.Constant(value_ints=[-1]), keepdims=1)
        u = op.MatMul(op.Div(x, op.Add(norm, op.Constant(value_float=RFA_NORM_EPS))), w_t)
        return op.Mul(op.Concat(op.Sin(u), op.Cos(u), axis=-1), op.Constant(value_float=RFA_SCALE))

    @lib.script()
    def FlurkaAttentionRfa(query, key, value, feature_proj, num_heads: int):
        w_t = op.Transpose(op.Cast(feature_proj, to=1), perm=[0, 2, 1])  # [H, d, P]
        phq = _rfa_phi(heads(query, num_heads), w_t)
        phk = _rfa_phi(heads(key, num_heads), w_t)
        num, t = kv_state(phk, heads(value, num_heads), phq)
        den = op.Clip(op.Abs(t), op.Constant(value_float=RFA_DEN_MIN), op.Constant(value_float=RFA_DEN_MAX))
        return merge(num, den, query)

    return FlurkaAttentionRfa, (_rfa_phi,)


def _fuse_phi(op: Any, x: Any, v: dict, w_t: Any, is_query: bool) -> Any:
    norm = op.ReduceL2(x, v["l2_axes"], keepdims=1)
    u = op.MatMul(op.Div(x, op.Add(norm, v["l2_eps"])), w_t)
    return op.Mul(op.Concat(op.Sin(u), op.Cos(u), axis=-1), v["rfa_scale"])


def _check(v: dict, read: Any, num_heads: int, head_dim: int) -> tuple[dict[str, Any], Any] | str:
    ok = (read.close(read.scalar(v["l2_eps"]), RFA_NORM_EPS) and read.close(read.scalar(v["rfa_scale"]), RFA_SCALE)
          and read.close(read.scalar(v["den_min"]), RFA_DEN_MIN) and read.close(read.scalar(v["den_max"]), RFA_DEN_MAX)
          and read.axes(v["l2_axes"]) in ((-1,), (3,)))
    if not ok:
        return "rfa constants differ from the op's (docs/op-spec.md section 5)"
    proj = read.feature_proj(v["w_t"], num_heads, head_dim)
    return ({}, proj) if proj is not None else "random feature matrix is not a constant [H, d, P]"


FEATURE_MAP = FeatureMap(
    name="rfa", enum_id=2, summary="RFA_SCALE [sin u, cos u], u = W_h x / (|x| + RFA_NORM_EPS)", attributes=(),
    needs_feature_proj=True, m_formula="2P", phi_dim=lambda d, p, a: 2 * p, phi=_phi,
    den=lambda t, a: t.abs().clamp(RFA_DEN_MIN, RFA_DEN_MAX), onnx_body=_onnx_body,
    fuse=FusePattern(
        variables=("w_t", "l2_axes", "l2_eps", "rfa_scale", "den_min", "den_max"),
        phi=_fuse_phi,
        den=lambda op, t, v: op.Clip(op.Abs(t), v["den_min"], v["den_max"]),
        check=_check,
    ),
    kernel_p=lambda d, p, a: p, kernel_columns=lambda d, p, a: p,
    c_phi_dim="2 * p->num_proj", c_kernel_p="p->num_proj", c_kernel_columns="p->num_proj",
    constants={"RFA_NORM_EPS": RFA_NORM_EPS, "RFA_SCALE": RFA_SCALE, "RFA_DEN_MIN": RFA_DEN_MIN,
               "RFA_DEN_MAX": RFA_DEN_MAX},
    random_features="gaussian",
)
