"""Every map's ONNX function body, run alone in ONNX Runtime, against the PyTorch reference: with the default
attributes, and with non-default ones (a body that drops or hard-codes an attribute fails here)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from flurka_export.ops import FEATURE_MAPS, flurka_attention_reference
from flurka_export.ops.feature_maps import DEFAULTS, OPTIONAL_ATTRIBUTES, get
from flurka_export.ops.onnx_bodies import attach_function_bodies
from flurka_export.ops.schema import OP_DOMAIN, OP_NAME
from flurka_export.runtimes.ort_runner import make_session
from tests.helpers import PROBE_ATTRIBUTES, op_inputs, probe_attributes

NAMES = ("query", "key", "value", "feature_proj")


def single_node_model(feature_map: str, inputs: list[torch.Tensor], num_heads: int, **attrs) -> onnx.ModelProto:
    """One FlurkaAttention node over graph inputs, with its function body attached as `export` does."""
    node = helper.make_node(OP_NAME, list(NAMES[:len(inputs)]), ["out"], domain=OP_DOMAIN, num_heads=num_heads,
                            feature_map=feature_map, **attrs)
    graph = helper.make_graph(
        [node], "one_op", [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(t.shape))
                           for n, t in zip(NAMES, inputs, strict=False)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, None, None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    attach_function_bodies(model, 20)
    onnx.checker.check_model(model, full_check=True)
    return model


def run_body(feature_map: str, shape: dict, **attrs) -> tuple[np.ndarray, torch.Tensor]:
    q, k, v, proj = op_inputs(feature_map, h=2, **shape)
    inputs = [t for t in (q, k, v, proj) if t is not None]
    model = single_node_model(feature_map, inputs, 2, **attrs)
    feeds = {n: t.numpy() for n, t in zip(NAMES, inputs, strict=False)}
    got = make_session(model.SerializeToString(), ["CPUExecutionProvider"]).run(None, feeds)[0]
    want = flurka_attention_reference(q, k, v, proj, num_heads=2, feature_map=feature_map, **attrs)
    return got, want


@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
@pytest.mark.parametrize("shape", [dict(b=2, nq=5, nk=7), dict(b=1, nq=1, nk=1), dict(b=1, nq=9, nk=3, d=4, dv=6)])
@pytest.mark.parametrize("attrs", ["default", "probe"])
def test_body_matches_reference(feature_map, shape, attrs):
    values = probe_attributes(feature_map) if attrs == "probe" else {}
    got, want = run_body(feature_map, shape, **values)
    np.testing.assert_allclose(got, want.numpy(), atol=2e-5, rtol=1e-4)


def test_probes_cover_every_optional_attribute():
    missing = [a.name for a in OPTIONAL_ATTRIBUTES if a.name not in PROBE_ATTRIBUTES]
    assert not missing, f"tests/helpers.py PROBE_ATTRIBUTES has no value for the attributes {missing}"
    for name, value in PROBE_ATTRIBUTES.items():
        assert value != DEFAULTS[name], f"PROBE_ATTRIBUTES[{name!r}] equals the default"


@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
def test_probes_move_the_output(feature_map):
    # Each attribute a map reads, set alone to its probe value, changes the reference output by far more than
    # any backend's tolerance: a backend that ignores it cannot pass the probe tests.
    q, k, v, proj = op_inputs(feature_map, h=2)
    base = flurka_attention_reference(q, k, v, proj, num_heads=2, feature_map=feature_map)
    for a in get(feature_map).attributes:
        moved = flurka_attention_reference(q, k, v, proj, num_heads=2, feature_map=feature_map,
                                           **{a.name: PROBE_ATTRIBUTES[a.name]})
        assert (moved - base).abs().max() > 1e-2, f"{feature_map}: PROBE_ATTRIBUTES[{a.name!r}] barely moves it"
