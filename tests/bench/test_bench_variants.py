"""bench --variants: fp32, optimized and int8 ORT rows from one run, with ratios against fp32."""

import pytest

from flurka_export.bench.variants import expand_runtimes, parse_variants, ratio_lines, split_runtime
from flurka_export.cli import main


def test_cli_variants_side_by_side(capsys):
    assert main(["bench", "--kinds", "flurka-elu", "--runtimes", "ort-cpu", "--variants", "fp32,optimized,int8",
                 "--seq-lens", "16", "--layers", "1", "--hidden", "32", "--heads", "2", "--low-rank", "8",
                 "--iters", "2", "--warmup", "1", "--threads", "1", "--no-progress", "--in-process"]) == 0
    text = capsys.readouterr().out
    for rt in ("ort-cpu ", "ort-cpu+optimized", "ort-cpu+int8"):
        assert f"flurka-elu  {rt}" in text
    assert "flurka-elu ort-cpu N=16: optimized " in text and "int8 " in text and "vs fp32" in text


def test_helpers():
    assert parse_variants(["int8", "fp32", "int8"]) == ["int8", "fp32"]
    with pytest.raises(ValueError, match="unknown variant 'fp8'; allowed: fp32, optimized, int8"):
        parse_variants(["fp8"])
    assert expand_runtimes(["torch-cpu", "ort-cpu"], ["fp32", "int8"]) == ["torch-cpu", "ort-cpu", "ort-cpu+int8"]
    with pytest.raises(ValueError, match="need an ONNX Runtime runtime"):
        expand_runtimes(["torch-cpu"], ["int8"])
    assert split_runtime("ort-cpu+int8") == ("ort-cpu", "int8") and split_runtime("trt") == ("trt", "fp32")
    rows = [{"kind": "flurka-elu", "runtime": rt, "seq_len": 64, "p50_ms": ms}
            for rt, ms in (("ort-cpu", 10.0), ("ort-cpu+int8", 4.0), ("torch-cpu", 9.0))]
    assert ratio_lines(rows) == ["flurka-elu ort-cpu N=64: int8 2.50x vs fp32 (p50 ratio, same run)"]
