"""favor: Performer FAVOR+ positive random features (softmax kernel). x' = x d^(-1/4), u = W_h x',
phi = (exp(u - |x'|^2 / 2 - c) + FAVOR_EPS) / sqrt(P), M = P, den(t) = t. c is the max of u over the row
for queries and over the whole (batch, head) block for keys."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from .base import FeatureMap, FusePattern

FAVOR_EPS = 1e-4


def positive_features(x: torch.Tensor, proj: torch.Tensor, key_constant: Callable[[torch.Tensor], torch.Tensor] | None,
                      ) -> torch.Tensor:
    """FAVOR+ features of x [B, H, N, d]: c is the row max of u for queries (key_constant None), else
    key_constant(u) (favor and favor-causal differ only there)."""
    d = x.shape[-1]
    xs = x * d ** -0.25
    u = xs @ proj.transpose(-1, -2)  # [B, H, N, d] @ [H, d, P]
    sq = 0.5 * (xs * xs).sum(-1, keepdim=True)
    c = u.amax(dim=-1, keepdim=True) if key_constant is None else key_constant(u)
    return (torch.exp(u - sq - c) + FAVOR_EPS) / math.sqrt(proj.shape[1])


def _phi(x: torch.Tensor, proj: torch.Tensor | None, attrs: dict[str, Any], is_query: bool) -> torch.Tensor:
    # keys: c over the whole (batch, head) block of keys
    return positive_features(x, proj, None if is_query else lambda u: u.amax(dim=(-2, -1), keepdim=True))


def _onnx_body(lib: Any) -> tuple[Any, tuple[Any, ...]]:
    op, heads, kv_state, merge = lib.op, lib.heads, lib.kv_state, lib.merge

    @lib.script()
    def _favor_u(x, w_t):
        """u = W x' and |x'|^2 / 2 for x' = x d^(-1/4)."""
        d = op.Cast(op.Shape(x, start=-1), to=1)
        xs = op.Mul(x, op.Pow(d, op.Constant(value_float=-0.25)))
        sq = op.Mul(op.ReduceSum(op.Mul(xs, xs), op.Constant(value_ints=[-1]), keepdims=1), op.Constant(value_float=0.5))
        return op.MatMul(xs, w_t), sq

    @lib.script()
    def FlurkaAttentionFavor(query, key, value, feature_proj, num_heads: int):
        w_t = op.Transpose(op.Cast(feature_proj, to=1), perm=[0, 2, 1])  # [H, d, P]
        inv_sqrt_p = op.Reciprocal(op.Sqrt(op.Cast(op.Shape(feature_proj, start=1, end=2), to=1)))
        floor = op.Constant(value_float=FAVOR_EPS)
        uq, sqq = _favor_u(heads(query, num_heads), w_t)
        cq = op.ReduceMax(uq, op.Constant(value_ints=[-1]), keepdims=1)  # per query row
        phq = op.Mul(op.Add(op.Exp(op.Sub(op.Sub(uq, sqq), cq)), floor), inv_sqrt_p)
        uk, sqk = _favor_u(heads(key, num_heads), w_t)
        ck = op.ReduceMax(uk, op.Constant(value_ints=[2, 3]), keepdims=1)  # over the (batch, head) key block
        phk = op.Mul(op.Add(op.Exp(op.Sub(op.Sub(uk, sqk), ck)), floor), inv_sqrt_p)
        num, t = kv_state(phk, heads(value, num_heads), phq)
        return merge(num, t, query)

    return FlurkaAttentionFavor, (_favor_u,)


def _fuse_phi(op: Any, x: Any, v: dict, w_t: Any, is_query: bool) -> Any:
    s = "q" if is_query else "k"
    xs = op.Mul(x, v[f"xs_scale_{s}"])
    sq = op.Mul(op.ReduceSum(op.Mul(xs, xs), v[f"sq_axes_{s}"], keepdims=1), v[f"half_{s}"])
    u = op.MatMul(xs, w_t)
    cmax = op.ReduceMax(u, v[f"max_axes_{s}"], keepdims=1)
    return op.Div(op.Add(op.Exp(op.Sub(op.Sub(u, sq), cmax)), v[f"floor_{s}"]), v[f"sqrt_p_{s}"])


def _check(v: dict, read: Any, num_heads: int, head_dim: int) -> tuple[dict[str, Any], Any] | str:
    for s, max_axes in (("q", ((-1,), (3,))), ("k", ((-2, -1), (2, 3)))):
        ok = (read.close(read.scalar(v[f"xs_scale_{s}"]), head_dim ** -0.25)
              and read.close(read.scalar(v[f"half_{s}"]), 0.5) and read.close(read.scalar(v[f"floor_{s}"]), FAVOR_EPS)
              and read.axes(v[f"max_axes_{s}"]) in max_axes and read.axes(v[f"sq_axes_{s}"]) in ((-1,), (3,)))
        if not ok:
            return f"favor constants ({s}) differ from the op's (docs/op-spec.md section 5)"
    proj = read.feature_proj(v["w_t"], num_heads, head_dim)
    if proj is None:
        return "random feature matrix is not a constant [H, d, P]"
    if not read.close(read.scalar(v["sqrt_p_q"]), math.sqrt(proj.shape[1])):
        return "favor normaliser is not sqrt(P)"
    return {}, proj


FEATURE_MAP = FeatureMap(
    name="favor", enum_id=3, summary="(exp(W_h x' - |x'|^2/2 - c) + FAVOR_EPS) / sqrt(P), x' = x d^(-1/4)",
    attributes=(), needs_feature_proj=True, m_formula="P", phi_dim=lambda d, p, a: p, phi=_phi,
    den=lambda t, a: t, onnx_body=_onnx_body,
    fuse=FusePattern(
        variables=("w_t", *(f"{n}_{s}" for s in "qk" for n in ("xs_scale", "sq_axes", "half", "max_axes", "floor",
                                                                "sqrt_p"))),
        phi=_fuse_phi,
        den=lambda op, t, v: t,
        check=_check,
    ),
    kernel_p=lambda d, p, a: p, kernel_columns=lambda d, p, a: p,
    c_phi_dim="p->num_proj", c_kernel_p="p->num_proj", c_kernel_columns="p->num_proj",
    constants={"FAVOR_EPS": FAVOR_EPS},
    random_features="orthogonal",
    causal=False,
)
