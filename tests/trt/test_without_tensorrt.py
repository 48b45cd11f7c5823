"""Without TensorRT (every machine here): one clear sentence, exit 1, no output file."""

import pytest

from flurka_export import export_onnx
from flurka_export.cli import main
from flurka_export.models import build_model
from flurka_export.trt import tensorrt_missing_reason
from tests.helpers import tiny_config

pytestmark = pytest.mark.skipif(tensorrt_missing_reason() is None, reason="TensorRT is installed here")


def test_build_engine_says_what_is_missing(tmp_path, capsys):
    export_onnx(build_model(tiny_config()), tmp_path / "m.onnx")
    assert main(["build-engine", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "m.plan")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "TensorRT is not installed" in err and "install TensorRT 10.9 or newer" in err
    assert not (tmp_path / "m.plan").exists()


def test_build_plugin_without_headers(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TensorRT_ROOT", raising=False)
    monkeypatch.delenv("TENSORRT_ROOT", raising=False)
    assert main(["build-plugin", "-o", str(tmp_path / "b"), "--tensorrt-root", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "TensorRT's C++ headers (NvInferRuntime.h) were not found" in err
    assert not (tmp_path / "b").exists()


def test_verify_lists_trt_as_skipped(tmp_path, capsys):
    from flurka_export.models import save_pretrained

    model = build_model(tiny_config())
    save_pretrained(model, tmp_path / "ck")
    export_onnx(model, tmp_path / "m.onnx")
    assert main(["verify", str(tmp_path / "ck"), str(tmp_path / "m.onnx")]) == 0
    assert "trt: did not run (not counted): TensorRT not installed" in capsys.readouterr().out
