"""The ONNX route of causal kernel attention: one causal layer exported with torch.onnx.export(dynamo=True)
(phi and den traced, the core as the CausalLinearAttentionCore placeholder), lowered by
passes.causal_core to com.microsoft.LinearAttention (ORT) and to LinearAttention (opset 27: ORT and
onnx.reference), then run as a decoder runs: a left-padded prefill, then 1-token steps with the state fed
back, against the torch forms."""

import numpy as np
import onnx
import pytest
import torch

from flurka_export.models.random_features import draw_feature_proj
from flurka_export.ops import flurka_attention
from flurka_export.ops.causal import CORE_NAME, causal_kernel_attention, causal_state_shape
from flurka_export.ops.onnx_bodies import attach_function_bodies
from flurka_export.passes.causal_core import lower_causal_core
from flurka_export.runtimes.ort_runner import make_session

H, D, WIDTH, P = 2, 8, 16, 6
FMAP = "favor-causal"  # the new map, with feature_proj as a model constant


class CausalLayer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.q, self.k, self.v = (torch.nn.Linear(WIDTH, WIDTH) for _ in range(3))
        self.register_buffer("proj", draw_feature_proj(FMAP, H, P, D, 0))

    def forward(self, x, past_state, attention_mask, form="chunked"):
        q, k, v = self.q(x), self.k(x), self.v(x)
        out, present = causal_kernel_attention(q, k, v, past_state, self.proj, num_heads=H, feature_map=FMAP,
                                               key_mask=attention_mask, form=form, chunk_size=8)
        # A non-causal FlurkaAttention beside it (as in seq2seq): its function body must follow the opset.
        return out, present, flurka_attention(q, k, v.nan_to_num(), self.proj, num_heads=H, feature_map=FMAP)


@pytest.fixture(scope="module")
def exported():
    layer = CausalLayer().eval()
    x, mask = torch.randn(2, 5, WIDTH), torch.ones(2, 5, dtype=torch.int64)
    past = torch.zeros(2, *causal_state_shape(H, D, FMAP, P, 1))
    b, t = torch.export.Dim("batch"), torch.export.Dim("seq")
    program = torch.onnx.export(layer, (x, past, mask), dynamo=True, verbose=False,
                                input_names=["x", "past_state", "attention_mask"],
                                output_names=["out", "present", "full"], dynamic_shapes=({0: b, 1: t}, {0: b}, {0: b, 1: t}))
    model = program.model_proto
    attach_function_bodies(model, next(i.version for i in model.opset_import if i.domain == ""))
    assert [n.op_type for n in model.graph.node].count(CORE_NAME) == 1
    return layer, model


def _decode(run, layer, x, mask):
    """Prefill all but the last 3 tokens, then 3 one-token steps feeding the state back."""
    past = np.zeros((x.shape[0], *causal_state_shape(H, D, FMAP, P, 1)), np.float32)
    outs = []
    for lo, hi in ((0, x.shape[1] - 3), *((i, i + 1) for i in range(x.shape[1] - 3, x.shape[1]))):
        out, past, full = run(x[:, lo:hi], past, mask[:, lo:hi])
        outs.append(out)
        if lo == 0:
            with torch.no_grad():
                _, _, want = layer(x[:, lo:hi], None, mask[:, lo:hi])
            np.testing.assert_allclose(full, want.numpy(), atol=1e-5, rtol=1e-4)
    return np.concatenate(outs, 1), past


@pytest.mark.parametrize("linear_attention", ["ort", "onnx"])
def test_lowered_model_decodes_like_torch(exported, linear_attention):
    layer, model = exported
    lowered, count = lower_causal_core(model, linear_attention)
    assert count == 1
    ops = {(n.domain, n.op_type) for n in lowered.graph.node}
    want = ("com.microsoft" if linear_attention == "ort" else "", "LinearAttention")
    assert want in ops and ("com.flurka", CORE_NAME) not in ops and ("com.flurka", "FlurkaAttention") in ops
    if linear_attention == "onnx":
        assert {i.version for f in lowered.functions for i in f.opset_import if i.domain == ""} == {27}
        assert {i.domain or "ai.onnx": i.version for i in lowered.opset_import}["ai.onnx"] == 27
        onnx.checker.check_model(lowered, full_check=True)

    torch.manual_seed(1)
    x = torch.randn(2, 40, WIDTH)
    mask = torch.ones(2, 40, dtype=torch.int64)
    mask[1, :4] = 0  # row 1 is left-padded
    x[1, :4] = float("nan")
    with torch.no_grad():
        want_out, want_state, _ = layer(x, None, mask, form="naive")

    sess = make_session(lowered.SerializeToString(), ["CPUExecutionProvider"])
    def ort_run(xs, past, m):  # noqa: E306
        return sess.run(None, {"x": xs.numpy(), "past_state": past, "attention_mask": m.numpy()})
    runners = [ort_run]
    if linear_attention == "onnx":
        from onnx.reference import ReferenceEvaluator
        ref = ReferenceEvaluator(lowered)
        runners.append(lambda xs, past, m: ref.run(None, {"x": xs.numpy(), "past_state": past,
                                                           "attention_mask": m.numpy()}))
    for run in runners:
        out, state = _decode(run, layer, x, mask)
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out, want_out.numpy(), atol=2e-5, rtol=1e-4)
        np.testing.assert_allclose(state, want_state.numpy(), rtol=1e-4, atol=1e-5 * float(want_state.abs().max()))


def test_lowering_refuses_unknown_variant(exported):
    with pytest.raises(ValueError, match="unknown linear_attention"):
        lower_causal_core(exported[1], "cuda")
