"""int8 quantization: MatMul/Gemm weights int8, FlurkaAttention and its inputs float, bodies intact,
predictions close to fp32; calibration files checked."""

import numpy as np
import onnx
import pytest

from flurka_export.parity import make_inputs
from flurka_export.parity.agreement import compare_quantized, is_quantized
from flurka_export.passes.flurka_guard import snapshot
from flurka_export.passes.quantize_int8 import CalibrationError, load_calibration, quantize_int8
from flurka_export.runtimes.ort_runner import make_session
from tests.helpers import tiny_config
from tests.passes.exported import load


def _run(model, feed):
    return make_session(model.SerializeToString(), ["CPUExecutionProvider"]).run(None, feed)[0]


def _check_int8(model, quantized, expect_op):
    ops = [n.op_type for n in quantized.graph.node]
    assert expect_op in ops and ops.count("FlurkaAttention") == 2
    assert snapshot(quantized) == snapshot(model)
    assert is_quantized(quantized) and not is_quantized(model)
    int8 = [t for t in quantized.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8) >= 8  # Q, K, V, O, two FFN weights per layer (and the head)
    feed = make_inputs(tiny_config(), (4, 50))
    ref, got = _run(model, feed), _run(quantized, feed)
    c = compare_quantized("logits", ref, got)
    assert c.passed and 0 < c.max_abs < 0.1 * np.abs(ref).max(), c


def test_dynamic():
    model = load()
    q = quantize_int8(model)
    _check_int8(model, q, "MatMulInteger")
    assert {p.key: p.value for p in q.metadata_props}["flurka.quantization"] == "int8-dynamic"
    with pytest.raises(ValueError, match="already quantized"):
        quantize_int8(q)


def test_static(tmp_cwd):
    tmp_path = tmp_cwd
    model = load()
    # Calibration samples like the checked inputs: length 50, some rows padded.
    samples = [make_inputs(tiny_config(), (4, 50), seed=10 + i) for i in range(4)]
    np.savez(tmp_path / "cal.npz", **{k: np.concatenate([s[k] for s in samples]) for k in samples[0]})
    q = quantize_int8(model, load_calibration(tmp_path / "cal.npz", model))
    _check_int8(model, q, "QuantizeLinear")
    assert {p.key: p.value for p in q.metadata_props}["flurka.quantization"] == "int8-static"
    assert [p.name for p in tmp_cwd.iterdir()] == ["cal.npz"]  # no external-data file left in the working dir


def test_refuses_fp16():
    with pytest.raises(ValueError, match="int8 quantization needs an fp32 model; this one has fp16 weights"):
        quantize_int8(load(dtype="fp16"))


def test_calibration_errors(tmp_path):
    model = load()
    ids = np.zeros((4, 8), np.int64)
    np.savez(tmp_path / "one.npz", input_ids=ids)
    with pytest.raises(CalibrationError, match=r"lacks arrays for the model inputs \['attention_mask'\]"):
        load_calibration(tmp_path / "one.npz", model)
    np.savez(tmp_path / "uneven.npz", input_ids=ids, attention_mask=ids[:2])
    with pytest.raises(CalibrationError, match="same, non-zero number of samples"):
        load_calibration(tmp_path / "uneven.npz", model)
    np.savez(tmp_path / "pickled.npz", input_ids=np.array([{"a": 1}], dtype=object), attention_mask=ids)
    with pytest.raises(CalibrationError, match="not a readable .npz of numeric arrays"):
        load_calibration(tmp_path / "pickled.npz", model)
    with pytest.raises(CalibrationError, match="does not exist"):
        load_calibration(tmp_path / "nope.npz", model)
