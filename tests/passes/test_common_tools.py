"""What the usual ONNX tools do to our node, run as a user would: either FlurkaAttention comes through
intact (and runs the same), or `inspect --check` and `optimize` refuse the result with one clear line
that names the tool."""

import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from flurka_export.cli import main
from flurka_export.export.check_functions import check_flurka_functions
from flurka_export.parity import make_inputs
from flurka_export.passes.flurka_guard import snapshot
from flurka_export.runtimes.ort_runner import make_session
from tests.helpers import tiny_config
from tests.passes.exported import tiny_onnx


def ort_offline(level):
    def run(src, dst):
        so = ort.SessionOptions()
        so.graph_optimization_level = level
        so.optimized_model_filepath = str(dst)
        ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
    return run


def quant_pre_process(**options):
    def run(src, dst):
        from onnxruntime.quantization.shape_inference import quant_pre_process as pre

        pre(str(src), str(dst), **options)
    return run


def version_converter(src, dst):
    onnx.save(onnx.version_converter.convert_version(onnx.load(str(src)), 21), str(dst))


def onnxslim(src, dst):
    slim = pytest.importorskip("onnxslim")
    onnx.save(slim.slim(onnx.load(str(src))), str(dst))


def onnxsim(src, dst):
    sim = pytest.importorskip("onnxsim")
    model, ok = sim.simplify(onnx.load(str(src)))
    assert ok
    onnx.save(model, str(dst))


# (tool, what our refusal must name if the node does not survive)
TOOLS = [
    pytest.param(ort_offline(ort.GraphOptimizationLevel.ORT_ENABLE_BASIC), "optimized_model_filepath", id="ort-basic"),
    pytest.param(ort_offline(ort.GraphOptimizationLevel.ORT_ENABLE_ALL), "optimized_model_filepath", id="ort-all"),
    pytest.param(quant_pre_process(), "quant_pre_process", id="quant_pre_process"),
    pytest.param(quant_pre_process(skip_symbolic_shape=True), "quant_pre_process", id="quant_pre_process-noshape"),
    pytest.param(version_converter, "onnx.version_converter", id="version_converter"),
    pytest.param(onnxslim, "onnxslim", id="onnxslim"),
    pytest.param(onnxsim, "onnxsim", id="onnxsim"),
]


@pytest.mark.parametrize("tool, culprit", TOOLS)
def test_tool_keeps_node_or_we_refuse(tmp_cwd, capsys, tool, culprit):
    tmp_path = tmp_cwd  # quant_pre_process leaves an external-data file in the working directory
    src = tmp_path / "model.onnx"
    shutil.copy(tiny_onnx(), src)
    out = tmp_path / "tool.onnx"
    try:
        tool(src, out)
    except Exception as e:  # the tool itself gives up on our model: nothing was written that could mislead
        assert not out.exists(), f"{culprit} failed ({e}) but left a file"
        return
    model = onnx.load(str(out))
    problems = check_flurka_functions(model)
    if not problems and snapshot(model) == snapshot(onnx.load(str(src))):  # survived: same nodes, same numbers
        feed = make_inputs(tiny_config(), (2, 30))
        got = make_session(str(out), ["CPUExecutionProvider"]).run(None, feed)[0]
        ref = make_session(str(src), ["CPUExecutionProvider"]).run(None, feed)[0]
        np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-4)
        assert main(["inspect", str(out), "--check"]) == 0
        return
    assert problems and culprit in problems[0], problems
    capsys.readouterr()
    assert main(["inspect", str(out), "--check"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("flurka-export inspect: error: check failed") and culprit in err and "\n" not in err
    assert main(["optimize", str(out), "-o", str(tmp_path / "opt.onnx")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("flurka-export optimize: error: refusing to optimize") and culprit in err
    assert not (tmp_path / "opt.onnx").exists()
