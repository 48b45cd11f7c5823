"""Triton device functions of the fused forward (flurka_fwd.py): shared tile helpers and, per feature map,
the kv_state body (S and z of one feature tile) and the query_out body (num and den of one query tile).

Plain Python like the kernels: flurka_fwd.bind_kernels wraps every name in HELPERS. The FMAP ids and
the constants are the registry's (ops/feature_maps), as constexpr so the kernels can read them.
"""

from __future__ import annotations

import triton.language as tl

from ..ops.feature_maps import REGISTRY, favor, rfa

FMAP_RELU = tl.constexpr(REGISTRY["relu"].enum_id)
FMAP_ELU = tl.constexpr(REGISTRY["elu"].enum_id)
FMAP_RFA = tl.constexpr(REGISTRY["rfa"].enum_id)
FMAP_FAVOR = tl.constexpr(REGISTRY["favor"].enum_id)
FMAP_DPFP = tl.constexpr(REGISTRY["dpfp"].enum_id)
FMAP_FAVOR_CAUSAL = tl.constexpr(REGISTRY["favor-causal"].enum_id)
RFA_NORM_EPS = tl.constexpr(rfa.RFA_NORM_EPS)
RFA_SCALE = tl.constexpr(rfa.RFA_SCALE)
RFA_DEN_MIN = tl.constexpr(rfa.RFA_DEN_MIN)
RFA_DEN_MAX = tl.constexpr(rfa.RFA_DEN_MAX)
FAVOR_EPS = tl.constexpr(favor.FAVOR_EPS)


def phi_dim(D: tl.constexpr, P, FMAP: tl.constexpr):
    """M, the rows of S (FeatureMap.phi_dim with P = FeatureMap.kernel_p)."""
    if FMAP == FMAP_RFA:
        m = 2 * P
    elif FMAP == FMAP_FAVOR or FMAP == FMAP_FAVOR_CAUSAL:
        m = P
    elif FMAP == FMAP_DPFP:
        m = 2 * D * P
    else:  # relu, elu
        m = D
    return m


def load_rows(base, rows, mask, stride, W: tl.constexpr):
    """The [len(rows), W] tile of a row-major tensor, zero outside `mask`."""
    return tl.load(base + rows[:, None] * stride + tl.arange(0, W)[None, :], mask=mask[:, None], other=0.0)


def proj_dot(x, w, F32: tl.constexpr, UPCAST: tl.constexpr):
    """u = x W^T on the raw inputs (exact products for half types, float32 sums)."""
    if F32:
        u = tl.dot(x, tl.trans(w), input_precision="tf32x3")
    elif UPCAST:  # interpreter only: its bf16 tl.dot is wrong (Triton 3.9)
        u = tl.dot(x.to(tl.float32), tl.trans(w.to(tl.float32)), input_precision="tf32x3")
    else:
        u = tl.dot(x, tl.trans(w))
    return u


def acc_dot(a, b, acc, F32: tl.constexpr):
    """acc + a @ b on float32 operands: 3xTF32 for float32 inputs, TF32 otherwise."""
    if F32:
        acc = tl.dot(a, b, acc, input_precision="tf32x3")
    else:
        acc = tl.dot(a, b, acc, input_precision="tf32")
    return acc


def store_state(s_base, z_base, offs_f, fmask, acc, zacc, DV: tl.constexpr):
    """S rows and z entries `offs_f` of one (batch, head)."""
    tl.store(s_base + offs_f[:, None] * DV + tl.arange(0, DV)[None, :], acc, mask=fmask[:, None])
    tl.store(z_base + offs_f, zacc, mask=fmask)


def phi_elementwise(x, stabilizer, FMAP: tl.constexpr):
    if FMAP == FMAP_RELU:
        ph = tl.maximum(x, 0.0) + stabilizer
    elif FMAP == FMAP_ELU:  # elu(x) + 1
        ph = tl.where(x > 0, x + 1.0, tl.exp(tl.minimum(x, 0.0)))
    else:  # a map without its phi here: NaN, so every kernel test of it fails
        ph = x + float("nan")
    return ph


def kv_rfa(k_base, v_base, w_base, s_base, z_base, offs_f, H, Nk, P, D: tl.constexpr, DV: tl.constexpr,
           BLOCK_K: tl.constexpr, BLOCK_F: tl.constexpr, F32: tl.constexpr, UPCAST: tl.constexpr):
    """rfa: features [sin u (P), cos u (P)]; this tile's sin rows offs_f and cos rows P + offs_f."""
    fmask = offs_f < P
    w = load_rows(w_base, offs_f, fmask, D, D)
    acc = tl.zeros([BLOCK_F, DV], dtype=tl.float32)
    acc2 = tl.zeros([BLOCK_F, DV], dtype=tl.float32)
    zacc = tl.zeros([BLOCK_F], dtype=tl.float32)
    zacc2 = tl.zeros([BLOCK_F], dtype=tl.float32)
    for k0 in range(0, Nk, BLOCK_K):
        rows = k0 + tl.arange(0, BLOCK_K)
        kmask = rows < Nk
        valid = kmask[:, None] & fmask[None, :]
        kt = load_rows(k_base, rows, kmask, H * D, D)
        vf = load_rows(v_base, rows, kmask, H * DV, DV).to(tl.float32)
        x = kt.to(tl.float32)
        u = proj_dot(kt, w, F32, UPCAST) * (1.0 / (tl.sqrt(tl.sum(x * x, axis=1)) + RFA_NORM_EPS))[:, None]
        ps = tl.where(valid, RFA_SCALE * tl.sin(u), 0.0)
        pc = tl.where(valid, RFA_SCALE * tl.cos(u), 0.0)
        acc = acc_dot(tl.trans(ps), vf, acc, F32)
        acc2 = acc_dot(tl.trans(pc), vf, acc2, F32)
        zacc += tl.sum(ps, axis=0)
        zacc2 += tl.sum(pc, axis=0)
    store_state(s_base, z_base, offs_f, fmask, acc, zacc, DV)
    store_state(s_base, z_base, P + offs_f, fmask, acc2, zacc2, DV)


def kv_favor(k_base, v_base, w_base, c, s_base, z_base, offs_f, H, Nk, P, D: tl.constexpr, DV: tl.constexpr,
             BLOCK_K: tl.constexpr, BLOCK_F: tl.constexpr, F32: tl.constexpr, UPCAST: tl.constexpr):
    """favor: phi = (exp(u - |x'|^2/2 - c) + FAVOR_EPS) / sqrt(P), c = the key block's max (favor_key_max)."""
    fmask = offs_f < P
    w = load_rows(w_base, offs_f, fmask, D, D)
    acc = tl.zeros([BLOCK_F, DV], dtype=tl.float32)
    zacc = tl.zeros([BLOCK_F], dtype=tl.float32)
    qscale = tl.sqrt(1.0 / tl.sqrt(D * 1.0))  # d^-1/4
    for k0 in range(0, Nk, BLOCK_K):
        rows = k0 + tl.arange(0, BLOCK_K)
        kmask = rows < Nk
        kt = load_rows(k_base, rows, kmask, H * D, D)
        vf = load_rows(v_base, rows, kmask, H * DV, DV).to(tl.float32)
        xs = kt.to(tl.float32) * qscale
        sq = 0.5 * tl.sum(xs * xs, axis=1)
        u = proj_dot(kt, w, F32, UPCAST) * qscale
        ph = (tl.exp(u - sq[:, None] - c) + FAVOR_EPS) / tl.sqrt(P * 1.0)
        ph = tl.where(kmask[:, None] & fmask[None, :], ph, 0.0)
        acc = acc_dot(tl.trans(ph), vf, acc, F32)
        zacc += tl.sum(ph, axis=0)
    store_state(s_base, z_base, offs_f, fmask, acc, zacc, DV)


def favor_causal_key_c(w_base, P, D: tl.constexpr, BLOCK_F: tl.constexpr):
    """favor-causal's key constant c_h = max_p |W_hp|^2 / 2 (all P features of the head; reads no key)."""
    m = tl.full([BLOCK_F], float("-inf"), tl.float32)
    for f0 in range(0, P, BLOCK_F):
        offs_f = f0 + tl.arange(0, BLOCK_F)
        fmask = offs_f < P
        w = load_rows(w_base, offs_f, fmask, D, D).to(tl.float32)
        m = tl.maximum(m, tl.where(fmask, 0.5 * tl.sum(w * w, axis=1), float("-inf")))
    return tl.max(m, axis=0)


def dpfp_r(row_ptrs, idx, mask, D: tl.constexpr):
    """r(x)[idx] = relu(x[idx]) for idx < d, relu(-x[idx - d]) above: gathered from memory, float32."""
    x = tl.load(row_ptrs + (idx % D)[None, :], mask=mask, other=0.0).to(tl.float32)
    return tl.maximum(tl.where((idx < D)[None, :], x, -x), 0.0)


def phi_dpfp(row_ptrs, rmask, offs_f, M, D: tl.constexpr):
    """Columns offs_f of phi = r[ia] * r[ib]: column f = (j - 1) 2d + i is r_i * r_((i - j) mod 2d)."""
    two_d = 2 * D
    i = offs_f % two_d
    j = offs_f // two_d + 1
    ib = (i + two_d - j % two_d) % two_d
    mask = rmask[:, None] & (offs_f < M)[None, :]
    return dpfp_r(row_ptrs, i, mask, D) * dpfp_r(row_ptrs, ib, mask, D)


def phi_direct(row_ptrs, rmask, offs_f, M, stabilizer, FMAP: tl.constexpr, D: tl.constexpr):
    """Columns offs_f of phi for the maps computed from x alone (relu, elu, dpfp); zero for masked rows."""
    if FMAP == FMAP_DPFP:
        ph = phi_dpfp(row_ptrs, rmask, offs_f, M, D)
    else:  # elementwise: M = d, offs_f = 0..d-1
        x = tl.load(row_ptrs + offs_f[None, :], mask=rmask[:, None], other=0.0).to(tl.float32)
        ph = tl.where(rmask[:, None], phi_elementwise(x, stabilizer, FMAP), 0.0)  # padded keys must not reach z
    return ph


def kv_direct(k_base, v_base, s_base, z_base, offs_f, H, Nk, M, stabilizer, FMAP: tl.constexpr, D: tl.constexpr,
              DV: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_F: tl.constexpr, F32: tl.constexpr):
    """relu, elu (one tile of width d) and dpfp (tiles of M = 2 d nu): S and z of feature tile offs_f."""
    acc = tl.zeros([BLOCK_F, DV], dtype=tl.float32)
    zacc = tl.zeros([BLOCK_F], dtype=tl.float32)
    for k0 in range(0, Nk, BLOCK_K):
        rows = k0 + tl.arange(0, BLOCK_K)
        kmask = rows < Nk
        ph = phi_direct(k_base + rows[:, None] * (H * D), kmask, offs_f, M, stabilizer, FMAP, D)
        vf = load_rows(v_base, rows, kmask, H * DV, DV).to(tl.float32)
        acc = acc_dot(tl.trans(ph), vf, acc, F32)
        zacc += tl.sum(ph, axis=0)
    store_state(s_base, z_base, offs_f, offs_f < M, acc, zacc, DV)


def out_rfa(q_base, rows, rmask, w_base, s_base, z_base, H, P, D: tl.constexpr, DV: tl.constexpr,
            BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr, F32: tl.constexpr, UPCAST: tl.constexpr):
    q = load_rows(q_base, rows, rmask, H * D, D)
    x = q.to(tl.float32)
    inv = 1.0 / (tl.sqrt(tl.sum(x * x, axis=1)) + RFA_NORM_EPS)
    num = tl.zeros([BLOCK_N, DV], dtype=tl.float32)
    t = tl.zeros([BLOCK_N], dtype=tl.float32)
    for f0 in range(0, P, BLOCK_F):
        offs_f = f0 + tl.arange(0, BLOCK_F)
        fmask = offs_f < P
        u = proj_dot(q, load_rows(w_base, offs_f, fmask, D, D), F32, UPCAST) * inv[:, None]
        ps = tl.where(fmask[None, :], RFA_SCALE * tl.sin(u), 0.0)
        pc = tl.where(fmask[None, :], RFA_SCALE * tl.cos(u), 0.0)
        num = acc_dot(ps, load_rows(s_base, offs_f, fmask, DV, DV), num, F32)
        num = acc_dot(pc, load_rows(s_base, P + offs_f, fmask, DV, DV), num, F32)
        zs = tl.load(z_base + offs_f, mask=fmask, other=0.0)
        zc = tl.load(z_base + P + offs_f, mask=fmask, other=0.0)
        t += tl.sum(ps * zs[None, :] + pc * zc[None, :], axis=1)
    return num, tl.minimum(tl.maximum(tl.abs(t), RFA_DEN_MIN), RFA_DEN_MAX)


def out_favor(q_base, rows, rmask, w_base, s_base, z_base, H, P, D: tl.constexpr, DV: tl.constexpr,
              BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr, F32: tl.constexpr, UPCAST: tl.constexpr):
    """phi_f = (exp(u_f - sq - c) + FAVOR_EPS) / sqrt(P), c = row max of u over all P features.

    num = (e^-sq sum_f e^(u_f - c) S_f + FAVOR_EPS sum_f S_f) / sqrt(P), with a running max of u across
    feature tiles that rescales the partial sums as it grows: one pass over the features.
    """
    q = load_rows(q_base, rows, rmask, H * D, D)
    qscale = tl.sqrt(1.0 / tl.sqrt(D * 1.0))
    xs = q.to(tl.float32) * qscale
    sq = 0.5 * tl.sum(xs * xs, axis=1)
    m = tl.full([BLOCK_N], float("-inf"), tl.float32)
    acc = tl.zeros([BLOCK_N, DV], dtype=tl.float32)
    tacc = tl.zeros([BLOCK_N], dtype=tl.float32)
    ssum = tl.zeros([DV], dtype=tl.float32)
    zsum = tl.zeros([BLOCK_F], dtype=tl.float32)
    for f0 in range(0, P, BLOCK_F):
        offs_f = f0 + tl.arange(0, BLOCK_F)
        fmask = offs_f < P
        u = proj_dot(q, load_rows(w_base, offs_f, fmask, D, D), F32, UPCAST)
        u = tl.where(fmask[None, :], u * qscale, float("-inf"))
        m_new = tl.maximum(m, tl.max(u, axis=1))
        alpha = tl.exp(m - m_new)  # every tile has a valid feature, so m_new is finite
        e = tl.exp(u - m_new[:, None])
        s = load_rows(s_base, offs_f, fmask, DV, DV)
        z = tl.load(z_base + offs_f, mask=fmask, other=0.0)
        acc = acc_dot(e, s, acc * alpha[:, None], F32)
        tacc = tacc * alpha + tl.sum(e * z[None, :], axis=1)
        ssum += tl.sum(s, axis=0)
        zsum += z
        m = m_new
    es = tl.exp(-sq)
    inv_sqrt_p = 1.0 / tl.sqrt(P * 1.0)
    num = (es[:, None] * acc + FAVOR_EPS * ssum[None, :]) * inv_sqrt_p
    den = (es * tacc + FAVOR_EPS * tl.sum(zsum, axis=0)) * inv_sqrt_p
    return num, den


def out_direct(q_base, rows, rmask, s_base, z_base, H, M, stabilizer, eps, FMAP: tl.constexpr, D: tl.constexpr,
               DV: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr, F32: tl.constexpr):
    """relu, elu, dpfp: num = phi(Q) S and den over feature tiles (one tile of width d for relu and elu)."""
    num = tl.zeros([BLOCK_N, DV], dtype=tl.float32)
    t = tl.zeros([BLOCK_N], dtype=tl.float32)
    row_ptrs = q_base + rows[:, None] * (H * D)
    for f0 in range(0, M, BLOCK_F):
        offs_f = f0 + tl.arange(0, BLOCK_F)
        fmask = offs_f < M
        ph = phi_direct(row_ptrs, rmask, offs_f, M, stabilizer, FMAP, D)
        num = acc_dot(ph, load_rows(s_base, offs_f, fmask, DV, DV), num, F32)  # S stays float32
        t += tl.sum(ph * tl.load(z_base + offs_f, mask=fmask, other=0.0)[None, :], axis=1)
    if FMAP == FMAP_RELU:
        den = t
    elif FMAP == FMAP_ELU or FMAP == FMAP_DPFP:
        den = t + eps
    else:  # a map without its den here: NaN, so every kernel test of it fails
        den = t + float("nan")
    return num, den


HELPERS: tuple[str, ...] = (
    "phi_dim", "load_rows", "proj_dot", "acc_dot", "store_state", "phi_elementwise", "dpfp_r", "phi_dpfp",
    "phi_direct", "kv_direct", "kv_rfa", "kv_favor", "favor_causal_key_c", "out_direct", "out_rfa", "out_favor",
)
