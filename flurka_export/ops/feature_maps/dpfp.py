"""dpfp: deterministic parameter-free projection (Schlag, Irie, Schmidhuber 2021, "Linear Transformers Are
Secretly Fast Weight Programmers"). r(x) = [relu(x), relu(-x)] (2d features), phi(x) = concat over
j = 1..nu of r(x) * roll(r(x), j), so M = 2 d nu; den(t) = t + eps.

roll(r, j)[i] = r[(i - j) mod 2d], so phi = r[ia] * r[ib] with ia = [0..2d-1] repeated nu times and
ib[(j-1) 2d + i] = (i - j) mod 2d: two gathers with constant indices, the same in every backend.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .base import EPS, NU, FeatureMap, FusePattern


@functools.cache
def gather_indices(two_d: int, nu: int) -> tuple[np.ndarray, np.ndarray]:
    """(ia, ib), each of length 2d * nu: phi = r[ia] * r[ib]."""
    i = np.arange(two_d)
    j = np.arange(1, nu + 1)
    return np.tile(i, nu), ((i[None, :] - j[:, None]) % two_d).reshape(-1)


def _phi(x: torch.Tensor, proj: torch.Tensor | None, attrs: dict[str, Any], is_query: bool) -> torch.Tensor:
    r = torch.cat([F.relu(x), F.relu(-x)], dim=-1)
    ia, ib = (torch.from_numpy(a).to(x.device) for a in gather_indices(r.shape[-1], attrs["nu"]))
    return torch.index_select(r, -1, ia) * torch.index_select(r, -1, ib)


def _onnx_body(lib: Any) -> tuple[Any, tuple[Any, ...]]:
    op, heads, kv_state, merge = lib.op, lib.heads, lib.kv_state, lib.merge

    @lib.script()
    def _dpfp_phi(x, nu: int):
        r = op.Concat(op.Relu(x), op.Relu(op.Neg(x)), axis=-1)
        two_d = op.Shape(r, start=-1)  # [1]
        zero = op.Constant(value_int=0)
        one = op.Constant(value_int=1)
        i = op.Range(zero, op.Squeeze(two_d), one)  # [2d]
        j = op.Range(one, op.Add(op.Constant(value_int=nu), one), one)  # [nu]
        rows = op.Shape(j)
        ia = op.Reshape(op.Expand(op.Unsqueeze(i, zero), op.Concat(rows, two_d, axis=0)), op.Constant(value_ints=[-1]))
        ib = op.Reshape(op.Mod(op.Sub(op.Unsqueeze(i, zero), op.Unsqueeze(j, one)), two_d),
                        op.Constant(value_ints=[-1]))
        return op.Mul(op.Gather(r, ia, axis=-1), op.Gather(r, ib, axis=-1))

    @lib.script()
    def FlurkaAttentionDpfp(query, key, value, num_heads: int, eps: float = EPS.default,
                            nu: int = NU.default):
        phq = _dpfp_phi(heads(query, num_heads), nu=nu)
        phk = _dpfp_phi(heads(key, num_heads), nu=nu)
        num, t = kv_state(phk, heads(value, num_heads), phq)
        return merge(num, op.Add(t, op.Constant(value_float=eps)), query)

    return FlurkaAttentionDpfp, (_dpfp_phi,)


def _fuse_phi(op: Any, x: Any, v: dict, w_t: Any, is_query: bool) -> Any:
    s = "q" if is_query else "k"
    r = op.Concat(op.Relu(x), op.Relu(op.Neg(x)), axis=-1)
    return op.Mul(op.Gather(r, v[f"ia_{s}"], axis=-1), op.Gather(r, v[f"ib_{s}"], axis=-1))


def _check(v: dict, read: Any, num_heads: int, head_dim: int) -> tuple[dict[str, Any], None] | str:
    eps = read.scalar(v["den_eps"])
    if eps is None:
        return "dpfp denominator is not t + a constant eps"
    two_d = 2 * head_dim
    found = set()
    for s in "qk":
        ia, ib = read.const(v[f"ia_{s}"]), read.const(v[f"ib_{s}"])
        if ia is None or ib is None or ia.ndim != 1 or ia.shape != ib.shape or ia.size % two_d or not ia.size:
            return "dpfp gather indices are not constant vectors of length 2 d nu"
        nu = ia.size // two_d
        want_a, want_b = gather_indices(two_d, nu)
        if not (np.array_equal(ia, want_a) and np.array_equal(ib, want_b)):
            return "dpfp gather indices are not r * roll(r, j) for j = 1..nu"
        found.add(nu)
    if len(found) != 1:
        return "dpfp uses different nu for queries and keys"
    return {"eps": eps, "nu": found.pop()}, None


FEATURE_MAP = FeatureMap(
    name="dpfp", enum_id=4, summary="concat_j r(x) * roll(r(x), j), r(x) = [relu(x), relu(-x)]", attributes=(EPS, NU),
    needs_feature_proj=False, m_formula="2 d nu", phi_dim=lambda d, p, a: 2 * d * a["nu"], phi=_phi,
    den=lambda t, a: t + a["eps"], onnx_body=_onnx_body,
    fuse=FusePattern(
        variables=("ia_q", "ib_q", "ia_k", "ib_k", "den_eps"),
        phi=_fuse_phi,
        den=lambda op, t, v: op.Add(t, v["den_eps"]),
        check=_check,
    ),
    kernel_p=lambda d, p, a: a["nu"], kernel_columns=lambda d, p, a: 2 * d * a["nu"],
    c_phi_dim="2 * p->head_dim * p->nu", c_kernel_p="p->nu", c_kernel_columns="2 * p->head_dim * p->nu",
)
