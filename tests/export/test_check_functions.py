"""inspect --check: intact models pass; damage is named; files meant for the TensorRT plugin are not flagged."""

import onnx

from flurka_export.cli import main
from flurka_export.export.check_functions import check_flurka_functions
from flurka_export.passes.prepare_trt import prepare_for_tensorrt
from tests.passes.exported import load, tiny_onnx


def test_intact_model(capsys):
    assert check_flurka_functions(load()) == []
    assert main(["inspect", str(tiny_onnx()), "--check"]) == 0
    assert "check: 2 FlurkaAttention nodes with overloads, bodies and opset import intact" in capsys.readouterr().out


def test_stripped_for_tensorrt_is_not_a_problem():
    model, _ = prepare_for_tensorrt(load(), strip_bodies=True)
    assert check_flurka_functions(model) == []


def test_findings():
    model = load()
    del model.functions[:]
    assert "onnx.version_converter drops model-local functions" in check_flurka_functions(model)[0]

    model = load()
    model.functions[0].opset_import[0].version = 18
    assert "imports opset 18 but the model opset 20" in check_flurka_functions(model)[0]

    model = load()
    keep = [i for i in model.opset_import if i.domain != "com.flurka"]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    assert "com.flurka opset import is missing" in check_flurka_functions(model)[0]

    model = load()
    for n in model.graph.node:
        if n.op_type == "FlurkaAttention":
            n.domain = ""
            n.op_type = "Identity"
            del n.input[1:]
            del n.attribute[:]
    assert "inlined into standard ops" in check_flurka_functions(model)[0]


def test_decomposed_export_is_not_flagged(tmp_path):
    model = load()
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props},
                                        "flurka.attention_op": "decomposed"})
    for n in list(model.graph.node):
        if n.op_type == "FlurkaAttention":
            model.graph.node.remove(n)
    assert check_flurka_functions(model) == []
