"""Triton source of the fused FlurkaAttention forward (docs/op-spec.md section 1, step 3).

Three kernels, all on contiguous [B, N, H*d] tensors:

1. `favor_key_max` (favor only): c[b, h] = max over all keys and features of u = W_h k'.
2. `kv_state`: S[b, h] = sum_j phi(K_j)^T V_j  ([M, dv]) and z[b, h] = sum_j phi(K_j) ([M]), float32,
   one program per (batch*head, feature tile), looping over key tiles (any key length).
3. `query_out`: one pass over Q and one over the output: phi(Q_tile) @ S with tl.dot, divided by
   den(phi(Q_tile) . z). favor's per-row max is handled online across feature tiles (flash-attention
   style running max), so the Q tile is read once.

The functions here are plain Python (no decorator): `bind_kernels(wrap)` wraps every kernel and helper
with `wrap` (JITFunction for the GPU and the ahead-of-time build, InterpretedFunction for CPU tensors)
in a namespace of its own, so helpers call helpers of the same kind whatever TRITON_INTERPRET says.

FMAP is the feature map's enum id from the registry (ops/feature_maps, = the C API's flurka_feature_map_t);
P is FeatureMap.kernel_p: the random features for rfa and favor, nu for dpfp, 1 otherwise.
Index math inside one batch element is int32 (the launcher refuses N*H*d >= 2**31); batch offsets are int64.
Dot precision: F32 (float32 inputs) uses 3xTF32 everywhere (float32 accuracy on tensor cores; plain
FMA dots spill badly at these tile sizes). Half inputs: u = x W^T on the raw half inputs (exact
products, float32 sums), and the phi dots in TF32 on float32 operands, since S may not fit fp16.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import triton.language as tl

from ..ops.feature_maps import favor, rfa
from . import flurka_fwd_maps as maps
from .flurka_fwd_maps import (
    FMAP_FAVOR,
    FMAP_FAVOR_CAUSAL,
    FMAP_RFA,
    favor_causal_key_c,
    kv_direct,
    kv_favor,
    kv_rfa,
    load_rows,
    out_direct,
    out_favor,
    out_rfa,
    phi_dim,
    proj_dot,
)

SUPPORTED: tuple[str, ...] = ("relu", "elu", "rfa", "favor", "dpfp", "favor-causal")  # tests check this equals the registry


def favor_key_max(k_ptr, w_ptr, c_ptr, H, Nk, P, D: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_F: tl.constexpr,
                  F32: tl.constexpr, UPCAST: tl.constexpr):
    bh = tl.program_id(0)
    b = bh // H
    h = bh % H
    offs_d = tl.arange(0, D)
    offs_k = tl.arange(0, BLOCK_K)
    k_base = k_ptr + b.to(tl.int64) * Nk * H * D + h * D
    scale = tl.sqrt(1.0 / tl.sqrt(D * 1.0))  # u uses x' = x d^-1/4
    m = tl.full([BLOCK_K], float("-inf"), tl.float32)
    for f0 in range(0, P, BLOCK_F):
        offs_f = f0 + tl.arange(0, BLOCK_F)
        fmask = offs_f < P
        w = tl.load(w_ptr + h * P * D + offs_f[:, None] * D + offs_d[None, :], mask=fmask[:, None], other=0.0)
        for k0 in range(0, Nk, BLOCK_K):
            rows = k0 + offs_k
            kmask = rows < Nk
            kt = load_rows(k_base, rows, kmask, H * D, D)
            u = proj_dot(kt, w, F32, UPCAST)
            u = tl.where(kmask[:, None] & fmask[None, :], u * scale, float("-inf"))
            m = tl.maximum(m, tl.max(u, axis=1))
    tl.store(c_ptr + bh, tl.max(m, axis=0))


def kv_state(k_ptr, v_ptr, w_ptr, c_ptr, s_ptr, z_ptr, H, Nk, P, stabilizer,
             FMAP: tl.constexpr, D: tl.constexpr, DV: tl.constexpr, BLOCK_K: tl.constexpr,
             BLOCK_F: tl.constexpr, F32: tl.constexpr, UPCAST: tl.constexpr):
    bh = tl.program_id(0)
    b = bh // H
    h = bh % H
    k_base = k_ptr + b.to(tl.int64) * Nk * H * D + h * D
    v_base = v_ptr + b.to(tl.int64) * Nk * H * DV + h * DV
    w_base = w_ptr + h * P * D
    M = phi_dim(D, P, FMAP)
    s_base = s_ptr + bh.to(tl.int64) * M * DV
    z_base = z_ptr + bh.to(tl.int64) * M
    offs_f = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)  # this program's feature tile
    if FMAP == FMAP_RFA:
        kv_rfa(k_base, v_base, w_base, s_base, z_base, offs_f, H, Nk, P, D, DV, BLOCK_K, BLOCK_F, F32, UPCAST)
    elif FMAP == FMAP_FAVOR:
        c = tl.load(c_ptr + bh)
        kv_favor(k_base, v_base, w_base, c, s_base, z_base, offs_f, H, Nk, P, D, DV, BLOCK_K, BLOCK_F, F32, UPCAST)
    elif FMAP == FMAP_FAVOR_CAUSAL:  # favor's keys with c_h = max_p |W_hp|^2 / 2 (no key max kernel)
        c = favor_causal_key_c(w_base, P, D, BLOCK_F)
        kv_favor(k_base, v_base, w_base, c, s_base, z_base, offs_f, H, Nk, P, D, DV, BLOCK_K, BLOCK_F, F32, UPCAST)
    else:  # the maps computed from x alone (phi_direct): relu, elu, dpfp
        kv_direct(k_base, v_base, s_base, z_base, offs_f, H, Nk, M, stabilizer, FMAP, D, DV, BLOCK_K, BLOCK_F, F32)


def query_out(q_ptr, w_ptr, s_ptr, z_ptr, o_ptr, H, Nq, P, stabilizer, eps,
              FMAP: tl.constexpr, D: tl.constexpr, DV: tl.constexpr, BLOCK_N: tl.constexpr,
              BLOCK_F: tl.constexpr, F32: tl.constexpr, UPCAST: tl.constexpr):
    pid_n = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rmask = rows < Nq
    q_base = q_ptr + b.to(tl.int64) * Nq * H * D + h * D
    w_base = w_ptr + h * P * D
    M = phi_dim(D, P, FMAP)
    s_base = s_ptr + bh.to(tl.int64) * M * DV
    z_base = z_ptr + bh.to(tl.int64) * M
    if FMAP == FMAP_RFA:
        num, den = out_rfa(q_base, rows, rmask, w_base, s_base, z_base, H, P, D, DV, BLOCK_N, BLOCK_F, F32, UPCAST)
    elif FMAP == FMAP_FAVOR or FMAP == FMAP_FAVOR_CAUSAL:  # the same query side
        num, den = out_favor(q_base, rows, rmask, w_base, s_base, z_base, H, P, D, DV, BLOCK_N, BLOCK_F, F32, UPCAST)
    else:  # the maps computed from x alone (phi_direct): relu, elu, dpfp
        num, den = out_direct(q_base, rows, rmask, s_base, z_base, H, M, stabilizer, eps, FMAP, D, DV, BLOCK_N,
                              BLOCK_F, F32)
    out = num / tl.where(rmask, den, 1.0)[:, None]  # rows past Nq are not stored; keep them finite
    o_ptrs = o_ptr + b.to(tl.int64) * Nq * H * DV + h * DV + rows[:, None] * (H * DV) + tl.arange(0, DV)[None, :]
    tl.store(o_ptrs, out.to(o_ptr.dtype.element_ty), mask=rmask[:, None])


KERNELS = {"favor_key_max": favor_key_max, "kv_state": kv_state, "query_out": query_out}
# The kernel-side values of the registry's constants (tests check them against ops/feature_maps).
CONSTANTS: dict[str, Any] = {
    "FMAP_IDS": {name: getattr(maps, f"FMAP_{name.upper().replace('-', '_')}").value for name in SUPPORTED},
    **{name: getattr(maps, name).value for name in (*rfa.FEATURE_MAP.constants, *favor.FEATURE_MAP.constants)},
}


def bind_kernels(wrap: Callable[[Any], Any]) -> dict[str, Any]:
    """Every kernel wrapped with `wrap`, in one namespace where the helpers are wrapped the same way."""
    ns = {**vars(maps), **globals()}
    for name in maps.HELPERS:
        ns[name] = wrap(types.FunctionType(getattr(maps, name).__code__, ns, name))
    return {name: wrap(types.FunctionType(fn.__code__, ns, name)) for name, fn in KERNELS.items()}
