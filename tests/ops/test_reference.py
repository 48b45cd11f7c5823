"""The op against an independent dense reference, and its invariances."""

import math

import pytest
import torch
import torch.nn.functional as F

from flurka_export.ops import FEATURE_MAPS, flurka_attention
from tests.helpers import op_inputs, probe_attributes


def dense_reference(q, k, v, proj, num_heads, feature_map, stabilizer=1e-3, eps=1e-6, nu=1):
    """Written independently of the op: per head, build the Nq x Nk kernel matrix and normalise its rows."""
    q, k, v = q.double(), k.double(), v.double()
    b, nq, hd = q.shape
    d = hd // num_heads
    dv = v.shape[-1] // num_heads
    out = torch.zeros(b, nq, num_heads * dv, dtype=torch.float64)
    for bi in range(b):
        for h in range(num_heads):
            qh, kh = q[bi, :, h * d:(h + 1) * d], k[bi, :, h * d:(h + 1) * d]
            vh = v[bi, :, h * dv:(h + 1) * dv]
            if feature_map == "relu":
                fq, fk = F.relu(qh) + stabilizer, F.relu(kh) + stabilizer
            elif feature_map == "elu":
                fq, fk = F.elu(qh) + 1, F.elu(kh) + 1
            elif feature_map == "rfa":
                w = proj[h].double()
                def f(x):
                    u = (x / (x.norm(dim=-1, keepdim=True) + 1e-3)) @ w.T
                    return 0.1 * torch.cat([u.sin(), u.cos()], -1)
                fq, fk = f(qh), f(kh)
            elif feature_map == "dpfp":
                def f(x):
                    r = torch.cat([x.clamp(min=0), (-x).clamp(min=0)], -1)
                    return torch.cat([r * torch.roll(r, j, dims=-1) for j in range(1, nu + 1)], -1)
                fq, fk = f(qh), f(kh)
            elif feature_map in ("favor", "favor-causal"):
                w = proj[h].double()
                def f(x, per_row):
                    xs = x / d ** 0.25
                    u = xs @ w.T
                    if per_row:
                        c = u.max(dim=-1, keepdim=True).values
                    else:  # favor: the key block's max; favor-causal: max_p |W_p|^2 / 2, from W alone
                        c = u.max() if feature_map == "favor" else (w * w).sum(-1).max() / 2
                    return (torch.exp(u - (xs * xs).sum(-1, keepdim=True) / 2 - c) + 1e-4) / math.sqrt(w.shape[0])
                fq, fk = f(qh, True), f(kh, False)
            else:
                raise AssertionError(f"dense_reference has no phi for feature map {feature_map!r}: write one here")
            a = fq @ fk.T  # Nq x Nk
            t = a.sum(-1, keepdim=True)
            if feature_map in ("elu", "dpfp"):
                den = t + eps
            elif feature_map == "rfa":
                den = t.abs().clamp(1, 1e10)
            elif feature_map in ("relu", "favor", "favor-causal"):
                den = t
            else:
                raise AssertionError(f"dense_reference has no den for feature map {feature_map!r}: write one here")
            out[bi, :, h * dv:(h + 1) * dv] = (a / den) @ vh
    return out


@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
@pytest.mark.parametrize("shape", [(2, 5, 7), (1, 1, 9), (3, 9, 1), (1, 13, 13)])
@pytest.mark.parametrize("attrs", ["default", "probe"])
def test_matches_dense_reference(feature_map, shape, attrs):
    b, nq, nk = shape
    values = probe_attributes(feature_map) if attrs == "probe" else {}
    q, k, v, proj = op_inputs(feature_map, b=b, nq=nq, nk=nk, dv=4)
    got = flurka_attention(q, k, v, proj, num_heads=2, feature_map=feature_map, **values)
    want = dense_reference(q, k, v, proj, 2, feature_map, **values)
    assert got.shape == (b, nq, 8)
    torch.testing.assert_close(got.double(), want, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
def test_invariant_to_key_permutation(feature_map):
    q, k, v, proj = op_inputs(feature_map, nk=11)
    perm = torch.randperm(11)
    a = flurka_attention(q, k, v, proj, num_heads=2, feature_map=feature_map)
    b = flurka_attention(q, k[:, perm], v[:, perm], proj, num_heads=2, feature_map=feature_map)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 2e-2), (torch.bfloat16, 6e-2)])
def test_low_precision_matches_fp32(feature_map, dtype, tol):
    q, k, v, proj = op_inputs(feature_map, nk=64)
    ref = flurka_attention(q, k, v, proj, num_heads=2, feature_map=feature_map)
    lo = flurka_attention(q.to(dtype), k.to(dtype), v.to(dtype), proj, num_heads=2, feature_map=feature_map)
    assert lo.dtype == dtype
    torch.testing.assert_close(lo.float(), ref, atol=tol, rtol=tol)


@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
def test_fp16_long_keys_do_not_overflow(feature_map):
    # Summing 4096 keys with values up to 30 overflows fp16 unless S and z accumulate in float32.
    q, k, v, proj = op_inputs(feature_map, b=1, nq=3, nk=4096, dtype=torch.float32, scale=3.0)
    v = v * 30
    ref = flurka_attention(q, k, v, proj, num_heads=2, feature_map=feature_map)
    lo = flurka_attention(q.half(), k.half(), v.half(), proj, num_heads=2, feature_map=feature_map)
    assert torch.isfinite(lo).all()
    torch.testing.assert_close(lo.float(), ref, atol=0.1, rtol=2e-2)


@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
def test_gradcheck_float64(feature_map):
    q, k, v, proj = op_inputs(feature_map, b=1, nq=3, nk=4, h=2, d=3, p=4, dtype=torch.float64)
    inputs = [t.requires_grad_(True) for t in (q, k, v)]
    fn = lambda q, k, v: flurka_attention(q, k, v, proj, num_heads=2, feature_map=feature_map)  # noqa: E731
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(feature_map="gelu"), "unknown feature_map 'gelu'; allowed: relu, elu, rfa, favor"),
        (dict(num_heads=3), "not divisible by num_heads=3"),
        (dict(feature_map="rfa", no_proj=True), "needs feature_proj"),
        (dict(bad_rank=True), "rank 3"),
        (dict(bad_len=True), "same \\[B, Nk\\]"),
        (dict(bad_dtype=True), "dtype torch.int64"),
    ],
)
def test_clear_errors(kwargs, match):
    fm = kwargs.get("feature_map", "elu")
    q, k, v, proj = op_inputs("rfa")
    if kwargs.get("no_proj"):
        proj = None
    if kwargs.get("bad_rank"):
        q = q[0]
    if kwargs.get("bad_len"):
        v = v[:, :3]
    if kwargs.get("bad_dtype"):
        q = q.long()
    with pytest.raises((ValueError, TypeError), match=match):
        flurka_attention(q, k, v, proj, num_heads=kwargs.get("num_heads", 2), feature_map=fm)


@pytest.mark.parametrize("nu", [1, 3])
@pytest.mark.parametrize("d", [1, 4])
def test_dpfp_nu_matches_dense_reference(nu, d):
    q, k, v, _ = op_inputs("dpfp", b=2, nq=4, nk=6, d=d, dv=3)
    got = flurka_attention(q, k, v, num_heads=2, feature_map="dpfp", nu=nu, eps=1e-4)
    want = dense_reference(q, k, v, None, 2, "dpfp", eps=1e-4, nu=nu)
    torch.testing.assert_close(got.double(), want, atol=2e-5, rtol=1e-4)


def test_dpfp_nu_changes_the_result():
    q, k, v, _ = op_inputs("dpfp")
    a = flurka_attention(q, k, v, num_heads=2, feature_map="dpfp", nu=1)
    b = flurka_attention(q, k, v, num_heads=2, feature_map="dpfp", nu=2)
    assert (a - b).abs().max() > 1e-3


@pytest.mark.parametrize("nu", [0, -1, 1.5, True])
def test_dpfp_bad_nu(nu):
    q, k, v, _ = op_inputs("dpfp")
    with pytest.raises(ValueError, match="nu must be an int"):
        flurka_attention(q, k, v, num_heads=2, feature_map="dpfp", nu=nu)


def test_nu_is_ignored_by_other_maps():
    q, k, v, _ = op_inputs("elu")
    torch.testing.assert_close(flurka_attention(q, k, v, num_heads=2, feature_map="elu", nu=5),
                               flurka_attention(q, k, v, num_heads=2, feature_map="elu"))


def test_registered_as_torch_op():
    q, k, v, _ = op_inputs("elu")
    out = torch.ops.flurka.attention(q, k, v, None, 2, "elu", 1e-3, 1e-6)  # nu has a default
    torch.testing.assert_close(out, flurka_attention(q, k, v, num_heads=2, feature_map="elu"))
    out = torch.ops.flurka.attention(q, k, v, None, 2, "dpfp", 1e-3, 1e-6, 2)
    torch.testing.assert_close(out, flurka_attention(q, k, v, num_heads=2, feature_map="dpfp", nu=2))
