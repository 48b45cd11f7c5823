"""ops.causal: the naive, chunked and recurrent forms against a float64 naive reference, prefill + decode
steps, left padding, fp16 inputs, and the causal prefix semantics against the non-causal op."""

import pytest
import torch

from flurka_export.ops import flurka_attention_reference
from flurka_export.ops.causal import CAUSAL_FEATURE_MAPS, causal_kernel_attention, causal_state_shape
from tests.helpers import op_inputs, probe_attributes

H, D = 2, 8


def _inputs(feature_map, t, b=2, seed=0, dv=None):
    q, k, v, proj = op_inputs(feature_map, b=b, nq=t, nk=t, h=H, d=D, dv=dv, seed=seed)
    return q, k, v, proj


def _run(q, k, v, proj, feature_map, past=None, **kw):
    kw = {**probe_attributes(feature_map), **kw}
    return causal_kernel_attention(q, k, v, past, proj, num_heads=H, feature_map=feature_map, **kw)


def _reference(q, k, v, proj, feature_map, past=None, **kw):
    """The float64 naive form."""
    past = None if past is None else past.double()
    proj = None if proj is None else proj.double()
    return _run(q.double(), k.double(), v.double(), proj, feature_map, past, form="naive", **kw)


def _close(got, want, atol=1e-5, rtol=1e-5):
    torch.testing.assert_close(got.double(), want.double(), atol=atol, rtol=rtol)


def test_causal_feature_maps():
    assert CAUSAL_FEATURE_MAPS == ("relu", "elu", "rfa", "dpfp", "favor-causal")
    assert causal_state_shape(4, 16, "dpfp", None, 2) == (4, 64, 17)
    assert causal_state_shape(2, 8, "favor-causal", 12, 1) == (2, 12, 9)
    with pytest.raises(ValueError, match="'favor' is not causal.*favor-causal"):
        causal_state_shape(2, 8, "favor", 12, 1)


@pytest.mark.parametrize("feature_map", CAUSAL_FEATURE_MAPS)
@pytest.mark.parametrize("t", [1, 7, 64, 101])
def test_forms_match_float64_naive(feature_map, t):
    q, k, v, proj = _inputs(feature_map, t, seed=t)
    past = torch.rand(2, *causal_state_shape(H, D, feature_map, 6, 2)) if t == 7 else None  # a past state too
    want_out, want_state = _reference(q, k, v, proj, feature_map, past)
    for form in ("naive", "chunked", "recurrent"):
        out, state = _run(q, k, v, proj, feature_map, past, form=form, chunk_size=16)
        assert out.dtype == torch.float32 and state.dtype == torch.float32
        assert state.shape == (2, *causal_state_shape(H, D, feature_map, 6, 2))
        _close(out, want_out)
        _close(state, want_state, rtol=1e-5, atol=1e-5 * want_state.abs().max().item())


@pytest.mark.parametrize("feature_map", ["elu", "favor-causal"])
def test_long_prefill_4096(feature_map):
    q, k, v, proj = op_inputs(feature_map, b=1, nq=4096, nk=4096, h=1, d=D, seed=3)
    kw = dict(num_heads=1, feature_map=feature_map)
    want, _ = causal_kernel_attention(q.double(), k.double(), v.double(), None, None if proj is None else
                                      proj.double(), form="naive", **kw)
    got, _ = causal_kernel_attention(q, k, v, None, proj, form="chunked", **kw)
    _close(got, want)


@pytest.mark.parametrize("feature_map", CAUSAL_FEATURE_MAPS)
def test_prefill_37_then_steps_equals_prefill_40(feature_map):
    q, k, v, proj = _inputs(feature_map, 40)
    want_out, want_state = _run(q, k, v, proj, feature_map, form="naive")
    out, state = _run(q[:, :37], k[:, :37], v[:, :37], proj, feature_map, form="chunked", chunk_size=8)
    outs = [out]
    for i in range(37, 40):
        o, state = _run(q[:, i:i + 1], k[:, i:i + 1], v[:, i:i + 1], proj, feature_map, state, form="recurrent")
        outs.append(o)
    _close(torch.cat(outs, 1), want_out, atol=1e-6, rtol=1e-5)
    _close(state, want_state, atol=1e-5 * want_state.abs().max().item(), rtol=1e-5)


@pytest.mark.parametrize("feature_map", CAUSAL_FEATURE_MAPS)
@pytest.mark.parametrize("form", ["naive", "chunked", "recurrent"])
def test_left_padding(feature_map, form):
    q, k, v, proj = _inputs(feature_map, 12, b=1)
    pad = 5
    qp, kp, vp = (torch.cat([torch.full((1, pad, x.shape[-1]), float("nan")), x], 1) for x in (q, k, v))
    kp[:, 0] = float("inf")
    mask = torch.cat([torch.zeros(1, pad), torch.ones(1, 12)], 1).long()
    want, want_state = _run(q, k, v, proj, feature_map, form=form, chunk_size=4)
    out, state = _run(qp, kp, vp, proj, feature_map, form=form, chunk_size=4, key_mask=mask)
    assert torch.isfinite(out).all() and torch.isfinite(state).all()
    assert (out[:, :pad] == 0).all()
    _close(out[:, pad:], want, atol=1e-6, rtol=0)
    _close(state, want_state, atol=1e-6 * want_state.abs().max().item(), rtol=0)


@pytest.mark.parametrize("feature_map", ["elu", "relu"])
def test_fp16_long_sequence_stays_finite(feature_map):
    q, k, v, proj = op_inputs(feature_map, b=1, nq=1536, nk=1536, h=2, d=16, scale=2.0, seed=1)
    v = v.abs() * 64  # a float16 numerator sum_j phi(k_j) v_j would pass 65504 long before the last token
    q16, k16, v16 = q.half(), k.half(), v.half()
    out16, state = causal_kernel_attention(q16, k16, v16, None, None, num_heads=2, feature_map=feature_map)
    out32, _ = causal_kernel_attention(q16.float(), k16.float(), v16.float(), None, None, num_heads=2,
                                       feature_map=feature_map)
    assert out16.dtype == torch.float16 and state.dtype == torch.float32
    assert state[..., :-1].abs().max() > 65504  # S itself is beyond float16's range
    assert torch.isfinite(out16).all()
    torch.testing.assert_close(out16.float(), out32, atol=1e-2, rtol=2e-3)


@pytest.mark.parametrize("feature_map", CAUSAL_FEATURE_MAPS)
def test_each_row_is_the_non_causal_op_over_its_prefix(feature_map):
    q, k, v, proj = _inputs(feature_map, 6, dv=3)
    out, _ = _run(q, k, v, proj, feature_map, form="chunked", chunk_size=4)
    attrs = probe_attributes(feature_map)
    for t in range(6):
        want = flurka_attention_reference(q[:, t:t + 1], k[:, :t + 1], v[:, :t + 1], proj, num_heads=H,
                                          feature_map=feature_map, **attrs)
        _close(out[:, t:t + 1], want, atol=1e-6, rtol=1e-5)


def test_rejects_bad_arguments():
    q, k, v, _ = _inputs("elu", 4)
    with pytest.raises(ValueError, match="unknown form"):
        causal_kernel_attention(q, k, v, num_heads=H, feature_map="elu", form="scan")
    with pytest.raises(ValueError, match="past_state must be"):
        causal_kernel_attention(q, k, v, torch.zeros(2, H, D, D), num_heads=H, feature_map="elu")
    with pytest.raises(ValueError, match="key_mask must be"):
        causal_kernel_attention(q, k, v, num_heads=H, feature_map="elu", key_mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match="not causal"):
        causal_kernel_attention(q, k, v, num_heads=H, feature_map="favor")
