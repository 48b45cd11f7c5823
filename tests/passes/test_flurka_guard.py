"""The guard refuses any change to FlurkaAttention nodes, overloads, bodies, opset import or float inputs."""

import onnx
import pytest

from flurka_export.passes.flurka_guard import FlurkaNodeLost, assert_preserved, snapshot
from tests.passes.exported import load


def _flurka(model):
    return [n for n in model.graph.node if n.op_type == "FlurkaAttention"]


def test_unchanged_model_passes():
    model = load()
    assert_preserved(snapshot(model), model, "nothing")


def _clear_overload(m):
    _flurka(m)[0].overload = ""


def _drop_bodies(m):
    del m.functions[:]


def _edit_body(m):
    m.functions[0].node[0].name = "renamed"


def _inline_one(m):
    m.graph.node.remove(_flurka(m)[1])


def _change_attr(m):
    next(a for a in _flurka(m)[0].attribute if a.name == "num_heads").i = 1


def _drop_opset(m):
    keep = [i for i in m.opset_import if i.domain != "com.flurka"]
    del m.opset_import[:]
    m.opset_import.extend(keep)


def _quantize_input(m):
    node = _flurka(m)[0]
    dq = onnx.helper.make_node("DequantizeLinear", ["q", "s"], ["dq_out"])
    m.graph.node.insert(0, dq)
    node.input[0] = "dq_out"


@pytest.mark.parametrize("damage, message", [
    (_clear_overload, "changed the overload"),
    (_drop_bodies, "removed the function body com.flurka::FlurkaAttention[elu]"),
    (_edit_body, "changed the function body"),
    (_inline_one, "left 1 of 2 FlurkaAttention nodes"),
    (_change_attr, "changed the attributes or inputs"),
    (_drop_opset, "dropped the com.flurka opset import"),
    (_quantize_input, "its inputs must stay float"),
])
def test_damage_is_refused(damage, message):
    model = load()
    before = snapshot(model)
    damage(model)
    with pytest.raises(FlurkaNodeLost) as e:
        assert_preserved(before, model, "some tool")
    assert str(e.value).startswith("some tool ") and message in str(e.value)
