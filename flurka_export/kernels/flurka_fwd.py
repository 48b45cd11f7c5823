"""Triton source of the fused FlurkaAttention forward (SPEC section 1, step 3).

Three kernels, all on contiguous [B, N, H*d] tensors:

1. `favor_key_max` (favor only): c[b, h] = max over all keys and features of u = W_h k'.
2. `kv_state`: S[b, h] = sum_j phi(K_j)^T V_j  ([M, dv]) and z[b, h] = sum_j phi(K_j) ([M]), float32,
   one program per (batch*head, feature tile), looping over key tiles (any key length).
3. `query_out`: one pass over Q and one over the output: phi(Q_tile) @ S with tl.dot, divided by
   den(phi(Q_tile) . z). favor's per-row max is handled online across feature tiles (flash-attention
   style running max), so the Q tile is read once.

The functions here are plain Python (no decorator): `launch.py` wraps them as JITFunction for the GPU
or InterpretedFunction for CPU tensors, and `aot.py` wraps them as JITFunction for ahead-of-time
compilation whatever TRITON_INTERPRET says. Hence no @triton.jit helpers: everything is inlined.

Index math inside one batch element is int32 (the launcher refuses N*H*d >= 2**31); batch offsets are int64.
Feature-map codes (FMAP): 0 relu, 1 elu, 2 rfa, 3 favor (the C API's flurka_feature_map_t).
Dot precision: F32 (float32 inputs) uses 3xTF32 everywhere (float32 accuracy on tensor cores; plain
FMA dots spill badly at these tile sizes). Half inputs: u = x W^T on the raw half inputs (exact
products, float32 sums), and the phi dots in TF32 on float32 operands, since S may not fit fp16.
"""

from __future__ import annotations

import triton.language as tl

# Constants fixed by the spec (see ops/feature_maps.py); constexpr so kernels may read them.
RFA_NORM_EPS = tl.constexpr(1e-3)
RFA_SCALE = tl.constexpr(0.1)
FAVOR_EPS = tl.constexpr(1e-4)


def favor_key_max(k_ptr, w_ptr, c_ptr, H, Nk, P, D: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_F: tl.constexpr,
                  F32: tl.constexpr, UPCAST: tl.constexpr):
    bh = tl.program_id(0)
    b = bh // H
    h = bh % H
    offs_d = tl.arange(0, D)
    offs_k = tl.arange(0, BLOCK_K)
    k_base = k_ptr + b.to(tl.int64) * Nk * H * D + h * D
    scale = 1.0 / tl.sqrt(D * 1.0)  # u uses x' = x d^-1/4 ...
    scale = tl.sqrt(scale)  # ... so d^-1/4
    m = tl.full([BLOCK_K], float("-inf"), tl.float32)
    for f0 in range(0, P, BLOCK_F):
        offs_f = f0 + tl.arange(0, BLOCK_F)
        fmask = offs_f < P
        w = tl.load(w_ptr + h * P * D + offs_f[:, None] * D + offs_d[None, :], mask=fmask[:, None], other=0.0)
        for k0 in range(0, Nk, BLOCK_K):
            rows = k0 + offs_k
            kmask = rows < Nk
            kt = tl.load(k_base + rows[:, None] * (H * D) + offs_d[None, :], mask=kmask[:, None], other=0.0)
            if F32:
                u = tl.dot(kt, tl.trans(w), input_precision="tf32x3")
            elif UPCAST:  # interpreter only: its bf16 tl.dot is wrong (Triton 3.9)
                u = tl.dot(kt.to(tl.float32), tl.trans(w.to(tl.float32)), input_precision="tf32x3")
            else:
                u = tl.dot(kt, tl.trans(w))  # half inputs: exact products, float32 sums
            u = tl.where(kmask[:, None] & fmask[None, :], u * scale, float("-inf"))
            m = tl.maximum(m, tl.max(u, axis=1))
    tl.store(c_ptr + bh, tl.max(m, axis=0))


def kv_state(k_ptr, v_ptr, w_ptr, c_ptr, s_ptr, z_ptr, H, Nk, P, stabilizer,
             FMAP: tl.constexpr, D: tl.constexpr, DV: tl.constexpr, BLOCK_K: tl.constexpr,
             BLOCK_F: tl.constexpr, F32: tl.constexpr, UPCAST: tl.constexpr):
    bh = tl.program_id(0)
    ft = tl.program_id(1)
    b = bh // H
    h = bh % H
    offs_d = tl.arange(0, D)
    offs_dv = tl.arange(0, DV)
    offs_k = tl.arange(0, BLOCK_K)
    k_base = k_ptr + b.to(tl.int64) * Nk * H * D + h * D
    v_base = v_ptr + b.to(tl.int64) * Nk * H * DV + h * DV
    if FMAP <= 1:
        M = D
    elif FMAP == 2:
        M = 2 * P
    else:
        M = P
    s_base = s_ptr + bh.to(tl.int64) * M * DV
    z_base = z_ptr + bh.to(tl.int64) * M
    if FMAP <= 1:
        # relu / elu: M = d, one feature tile of width D.
        acc = tl.zeros([D, DV], dtype=tl.float32)
        zacc = tl.zeros([D], dtype=tl.float32)
        for k0 in range(0, Nk, BLOCK_K):
            rows = k0 + offs_k
            kmask = rows < Nk
            kt = tl.load(k_base + rows[:, None] * (H * D) + offs_d[None, :], mask=kmask[:, None], other=0.0)
            vt = tl.load(v_base + rows[:, None] * (H * DV) + offs_dv[None, :], mask=kmask[:, None], other=0.0)
            x = kt.to(tl.float32)
            if FMAP == 0:
                ph = tl.maximum(x, 0.0) + stabilizer
            else:
                ph = tl.where(x > 0, x + 1.0, tl.exp(tl.minimum(x, 0.0)))
            ph = tl.where(kmask[:, None], ph, 0.0)  # padded keys must not reach z
            if F32:
                acc = tl.dot(tl.trans(ph), vt.to(tl.float32), acc, input_precision="tf32x3")
            else:
                acc = tl.dot(tl.trans(ph), vt.to(tl.float32), acc, input_precision="tf32")
            zacc += tl.sum(ph, axis=0)
        tl.store(s_base + offs_d[:, None] * DV + offs_dv[None, :], acc)
        tl.store(z_base + offs_d, zacc)
    else:
        offs_f = ft * BLOCK_F + tl.arange(0, BLOCK_F)
        fmask = offs_f < P
        w = tl.load(w_ptr + h * P * D + offs_f[:, None] * D + offs_d[None, :], mask=fmask[:, None], other=0.0)
        acc = tl.zeros([BLOCK_F, DV], dtype=tl.float32)
        acc2 = tl.zeros([BLOCK_F, DV], dtype=tl.float32)  # rfa: the cos half
        zacc = tl.zeros([BLOCK_F], dtype=tl.float32)
        zacc2 = tl.zeros([BLOCK_F], dtype=tl.float32)
        qscale = tl.sqrt(1.0 / tl.sqrt(D * 1.0))  # favor: d^-1/4
        if FMAP == 3:
            c = tl.load(c_ptr + bh)
        for k0 in range(0, Nk, BLOCK_K):
            rows = k0 + offs_k
            kmask = rows < Nk
            valid = kmask[:, None] & fmask[None, :]
            kt = tl.load(k_base + rows[:, None] * (H * D) + offs_d[None, :], mask=kmask[:, None], other=0.0)
            vt = tl.load(v_base + rows[:, None] * (H * DV) + offs_dv[None, :], mask=kmask[:, None], other=0.0)
            vf = vt.to(tl.float32)
            x = kt.to(tl.float32)
            # u = W x scaled per row: the dot runs on the raw inputs (exact products for half types).
            if F32:
                u = tl.dot(kt, tl.trans(w), input_precision="tf32x3")
            elif UPCAST:  # interpreter only: its bf16 tl.dot is wrong (Triton 3.9)
                u = tl.dot(kt.to(tl.float32), tl.trans(w.to(tl.float32)), input_precision="tf32x3")
            else:
                u = tl.dot(kt, tl.trans(w))
            if FMAP == 2:
                u = u * (1.0 / (tl.sqrt(tl.sum(x * x, axis=1)) + RFA_NORM_EPS))[:, None]
                ps = tl.where(valid, RFA_SCALE * tl.sin(u), 0.0)
                pc = tl.where(valid, RFA_SCALE * tl.cos(u), 0.0)
                if F32:
                    acc = tl.dot(tl.trans(ps), vf, acc, input_precision="tf32x3")
                    acc2 = tl.dot(tl.trans(pc), vf, acc2, input_precision="tf32x3")
                else:
                    acc = tl.dot(tl.trans(ps), vf, acc, input_precision="tf32")
                    acc2 = tl.dot(tl.trans(pc), vf, acc2, input_precision="tf32")
                zacc += tl.sum(ps, axis=0)
                zacc2 += tl.sum(pc, axis=0)
            else:
                xs = x * qscale
                sq = 0.5 * tl.sum(xs * xs, axis=1)
                ph = (tl.exp(u * qscale - sq[:, None] - c) + FAVOR_EPS) / tl.sqrt(P * 1.0)
                ph = tl.where(valid, ph, 0.0)
                if F32:
                    acc = tl.dot(tl.trans(ph), vf, acc, input_precision="tf32x3")
                else:
                    acc = tl.dot(tl.trans(ph), vf, acc, input_precision="tf32")
                zacc += tl.sum(ph, axis=0)
        smask = fmask[:, None]
        tl.store(s_base + offs_f[:, None] * DV + offs_dv[None, :], acc, mask=smask)
        tl.store(z_base + offs_f, zacc, mask=fmask)
        if FMAP == 2:  # rfa features are [sin u (P), cos u (P)]
            tl.store(s_base + (P + offs_f)[:, None] * DV + offs_dv[None, :], acc2, mask=smask)
            tl.store(z_base + P + offs_f, zacc2, mask=fmask)


def query_out(q_ptr, w_ptr, s_ptr, z_ptr, o_ptr, H, Nq, P, stabilizer, eps,
              FMAP: tl.constexpr, D: tl.constexpr, DV: tl.constexpr, BLOCK_N: tl.constexpr,
              BLOCK_F: tl.constexpr, F32: tl.constexpr, UPCAST: tl.constexpr):
    pid_n = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    offs_d = tl.arange(0, D)
    offs_dv = tl.arange(0, DV)
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rmask = rows < Nq
    q = tl.load(q_ptr + b.to(tl.int64) * Nq * H * D + h * D + rows[:, None] * (H * D) + offs_d[None, :],
                mask=rmask[:, None], other=0.0)
    x = q.to(tl.float32)
    if FMAP <= 1:
        M = D
    elif FMAP == 2:
        M = 2 * P
    else:
        M = P
    s_base = s_ptr + bh.to(tl.int64) * M * DV
    z_base = z_ptr + bh.to(tl.int64) * M
    if FMAP <= 1:
        if FMAP == 0:
            ph = tl.maximum(x, 0.0) + stabilizer
        else:
            ph = tl.where(x > 0, x + 1.0, tl.exp(tl.minimum(x, 0.0)))
        s = tl.load(s_base + offs_d[:, None] * DV + offs_dv[None, :])
        z = tl.load(z_base + offs_d)
        if F32:
            num = tl.dot(ph, s, input_precision="tf32x3")
        else:
            num = tl.dot(ph, s, input_precision="tf32")  # S stays float32: fp16 S could overflow
        t = tl.sum(ph * z[None, :], axis=1)
        if FMAP == 0:
            den = t
        else:
            den = t + eps
    elif FMAP == 2:
        inv = 1.0 / (tl.sqrt(tl.sum(x * x, axis=1)) + RFA_NORM_EPS)
        num = tl.zeros([BLOCK_N, DV], dtype=tl.float32)
        t = tl.zeros([BLOCK_N], dtype=tl.float32)
        for f0 in range(0, P, BLOCK_F):
            offs_f = f0 + tl.arange(0, BLOCK_F)
            fmask = offs_f < P
            w = tl.load(w_ptr + h * P * D + offs_f[:, None] * D + offs_d[None, :], mask=fmask[:, None], other=0.0)
            if F32:
                u = tl.dot(q, tl.trans(w), input_precision="tf32x3")
            elif UPCAST:  # interpreter only: its bf16 tl.dot is wrong (Triton 3.9)
                u = tl.dot(q.to(tl.float32), tl.trans(w.to(tl.float32)), input_precision="tf32x3")
            else:
                u = tl.dot(q, tl.trans(w))
            u = u * inv[:, None]
            ps = tl.where(fmask[None, :], RFA_SCALE * tl.sin(u), 0.0)
            pc = tl.where(fmask[None, :], RFA_SCALE * tl.cos(u), 0.0)
            ss = tl.load(s_base + offs_f[:, None] * DV + offs_dv[None, :], mask=fmask[:, None], other=0.0)
            sc = tl.load(s_base + (P + offs_f)[:, None] * DV + offs_dv[None, :], mask=fmask[:, None], other=0.0)
            zs = tl.load(z_base + offs_f, mask=fmask, other=0.0)
            zc = tl.load(z_base + P + offs_f, mask=fmask, other=0.0)
            if F32:
                num = tl.dot(ps, ss, num, input_precision="tf32x3")
                num = tl.dot(pc, sc, num, input_precision="tf32x3")
            else:
                num = tl.dot(ps, ss, num, input_precision="tf32")
                num = tl.dot(pc, sc, num, input_precision="tf32")
            t += tl.sum(ps * zs[None, :] + pc * zc[None, :], axis=1)
        den = tl.minimum(tl.maximum(tl.abs(t), 1.0), 1e10)
    else:
        # favor: phi_f = (exp(u_f - sq - c) + 1e-4) / sqrt(P), c = row max of u over all P features.
        # Split num = (e^-sq sum_f e^(u_f - c) S_f + 1e-4 sum_f S_f) / sqrt(P) and keep a running max of u
        # across feature tiles, rescaling the partial sums as it grows: one pass over the features.
        qscale = tl.sqrt(1.0 / tl.sqrt(D * 1.0))
        xs = x * qscale
        sq = 0.5 * tl.sum(xs * xs, axis=1)
        m = tl.full([BLOCK_N], float("-inf"), tl.float32)
        acc = tl.zeros([BLOCK_N, DV], dtype=tl.float32)
        tacc = tl.zeros([BLOCK_N], dtype=tl.float32)
        ssum = tl.zeros([DV], dtype=tl.float32)
        zsum = tl.zeros([BLOCK_F], dtype=tl.float32)
        for f0 in range(0, P, BLOCK_F):
            offs_f = f0 + tl.arange(0, BLOCK_F)
            fmask = offs_f < P
            w = tl.load(w_ptr + h * P * D + offs_f[:, None] * D + offs_d[None, :], mask=fmask[:, None], other=0.0)
            if F32:
                u = tl.dot(q, tl.trans(w), input_precision="tf32x3")
            elif UPCAST:  # interpreter only: its bf16 tl.dot is wrong (Triton 3.9)
                u = tl.dot(q.to(tl.float32), tl.trans(w.to(tl.float32)), input_precision="tf32x3")
            else:
                u = tl.dot(q, tl.trans(w))
            u = tl.where(fmask[None, :], u * qscale, float("-inf"))
            m_new = tl.maximum(m, tl.max(u, axis=1))
            alpha = tl.exp(m - m_new)  # every tile has a valid feature, so m_new is finite
            e = tl.exp(u - m_new[:, None])
            s = tl.load(s_base + offs_f[:, None] * DV + offs_dv[None, :], mask=fmask[:, None], other=0.0)
            z = tl.load(z_base + offs_f, mask=fmask, other=0.0)
            acc = acc * alpha[:, None]
            if F32:
                acc = tl.dot(e, s, acc, input_precision="tf32x3")
            else:
                acc = tl.dot(e, s, acc, input_precision="tf32")
            tacc = tacc * alpha + tl.sum(e * z[None, :], axis=1)
            ssum += tl.sum(s, axis=0)
            zsum += z
            m = m_new
        es = tl.exp(-sq)
        inv_sqrt_p = 1.0 / tl.sqrt(P * 1.0)
        num = (es[:, None] * acc + FAVOR_EPS * ssum[None, :]) * inv_sqrt_p
        den = (es * tacc + FAVOR_EPS * tl.sum(zsum, axis=0)) * inv_sqrt_p
    out = num / den[:, None]
    o_ptrs = o_ptr + b.to(tl.int64) * Nq * H * DV + h * DV + rows[:, None] * (H * DV) + offs_dv[None, :]
    tl.store(o_ptrs, out.to(o_ptr.dtype.element_ty), mask=rmask[:, None])


KERNELS = {"favor_key_max": favor_key_max, "kv_state": kv_state, "query_out": query_out}
