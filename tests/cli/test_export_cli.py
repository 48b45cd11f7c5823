"""export / inspect from the command line, including bad input."""

import json

import pytest

from flurka_export.cli import main


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("ck") / "ckpt"
    assert main(["new", "--attention", "flurka-favor", "-o", str(d)]) == 0
    return d


def test_export_and_inspect(ckpt, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(ckpt), "-o", str(out), "--dtype", "fp16"]) == 0
    assert "2 FlurkaAttention nodes" in capsys.readouterr().out
    assert main(["inspect", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["opsets"] == {"ai.onnx": 20, "com.flurka": 1}
    assert info["weight_dtype"] == "float16"
    assert info["dynamic_axes"]["input_ids"] == {"0": "batch", "1": "sequence"}
    assert [n["attributes"]["feature_map"] for n in info["flurka_nodes"]] == ["favor", "favor"]
    assert all(n["has_body"] for n in info["flurka_nodes"])
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "encoder.layers.1.attention/FlurkaAttention: num_heads=2, feature_map=favor" in text


@pytest.mark.parametrize("args,match", [
    (["export", "{tmp}/missing", "-o", "{tmp}/m.onnx"], "does not exist"),
    (["export", "{ckpt}", "-o", "{tmp}/m.onnx", "--max-seq-len", "4096"], "max_seq_len=4096 is outside"),
    (["export", "{ckpt}", "-o", "{tmp}/m.onnx", "--dtype", "fp8"], "--dtype: invalid choice: 'fp8'"),
    (["inspect", "{tmp}/corrupt.onnx"], "is not a valid ONNX model"),
])
def test_bad_input_clear_error_no_output(ckpt, tmp_path, capsys, args, match):
    (tmp_path / "corrupt.onnx").write_bytes(b"\x08\x07garbage-not-onnx\xff\xff")
    args = [a.format(tmp=tmp_path, ckpt=ckpt) for a in args]
    try:
        code = main(args)
    except SystemExit as e:  # a bad flag value is a usage error, raised while parsing
        code = e.code
    assert code == 1
    assert match in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.onnx"]
