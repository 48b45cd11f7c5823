"""`flurka-export optimize` from the command line: fusions, int8, refusals, nothing half-written."""

import numpy as np
import onnx
import pytest

from flurka_export.cli import main
from flurka_export.passes.flurka_guard import snapshot
from tests.passes.exported import load, tiny_onnx


def test_optimize_and_quantize(tmp_path, capsys):
    out = tmp_path / "opt.onnx"
    assert main(["optimize", str(tiny_onnx()), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fused: BiasGelu x2, SkipLayerNormalization x4" in text
    assert "ORT parity against the input model" in text and "-> PASS" in text
    assert snapshot(onnx.load(str(out))) == snapshot(load())

    assert main(["optimize", str(tiny_onnx()), "-o", str(out)]) == 1
    assert "already exists; pass --overwrite" in capsys.readouterr().err

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cal.npz", input_ids=rng.integers(0, 512, (4, 32)), attention_mask=np.ones((4, 32), np.int64))
    assert main(["optimize", str(tiny_onnx()), "-o", str(out), "--overwrite", "--quantize", "int8",
                 "--calibration-data", str(tmp_path / "cal.npz")]) == 0
    text = capsys.readouterr().out
    assert "quantized: int8-static" in text and "top-1 agreement" in text
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["flurka.quantization"] == "int8-static" and props["flurka.optimized"].startswith("level=all;")
    assert main(["inspect", str(out), "--check"]) == 0


def test_bad_input(tmp_path, capsys):
    out = tmp_path / "o.onnx"
    assert main(["optimize", str(tiny_onnx()), "-o", str(out), "--calibration-data", "x.npz"]) == 1
    assert "--calibration-data needs --quantize int8" in capsys.readouterr().err
    assert main(["optimize", str(tiny_onnx()), "-o", str(out), "--quantize", "int8",
                 "--calibration-data", str(tmp_path / "missing.npz")]) == 1
    assert "missing.npz does not exist" in capsys.readouterr().err
    assert main(["optimize", str(tmp_path / "none.onnx"), "-o", str(out)]) == 1
    assert not out.exists()


@pytest.mark.slow
def test_export_quantize(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    assert main(["new", "-o", str(ckpt)]) == 0
    out = tmp_path / "q.onnx"
    assert main(["export", str(ckpt), "-o", str(out), "--quantize", "int8"]) == 0
    text = capsys.readouterr().out
    assert "int8-dynamic" in text and "ORT parity against the fp32 export" in text and "PASS" in text
    model = onnx.load(str(out))
    assert sum(n.op_type == "FlurkaAttention" for n in model.graph.node) == 2 and model.functions
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "q.onnx"]  # no scratch files left
    assert main(["export", str(ckpt), "-o", str(out), "--quantize", "int8", "--dtype", "bf16"]) == 1
    assert "--quantize int8 starts from an fp32 export" in capsys.readouterr().err


def test_input_that_ort_cannot_load(tmp_path, capsys):
    model = load()
    next(n for n in model.graph.node if n.op_type == "Tanh").op_type = "NoSuchOp"  # like a bf16 model on CPU
    onnx.save(model, str(tmp_path / "bad.onnx"))
    assert main(["optimize", str(tmp_path / "bad.onnx"), "-o", str(tmp_path / "o.onnx")]) == 1
    err = capsys.readouterr().err
    assert "cannot verify: ONNX Runtime (CPU) cannot load the input model" in err and "--no-verify" in err
    assert not (tmp_path / "o.onnx").exists()
