"""merge_decoders: two decoders behind one If, weights stored once, the same outputs as each decoder alone."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from flurka_export.passes.merge_decoders import merge_decoders


def decoder(with_past: bool, weight: float = 2.0) -> onnx.ModelProto:
    """first: y = x * w, present.s = x + 1; with past: y = x * w + past.s, present.s only from the first."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [1], [weight])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "t"])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", "t"])
    s = helper.make_tensor_value_info("present.0.encoder.state", TensorProto.FLOAT, ["b", "t"])
    past = helper.make_tensor_value_info("past_key_values.0.encoder.state", TensorProto.FLOAT, ["b", "t"])
    if with_past:
        nodes = [helper.make_node("Mul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", past.name], ["logits"])]
        graph = helper.make_graph(nodes, "later", [x, past], [y], [w])
    else:
        one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
        nodes = [helper.make_node("Mul", ["x", "w"], ["logits"]),
                 helper.make_node("Add", ["x", "one"], ["present.0.encoder.state"])]
        graph = helper.make_graph(nodes, "first", [x], [y, s], [w, one])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model, **feed):
    sess = ort.InferenceSession(model.SerializeToString())
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed), strict=True))


def test_each_branch_computes_its_decoder_and_weights_are_stored_once():
    merged = merge_decoders(decoder(False), decoder(True))
    onnx.checker.check_model(merged)
    assert len(merged.graph.initializer) == 2  # w shared, one from the first step only
    x, past = np.array([[1.0, 2.0]], np.float32), np.array([[10.0, 20.0]], np.float32)
    first = run(merged, x=x, **{"past_key_values.0.encoder.state": past, "use_cache_branch": np.array([False])})
    np.testing.assert_array_equal(first["logits"], x * 2)
    np.testing.assert_array_equal(first["present.0.encoder.state"], x + 1)
    later = run(merged, x=x, **{"past_key_values.0.encoder.state": past, "use_cache_branch": np.array([True])})
    np.testing.assert_array_equal(later["logits"], x * 2 + past)
    np.testing.assert_array_equal(later["present.0.encoder.state"], past)  # passed through


def test_different_weights_of_the_same_name_stay_apart():
    merged = merge_decoders(decoder(False, 2.0), decoder(True, 3.0))
    x, past = np.array([[1.0]], np.float32), np.array([[0.0]], np.float32)
    later = run(merged, x=x, **{"past_key_values.0.encoder.state": past, "use_cache_branch": np.array([True])})
    assert later["logits"][0, 0] == 3.0


def test_an_output_the_later_decoder_cannot_give_is_refused():
    later = decoder(True)
    del later.graph.input[1]
    later.graph.node[1].input[1] = "x"
    with pytest.raises(ValueError, match="neither computes 'present.0.encoder.state'"):
        merge_decoders(decoder(False), later)
