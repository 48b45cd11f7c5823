"""export --opset N writes bodies for opset N (no conversion afterwards), for the newest opsets too;
an opset the exporter cannot produce is one clear error."""

import numpy as np
import onnx
import pytest

from flurka_export.cli import main
from flurka_export.export.check_functions import check_flurka_functions
from flurka_export.parity import make_inputs
from flurka_export.runtimes.ort_runner import make_session


@pytest.mark.slow
@pytest.mark.parametrize("opset", [25])  # 18 and 21: tests/export/test_onnx_export.py
def test_bodies_regenerated_for_opset(tmp_path, opset, capsys):
    ckpt = tmp_path / "ckpt"
    assert main(["new", "--attention", "flurka-rfa", "-o", str(ckpt)]) == 0
    out = tmp_path / "m.onnx"
    assert main(["export", str(ckpt), "-o", str(out), "--opset", str(opset)]) == 0
    model = onnx.load(str(out))
    assert {i.domain: i.version for i in model.opset_import}[""] == opset
    assert [imp.version for f in model.functions for imp in f.opset_import if imp.domain == ""] == [opset]
    assert check_flurka_functions(model) == []
    ref20 = tmp_path / "m20.onnx"
    assert main(["export", str(ckpt), "-o", str(ref20)]) == 0
    from flurka_export.models import load_pretrained

    feed = make_inputs(load_pretrained(ckpt).config, (2, 40))
    got = make_session(out, ["CPUExecutionProvider"]).run(None, feed)[0]
    ref = make_session(ref20, ["CPUExecutionProvider"]).run(None, feed)[0]
    np.testing.assert_allclose(got, ref, atol=1e-6, rtol=1e-5)


def test_unreachable_opset_is_one_line(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    assert main(["new", "-o", str(ckpt)]) == 0
    capsys.readouterr()
    assert main(["export", str(ckpt), "-o", str(tmp_path / "m.onnx"), "--opset", "26"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == "flurka-export export: error: opset 26 is not supported; allowed: 18 to 25"
    assert not (tmp_path / "m.onnx").exists()
