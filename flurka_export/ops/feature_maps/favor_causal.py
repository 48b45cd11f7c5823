"""favor-causal: favor's features with a key-side constant that reads no key, so causal kernel attention
(ops.causal) can use them. x' = x d^(-1/4), u = W_h x', phi = (exp(u - |x'|^2 / 2 - c) + FAVOR_EPS) / sqrt(P),
M = P, den(t) = t. c is the max of u over the row for queries, as in favor; for keys it is the fixed
c_h = max_p |W_hp|^2 / 2 (W_h = feature_proj[h]; the d^(-1/4) scaling is on x). Since
u_p - |x'|^2 / 2 = |W_hp|^2 / 2 - |x' - W_hp|^2 / 2, every key exponent is <= 0: no overflow, whatever the key.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .base import FeatureMap, FusePattern
from .favor import FAVOR_EPS, positive_features


def key_constant(proj: torch.Tensor) -> torch.Tensor:
    """c_h = max_p |W_hp|^2 / 2, shaped [H, 1, 1] to broadcast over [B, H, N, P]."""
    return (0.5 * (proj * proj).sum(-1)).amax(-1).reshape(-1, 1, 1)


def _phi(x: torch.Tensor, proj: torch.Tensor | None, attrs: dict[str, Any], is_query: bool) -> torch.Tensor:
    return positive_features(x, proj, None if is_query else lambda u: key_constant(proj))


def _onnx_body(lib: Any) -> tuple[Any, tuple[Any, ...]]:
    op, heads, kv_state, merge = lib.op, lib.heads, lib.kv_state, lib.merge

    @lib.script()
    def _favor_causal_u(x, w_t):
        """u = W x' and |x'|^2 / 2 for x' = x d^(-1/4)."""
        d = op.Cast(op.Shape(x, start=-1), to=1)
        xs = op.Mul(x, op.Pow(d, op.Constant(value_float=-0.25)))
        sq = op.Mul(op.ReduceSum(op.Mul(xs, xs), op.Constant(value_ints=[-1]), keepdims=1), op.Constant(value_float=0.5))
        return op.MatMul(xs, w_t), sq

    @lib.script()
    def FlurkaAttentionFavorCausal(query, key, value, feature_proj, num_heads: int):
        w_t = op.Transpose(op.Cast(feature_proj, to=1), perm=[0, 2, 1])  # [H, d, P]
        inv_sqrt_p = op.Reciprocal(op.Sqrt(op.Cast(op.Shape(feature_proj, start=1, end=2), to=1)))
        floor = op.Constant(value_float=FAVOR_EPS)
        uq, sqq = _favor_causal_u(heads(query, num_heads), w_t)
        cq = op.ReduceMax(uq, op.Constant(value_ints=[-1]), keepdims=1)  # per query row
        phq = op.Mul(op.Add(op.Exp(op.Sub(op.Sub(uq, sqq), cq)), floor), inv_sqrt_p)
        uk, sqk = _favor_causal_u(heads(key, num_heads), w_t)
        half_norms = op.Mul(op.ReduceSum(op.Mul(w_t, w_t), op.Constant(value_ints=[1]), keepdims=1),
                            op.Constant(value_float=0.5))  # [H, 1, P]
        ck = op.ReduceMax(half_norms, op.Constant(value_ints=[2]), keepdims=1)  # [H, 1, 1]: reads no key
        phk = op.Mul(op.Add(op.Exp(op.Sub(op.Sub(uk, sqk), ck)), floor), inv_sqrt_p)
        num, t = kv_state(phk, heads(value, num_heads), phq)
        return merge(num, t, query)

    return FlurkaAttentionFavorCausal, (_favor_causal_u,)


def _fuse_phi(op: Any, x: Any, v: dict, w_t: Any, is_query: bool) -> Any:
    s = "q" if is_query else "k"
    xs = op.Mul(x, v[f"xs_scale_{s}"])
    sq = op.Mul(op.ReduceSum(op.Mul(xs, xs), v[f"sq_axes_{s}"], keepdims=1), v[f"half_{s}"])
    u = op.MatMul(xs, w_t)
    c = op.ReduceMax(u, v["max_axes_q"], keepdims=1) if is_query else v["c_k"]
    return op.Div(op.Add(op.Exp(op.Sub(op.Sub(u, sq), c)), v[f"floor_{s}"]), v[f"sqrt_p_{s}"])


def _check(v: dict, read: Any, num_heads: int, head_dim: int) -> tuple[dict[str, Any], Any] | str:
    for s in "qk":
        ok = (read.close(read.scalar(v[f"xs_scale_{s}"]), head_dim ** -0.25)
              and read.close(read.scalar(v[f"half_{s}"]), 0.5) and read.close(read.scalar(v[f"floor_{s}"]), FAVOR_EPS)
              and read.axes(v[f"sq_axes_{s}"]) in ((-1,), (3,)))
        if not ok:
            return f"favor-causal constants ({s}) differ from the op's (docs/op-spec.md section 5)"
    if read.axes(v["max_axes_q"]) not in ((-1,), (3,)):
        return "favor-causal query constant is not a row max"
    proj = read.feature_proj(v["w_t"], num_heads, head_dim)
    if proj is None:
        return "random feature matrix is not a constant [H, d, P]"
    c_k = read.const(v["c_k"])
    want = key_constant(torch.from_numpy(proj.astype(np.float64))).numpy()
    if c_k is None or c_k.size != num_heads or not np.allclose(c_k.reshape(-1), want.reshape(-1), rtol=1e-5, atol=0):
        return "favor-causal key constant is not max_p |W_hp|^2 / 2"
    if not read.close(read.scalar(v["sqrt_p_q"]), math.sqrt(proj.shape[1])):
        return "favor normaliser is not sqrt(P)"
    return {}, proj


FEATURE_MAP = FeatureMap(
    name="favor-causal", enum_id=5,
    summary="favor with a key constant c_h = max_p |W_hp|^2 / 2 that reads no key (usable causally)",
    attributes=(), needs_feature_proj=True, m_formula="P", phi_dim=lambda d, p, a: p, phi=_phi,
    den=lambda t, a: t, onnx_body=_onnx_body,
    fuse=FusePattern(
        variables=("w_t", "max_axes_q", "c_k",
                   *(f"{n}_{s}" for s in "qk" for n in ("xs_scale", "sq_axes", "half", "floor", "sqrt_p"))),
        phi=_fuse_phi,
        den=lambda op, t, v: t,
        check=_check,
    ),
    kernel_p=lambda d, p, a: p, kernel_columns=lambda d, p, a: p,
    c_phi_dim="p->num_proj", c_kernel_p="p->num_proj", c_kernel_columns="p->num_proj",
    random_features="orthogonal",
)
