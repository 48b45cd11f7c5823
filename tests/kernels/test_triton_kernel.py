"""The fused Triton kernel against the reference op (interpreter on CPU; FLURKA_TEST_DEVICE=cuda on a GPU)."""

import os

import pytest
import torch

from flurka_export.kernels import flurka_attention_triton, kernel_supports
from flurka_export.ops import FEATURE_MAPS, flurka_attention_reference
from tests.helpers import op_inputs, probe_attributes

pytest.importorskip("triton")

DEVICE = os.environ.get("FLURKA_TEST_DEVICE", "cpu")
if DEVICE != "cpu" and not torch.cuda.is_available():
    pytest.skip(f"FLURKA_TEST_DEVICE={DEVICE} but no CUDA GPU", allow_module_level=True)
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# Against the reference run on the same (rounded) inputs in float32: only accumulation order, tf32
# tensor-core rounding (GPU, half types) and the output rounding differ.
TOL = {torch.float32: (2e-5, 1e-4), torch.float16: (3e-3, 1e-2), torch.bfloat16: (1.5e-2, 2e-2)}


def run_both(feature_map, dtype=torch.float32, h=2, nu=1, attrs=None, **shape):
    q, k, v, proj = op_inputs(feature_map, h=h, dtype=dtype, **{k: v for k, v in shape.items() if k != "vscale"})
    v = v * shape.get("vscale", 1)
    dev = lambda t: None if t is None else t.to(DEVICE)  # noqa: E731
    attrs = {"num_heads": h, "feature_map": feature_map, "nu": nu, **(attrs or {})}
    got = flurka_attention_triton(dev(q), dev(k), dev(v), dev(proj), **attrs).cpu()
    up = lambda t: None if t is None else t.float()  # noqa: E731
    want = flurka_attention_reference(up(q), up(k), up(v), up(proj), **attrs)
    return got, want


def check(got, want, dtype):
    atol, rtol = TOL[dtype]
    assert got.dtype == dtype and got.shape == want.shape
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.float(), want, atol=atol, rtol=rtol)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
def test_matches_reference(feature_map, dtype):
    # Odd lengths crossing tiles: 70 keys (> one 64-key tile), P=70 (3 rfa / 2 favor feature tiles), dv != d.
    got, want = run_both(feature_map, dtype, b=2, nq=37, nk=70, d=32, dv=64, p=70)
    check(got, want, dtype)


@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
def test_attributes_reach_the_kernel(feature_map):
    # Non-default stabilizer, eps and nu: a kernel that ignores one (or hard-codes its default) fails here.
    got, want = run_both(feature_map, attrs=probe_attributes(feature_map), b=2, nq=5, nk=7, d=32)
    check(got, want, torch.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("nu", [2, 3])
def test_dpfp_several_rolls(nu, dtype):
    # M = 2 d nu = 192 / 288 features: several feature tiles, the last one partial for nu=3 in half types.
    got, want = run_both("dpfp", dtype, nu=nu, b=1, nq=9, nk=70, d=32, dv=32)
    check(got, want, dtype)


@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
@pytest.mark.parametrize("nq,nk", [(1, 9), (5, 1), (1, 1)])
def test_single_query_or_key(feature_map, nq, nk):
    got, want = run_both(feature_map, b=2, nq=nq, nk=nk, d=32, p=16)
    check(got, want, torch.float32)


@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
def test_query_tiles_and_batches(feature_map):
    # More than one 128-row query tile, three batch elements, three heads.
    got, want = run_both(feature_map, torch.float16, h=3, b=3, nq=131, nk=20, d=32, dv=32, p=24)
    check(got, want, torch.float16)


@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
def test_fp16_1024_keys_large_values_do_not_overflow(feature_map):
    # 1024 keys with values up to ~30 overflow fp16 sums unless S and z accumulate in float32.
    got, want = run_both(feature_map, torch.float16, b=1, nq=3, nk=1024, d=32, dv=32, p=16, scale=3.0, vscale=30.0)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.float(), want, atol=0.1, rtol=2e-2)


@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
@pytest.mark.parametrize("d,dv", [(32, 32), (64, 64), (128, 128), (128, 32), (64, 128)])
def test_head_dims(feature_map, d, dv):
    got, want = run_both(feature_map, torch.float16, h=1, b=1, nq=9, nk=17, d=d, dv=dv, p=20)
    check(got, want, torch.float16)


@pytest.mark.parametrize("d,dv,name", [(16, 32, "head dim d=16"), (32, 48, "value head dim dv=48")])
def test_bad_head_dim_is_a_clear_error(d, dv, name):
    q, k, v, _ = op_inputs("elu", b=1, nq=2, nk=3, h=2, d=d, dv=dv)
    with pytest.raises(ValueError, match=f"{name} is not supported by the fused FlurkaAttention kernel; allowed: 32, 64, 128"):
        flurka_attention_triton(q.to(DEVICE), k.to(DEVICE), v.to(DEVICE), num_heads=2, feature_map="elu")
    assert not kernel_supports(q, k, v, 2)


def test_kernel_supports():
    q, k, v, _ = op_inputs("relu", d=32)
    assert kernel_supports(q, k, v, 2)
    assert not kernel_supports(q.double(), k.double(), v.double(), 2)
    assert not kernel_supports(q, k, v, 4)  # d = 16


def test_float64_and_unknown_feature_map_are_refused():
    q, k, v, _ = op_inputs("relu", d=32)
    with pytest.raises(TypeError, match="float32, float16 or bfloat16"):
        flurka_attention_triton(q.double(), k.double(), v.double(), num_heads=2, feature_map="relu")
    with pytest.raises(ValueError, match="unknown feature_map 'gelu'"):
        flurka_attention_triton(q, k, v, num_heads=2, feature_map="gelu")


def test_empty_query_gives_empty_output():
    q, k, v, _ = op_inputs("elu", b=2, nq=1, nk=4, d=32)
    out = flurka_attention_triton(q[:, :0].to(DEVICE), k.to(DEVICE), v.to(DEVICE), num_heads=2, feature_map="elu")
    assert out.shape == (2, 0, 64)


def test_non_contiguous_inputs():
    q, k, v, _ = op_inputs("relu", b=1, nq=6, nk=5, h=2, d=32)
    qt = q.transpose(0, 1).contiguous().transpose(0, 1)  # same values, other strides
    got = flurka_attention_triton(qt.to(DEVICE), k.to(DEVICE), v.to(DEVICE), num_heads=2, feature_map="relu").cpu()
    check(got, flurka_attention_reference(q, k, v, num_heads=2, feature_map="relu"), torch.float32)


@pytest.mark.skipif(DEVICE == "cpu", reason="the op dispatches to the kernel on CUDA only")
@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
def test_op_dispatches_to_kernel_on_cuda(feature_map, monkeypatch):
    from flurka_export.kernels import launch
    from flurka_export.ops import flurka_attention

    calls = []
    real = launch.flurka_attention_triton
    monkeypatch.setattr(launch, "flurka_attention_triton", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    q, k, v, proj = op_inputs(feature_map, d=64, p=32, dtype=torch.float16)
    cuda = lambda t: None if t is None else t.cuda()  # noqa: E731
    out = flurka_attention(cuda(q), cuda(k), cuda(v), cuda(proj), num_heads=2, feature_map=feature_map)
    assert calls, "torch.ops.flurka.attention did not use the fused kernel on CUDA"
    want = flurka_attention_reference(q.float(), k.float(), v.float(), None if proj is None else proj.float(),
                                      num_heads=2, feature_map=feature_map)
    check(out.cpu(), want, torch.float16)


def test_dpfp_too_many_features_is_refused():
    q, k, v, _ = op_inputs("dpfp", b=1, nq=2, nk=2, d=32)
    with pytest.raises(ValueError, match="more than the fused kernel's"):
        flurka_attention_triton(q, k, v, num_heads=2, feature_map="dpfp", nu=70000)


def test_importing_kernels_registers_the_cuda_implementation():
    import flurka_export.kernels  # noqa: F401

    assert torch._C._dispatch_has_kernel_for_dispatch_key("flurka::attention", "CUDA")
