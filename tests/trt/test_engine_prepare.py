"""build_engine parses a prepare-trt copy when the nodes lack plugin_namespace (TensorRT < 10.10)."""

import onnx

from flurka_export import export_onnx
from flurka_export.models import build_model
from flurka_export.passes.prepare_trt import prepare_for_tensorrt
from flurka_export.trt.engine import _prepared
from tests.helpers import tiny_config


def _namespaces(path):
    return [a.s for n in onnx.load(path).graph.node if n.op_type == "FlurkaAttention"
            for a in n.attribute if a.name == "plugin_namespace"]


def test_unprepared_model_is_prepared_beside_it_and_cleaned_up(tmp_path):
    export_onnx(build_model(tiny_config(attention="flurka-rfa")), tmp_path / "m.onnx", external_data=True)
    model = onnx.load(tmp_path / "m.onnx", load_external_data=False)
    with _prepared(tmp_path / "m.onnx", model) as path:
        assert path.parent == tmp_path and path != tmp_path / "m.onnx"
        assert _namespaces(path) == [b"com.flurka", b"com.flurka"]  # external data still resolves
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.data"]


def test_prepared_model_is_parsed_as_is(tmp_path):
    export_onnx(build_model(tiny_config()), tmp_path / "m.onnx")
    prepared, _ = prepare_for_tensorrt(onnx.load(tmp_path / "m.onnx"))
    onnx.save(prepared, tmp_path / "p.onnx")
    with _prepared(tmp_path / "p.onnx", prepared) as path:
        assert path == tmp_path / "p.onnx"
