"""fuse: a decomposed export becomes the custom export (same nodes, same numerics)."""

import numpy as np
import onnx
import pytest

from flurka_export import export_onnx
from flurka_export.cli import main
from flurka_export.models import build_model
from flurka_export.ops.feature_maps import FEATURE_MAPS
from flurka_export.parity import make_inputs
from flurka_export.passes.fuse_flurka_attention import fuse_flurka_attention
from flurka_export.runtimes.ort_runner import make_session
from tests.helpers import PROBE_ATTRIBUTES, tiny_config


def _flurka_nodes(model):
    return [(n.op_type, n.domain, n.overload, len(n.input),
             sorted((a.name, onnx.helper.get_attribute_value(a)) for a in n.attribute))
            for n in model.graph.node if n.domain == "com.flurka"]


CASES = [(f"flurka-{m}", dtype) for m in FEATURE_MAPS for dtype in ("fp32", "fp16") if m != "dpfp"]
CASES += [("kernel-favor", "fp32"), ("kernel-favor", "fp16"), ("flurka-dpfp", "fp16"), ("kernel-dpfp", "fp32")]


@pytest.mark.parametrize("attention,dtype", CASES)
def test_fuse_matches_custom_export(tmp_path, attention, dtype):
    # Non-default attributes: the fused node must carry the values the decomposed graph computes with.
    attrs = {**PROBE_ATTRIBUTES, "nu": 3 if attention == "kernel-dpfp" else PROBE_ATTRIBUTES["nu"]}
    model = build_model(tiny_config(attention=attention, **attrs))
    export_onnx(model, tmp_path / "dec.onnx", attention_op="decomposed", dtype=dtype)
    export_onnx(model, tmp_path / "custom.onnx", dtype=dtype)
    custom = onnx.load(tmp_path / "custom.onnx")
    fused, count = fuse_flurka_attention(onnx.load(tmp_path / "dec.onnx"))
    assert count == 2
    onnx.checker.check_model(fused, full_check=True)
    assert _flurka_nodes(fused) == _flurka_nodes(custom)
    assert len(fused.graph.node) == len(custom.graph.node)  # no leftover casts or dead nodes
    assert {(f.name, f.overload) for f in fused.functions} == {(f.name, f.overload) for f in custom.functions}
    float_dtype = "float16" if dtype == "fp16" else "float32"
    for shape in [(1, 1), (3, 40), (2, 128)]:
        feed = make_inputs(model.config, shape, float_dtype=float_dtype)
        a = make_session(fused.SerializeToString(), ["CPUExecutionProvider"]).run(None, feed)[0]
        b = make_session(tmp_path / "custom.onnx", ["CPUExecutionProvider"]).run(None, feed)[0]
        np.testing.assert_allclose(a.astype(np.float32), b.astype(np.float32), atol=1e-6, rtol=0)


def test_fuse_leaves_softmax_alone(tmp_path):
    model = build_model(tiny_config(attention="linformer"))
    export_onnx(model, tmp_path / "m.onnx")
    original = onnx.load(tmp_path / "m.onnx")
    fused, count = fuse_flurka_attention(original)
    assert count == 0 and not _flurka_nodes(fused)


def test_fuse_refuses_changed_constants(tmp_path):
    # A body whose rfa scale is not the op's RFA_SCALE (0.1) is not FlurkaAttention: it must not be fused.
    model = build_model(tiny_config(attention="kernel-rfa"))
    export_onnx(model, tmp_path / "dec.onnx", attention_op="decomposed")
    proto = onnx.load(tmp_path / "dec.onnx")
    for t in proto.graph.initializer:
        arr = onnx.numpy_helper.to_array(t)
        if arr.size == 1 and np.isclose(float(arr.reshape(-1)[0]), 0.1):
            t.CopyFrom(onnx.numpy_helper.from_array(np.full_like(arr, 0.2), t.name))
    _, count = fuse_flurka_attention(proto)
    assert count == 0


def test_fuse_cli(tmp_path, capsys):
    export_onnx(build_model(tiny_config(attention="flurka-elu")), tmp_path / "dec.onnx", attention_op="decomposed")
    assert main(["fuse", str(tmp_path / "dec.onnx"), "-o", str(tmp_path / "f.onnx")]) == 0
    assert "fused 2 FLuRKA attention subgraphs" in capsys.readouterr().out
    (tmp_path / "bad.onnx").write_bytes(b"not an onnx file at all")
    assert main(["fuse", str(tmp_path / "bad.onnx"), "-o", str(tmp_path / "out.onnx")]) == 1
    assert "is not a valid ONNX model" in capsys.readouterr().err
    assert not (tmp_path / "out.onnx").exists()
