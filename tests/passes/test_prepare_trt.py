"""prepare-trt: plugin attributes on every FlurkaAttention node; ONNX Runtime unaffected."""

import numpy as np
import onnx
import pytest

from flurka_export import export_onnx
from flurka_export.cli import main
from flurka_export.models import build_model
from flurka_export.parity import make_inputs
from flurka_export.passes.prepare_trt import prepare_for_tensorrt
from flurka_export.runtimes.ort_runner import make_session
from tests.helpers import tiny_config


@pytest.mark.parametrize("attention", ["flurka-elu", "kernel-favor"])
def test_tags_nodes_and_keeps_ort_numerics(tmp_path, attention):
    model = build_model(tiny_config(attention=attention))
    export_onnx(model, tmp_path / "m.onnx")
    prepared, count = prepare_for_tensorrt(onnx.load(tmp_path / "m.onnx"))
    assert count == 2
    onnx.checker.check_model(prepared, full_check=True)
    for node in [n for n in prepared.graph.node if n.op_type == "FlurkaAttention"]:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["plugin_namespace"] == b"com.flurka" and attrs["plugin_version"] == b"1"
    feed = make_inputs(model.config, (3, 20))
    a = make_session(prepared.SerializeToString(), ["CPUExecutionProvider"]).run(None, feed)[0]
    b = make_session(tmp_path / "m.onnx", ["CPUExecutionProvider"]).run(None, feed)[0]
    np.testing.assert_array_equal(a, b)


def test_strip_bodies(tmp_path):
    export_onnx(build_model(tiny_config(attention="flurka-rfa")), tmp_path / "m.onnx")
    prepared, _ = prepare_for_tensorrt(onnx.load(tmp_path / "m.onnx"), strip_bodies=True)
    assert not prepared.functions
    assert sum(n.op_type == "FlurkaAttention" for n in prepared.graph.node) == 2


def test_cli(tmp_path, capsys):
    export_onnx(build_model(tiny_config()), tmp_path / "m.onnx")
    assert main(["prepare-trt", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "p.onnx")]) == 0
    assert "tagged 2 FlurkaAttention nodes with plugin_namespace='com.flurka'" in capsys.readouterr().out
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage")
    assert main(["prepare-trt", str(tmp_path / "bad.onnx"), "-o", str(tmp_path / "q.onnx")]) == 1
    assert "is not a valid ONNX model" in capsys.readouterr().err
    assert not (tmp_path / "q.onnx").exists()
