"""fp32 vs int8 side by side on a test set, through the ListOps example's --int8 flag."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_listops.py"


def test_listops_example_int8(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("example_train_listops_int8", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    res = module.main(["--max-len", "40", "--min-len", "8", "--train-size", "64", "--val-size", "16",
                       "--test-size", "64", "--minutes", "1", "--max-steps", "3", "--batch-size", "16",
                       "--low-rank", "8", "--no-progress", "--int8", "--out-dir", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert "test accuracy  fp32" in out and "top-1 agreement" in out and "int8-dynamic" in out
    assert Path(res["onnx_int8"]).is_file() and res["onnx_int8"].endswith("listops.int8.onnx")
    assert res["int8_top1_agreement"] >= 0.9 and 0 < res["int8_max_abs_logit_diff"] < 1.0
    assert abs(res["test_accuracy_int8"] - res["test_accuracy_torch"]) <= 0.1
