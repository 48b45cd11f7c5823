"""ORT transformer fusions: the rest of the graph is fused, FlurkaAttention and its bodies come through,
and ONNX Runtime gives the same logits."""

import numpy as np
import pytest

from flurka_export.parity import make_inputs
from flurka_export.passes.flurka_guard import snapshot
from flurka_export.passes.ort_fusions import apply_ort_fusions
from flurka_export.runtimes.ort_runner import make_session
from tests.helpers import tiny_config
from tests.passes.exported import load


def _run(model, feed):
    return make_session(model.SerializeToString(), ["CPUExecutionProvider"]).run(None, feed)[0]


@pytest.mark.parametrize("attention", ["flurka-elu", "kernel-favor"])
def test_fuses_and_keeps_flurka(attention):
    model = load(attention)
    before = snapshot(model)
    fused, stats = apply_ort_fusions(model, "all")
    assert stats.get("SkipLayerNormalization", 0) >= 2 and stats.get("BiasGelu", 0) == 2
    ops = [n.op_type for n in fused.graph.node]
    assert "SkipLayerNormalization" in ops and ops.count("FlurkaAttention") == 2
    assert snapshot(fused) == before  # nodes, overloads, bodies byte for byte, opset import
    feed = make_inputs(tiny_config(attention=attention), (3, 40))
    np.testing.assert_allclose(_run(fused, feed), _run(model, feed), atol=1e-5, rtol=1e-4)


def test_levels():
    model = load()
    same, stats = apply_ort_fusions(model, "none")
    assert same is model and stats == {}
    _, basic = apply_ort_fusions(model, "basic")
    assert "SkipLayerNormalization" in basic
    with pytest.raises(ValueError, match="unknown optimization level 'max'; allowed: none, basic, all"):
        apply_ort_fusions(model, "max")
