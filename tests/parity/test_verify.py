"""verify: passes on good exports, fails (naming the output and layer) on bad ones."""

import json

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flurka_export import export_onnx
from flurka_export.cli import main
from flurka_export.models import ATTENTION_KINDS, FlurkaConfig, build_model, save_pretrained
from flurka_export.parity.verify import VerifyOptions, verify
from tests.helpers import tiny_config


def _make(tmp_path, dtype="fp32", **config):
    model = build_model(tiny_config(**config))
    save_pretrained(model, tmp_path / "ckpt")
    export_onnx(model, tmp_path / "m.onnx", dtype=dtype)
    return tmp_path / "ckpt", tmp_path / "m.onnx"


@pytest.mark.parametrize("attention", ATTENTION_KINDS)
def test_passes_on_good_exports(tmp_path, attention):
    ckpt, path = _make(tmp_path, attention=attention, task="mlm" if attention.endswith("elu") else "classify")
    report = verify(ckpt, path, VerifyOptions(runtimes=("torch", "ort"), per_layer=True))
    assert report.passed, report.rows
    outputs = {r["output"] for r in report.rows}
    assert {"logits", "layer0.attention", "layer1.output"} <= outputs
    assert {r["shape"] for r in report.rows} == {"1x1", "3x65", "2x128"}


def test_image_model(tmp_path):
    ckpt, path = _make(tmp_path, attention="flurka-favor", task="image")
    report = verify(ckpt, path, VerifyOptions(runtimes=("torch", "ort"), per_layer=True))
    assert report.passed and {r["shape"] for r in report.rows} == {"1x17", "3x17"}


def _perturb(path, name_part, scale=1.01):
    proto = onnx.load(path)
    (t,) = [t for t in proto.graph.initializer if name_part in t.name]
    arr = onnx.numpy_helper.to_array(t) * scale
    t.CopyFrom(onnx.numpy_helper.from_array(arr.astype(arr.dtype), t.name))
    onnx.save(proto, path)


def test_fails_on_perturbed_weight_and_names_layer(tmp_path, capsys):
    ckpt, path = _make(tmp_path, attention="flurka-elu")
    _perturb(path, "layers.1.attention.E_K", 1.5)
    report_path = tmp_path / "r.json"
    rc = main(["verify", str(ckpt), str(path), "--per-layer", "--runtimes", "torch,ort", "--report", str(report_path)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "ort: first diverging tensor: layer1.attention" in out
    assert "RESULT: FAIL" in out
    report = json.loads(report_path.read_text())
    assert report["passed"] is False and report["first_divergence"] == {"ort": "layer1.attention"}
    failing = {r["output"] for r in report["rows"] if not r["passed"]}
    assert "layer0.attention" not in failing and "layer0.output" not in failing


def test_fails_when_body_disagrees_with_reference(tmp_path, capsys):
    ckpt, path = _make(tmp_path, attention="flurka-elu")
    proto = onnx.load(path)
    (fn,) = proto.functions
    # Break the body: elu(x) + 1 -> elu(x) + 1.5 (the node-level constant "one")
    for node in fn.node:
        for a in node.attribute:
            if a.name == "value_float" and a.f == 1.0:
                a.f = 1.5
    onnx.save(proto, path)
    assert main(["verify", str(ckpt), str(path), "--per-layer", "--runtimes", "ort"]) == 1
    out = capsys.readouterr().out
    assert "first diverging tensor: layer0.attention" in out


def test_fp16_with_too_tight_tolerance_fails(tmp_path, capsys):
    ckpt, path = _make(tmp_path, dtype="fp16", attention="flurka-rfa")
    assert main(["verify", str(ckpt), str(path), "--runtimes", "ort"]) == 0
    capsys.readouterr()
    assert main(["verify", str(ckpt), str(path), "--runtimes", "ort", "--atol", "1e-6", "--rtol", "1e-6"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_require_trt_fails_without_tensorrt(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here; this test checks the missing-TensorRT path")
    except ImportError:
        pass
    ckpt, path = _make(tmp_path, attention="flurka-elu")
    report = tmp_path / "r.json"
    assert main(["verify", str(ckpt), str(path), "--require", "trt", "--report", str(report)]) == 1
    out = capsys.readouterr().out
    assert "trt: did not run (FAIL, it was asked for): TensorRT not installed" in out
    data = json.loads(report.read_text())
    assert data["meta"]["failed_required"] == ["trt"] and "trt" in data["skipped"]
    assert data["meta"]["versions"]["tensorrt"] == "not installed"
    assert {"torch", "onnx", "onnxruntime"} <= set(data["meta"]["versions"])


def _softmax_relative_errors(model, shapes, seed=0):
    """Independently of parity/softmax_error.py: each layer's attention output against exact softmax attention
    written out by hand (Q K^T / sqrt(d), padded keys masked, softmax, V, out) on the layer's own inputs."""
    import torch

    from flurka_export.parity import make_inputs
    layers = model.config.spec.hook_layers(model)
    sums = [[0.0, 0.0] for _ in layers]

    def hook_for(i, att):
        def hook(module, args, output):
            x = args[0]
            b, n, dm = x.shape
            mask = args[1] if len(args) > 1 and args[1] is not None else torch.ones(b, n)
            h = att.num_heads
            q, k, v = (lin(x).reshape(b, n, h, dm // h).transpose(1, 2) for lin in (att.query, att.key, att.value))
            scores = q @ k.transpose(-1, -2) / (dm // h) ** 0.5
            scores = scores.masked_fill(~mask.bool()[:, None, None, :], float("-inf"))
            exact = att.out((scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, dm))
            keep = mask.bool()
            sums[i][0] += float(((output - exact)[keep] ** 2).sum())
            sums[i][1] += float((exact[keep] ** 2).sum())
        return hook

    hooks = [layer.attention.register_forward_hook(hook_for(i, layer.attention)) for i, layer in enumerate(layers)]
    with torch.no_grad():
        for si, shape in enumerate(shapes):
            model(**{k: torch.from_numpy(v) for k, v in make_inputs(model.config, shape, seed=seed + si).items()})
    for hk in hooks:
        hk.remove()
    return [(num / den) ** 0.5 for num, den in sums]


def test_vs_softmax_reports_error_per_layer(tmp_path):
    from flurka_export.models import load_pretrained
    from flurka_export.parity import default_shapes

    ckpt, path = _make(tmp_path, attention="flurka-elu")
    report = verify(ckpt, path, VerifyOptions(runtimes=("torch",), vs_softmax=True))
    errs = [e["relative_error"] for e in report.softmax_error]
    model = load_pretrained(ckpt).eval()
    expected = _softmax_relative_errors(model, default_shapes(model.config))
    assert [e["layer"] for e in report.softmax_error] == [0, 1]
    assert errs == pytest.approx(expected, rel=1e-4)
    assert min(expected) > 0.01  # a FLuRKA layer is not softmax: the check above compares real differences
    # softmax against itself is exact
    ckpt2, path2 = _make(tmp_path / "s", attention="softmax")
    same = verify(ckpt2, path2, VerifyOptions(runtimes=("torch",), vs_softmax=True))
    assert max(e["relative_error"] for e in same.softmax_error) < 1e-6


def test_mismatched_checkpoint_is_refused(tmp_path, capsys):
    ckpt, path = _make(tmp_path, attention="flurka-elu")
    save_pretrained(build_model(tiny_config(attention="flurka-relu")), tmp_path / "other")
    assert main(["verify", str(tmp_path / "other"), str(path)]) == 1
    assert "was exported from a different model config (attention: checkpoint 'flurka-relu' vs ONNX 'flurka-elu')" \
        in capsys.readouterr().err


def test_shapes_outside_range_are_refused(tmp_path, capsys):
    ckpt, path = _make(tmp_path, attention="flurka-elu")
    assert main(["verify", str(ckpt), str(path), "--shapes", "2x500"]) == 1
    assert "sequence length 500 in '2x500' is outside the model's range 1..128" in capsys.readouterr().err


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    layers=st.integers(1, 2),
    heads=st.sampled_from([1, 2, 4]),
    head_dim=st.sampled_from([4, 8, 16]),
    n_max=st.integers(3, 40),
    k_frac=st.floats(0.1, 1.0),
    kind=st.sampled_from([a for a in ATTENTION_KINDS if a != "softmax"]),
    task=st.sampled_from(["classify", "mlm"]),
    seed=st.integers(0, 100),
)
def test_random_configurations_verify(tmp_path_factory, layers, heads, head_dim, n_max, k_frac, kind, task, seed):
    tmp = tmp_path_factory.mktemp("hyp")
    config = FlurkaConfig(task=task, attention=kind, num_layers=layers, hidden_size=heads * head_dim, num_heads=heads,
                          low_rank=max(1, int(k_frac * n_max)), max_seq_len=n_max, num_features=5, vocab_size=50,
                          seed=seed)
    model = build_model(config)
    save_pretrained(model, tmp / "ckpt")
    export_onnx(model, tmp / "m.onnx")
    report = verify(tmp / "ckpt", tmp / "m.onnx", VerifyOptions(runtimes=("torch", "ort"), seed=seed))
    assert report.passed, [r for r in report.rows if not r["passed"]]
    assert np.isfinite([r["max_abs"] for r in report.rows]).all()


def _no_tensorrt() -> None:
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here; this test checks the missing-TensorRT path")
    except ImportError:
        pass


@pytest.fixture(scope="module")
def elu_export(tmp_path_factory):
    return _make(tmp_path_factory.mktemp("elu"), attention="flurka-elu")


def _verdict(capsys, argv):
    code = main(argv)
    out = capsys.readouterr().out.strip().splitlines()
    return code, out[-1]


def test_default_set_passes_and_says_what_was_compared(elu_export, capsys):
    _no_tensorrt()
    ckpt, path = elu_export
    code, last = _verdict(capsys, ["verify", str(ckpt), str(path)])
    assert code == 0 and last == "RESULT: PASS (torch vs ort on 3 shapes; trt not installed)"


NO_TRT = ("RESULT: FAIL (trt was asked for but did not run; nothing was compared: PASS needs torch and at least one "
          "other runtime) (trt not installed)")


@pytest.mark.parametrize("extra,verdict", [
    (["--runtimes", "torch"], "RESULT: FAIL (nothing was compared: PASS needs torch and at least one other runtime)"),
    (["--runtimes", "torch,trt"], NO_TRT),
    (["--build-engine"], NO_TRT),
    (["--engine", "missing.plan"], NO_TRT),
])
def test_a_check_that_compares_nothing_fails(elu_export, capsys, extra, verdict):
    """The exact verdict line: each reason once (the summary says only what ran)."""
    _no_tensorrt()
    ckpt, path = elu_export
    code, last = _verdict(capsys, ["verify", str(ckpt), str(path), *extra])
    assert (code, last) == (1, verdict)


def test_optional_runtime_may_be_missing(elu_export, capsys):
    _no_tensorrt()
    ckpt, path = elu_export
    code, last = _verdict(capsys, ["verify", str(ckpt), str(path), "--runtimes", "ort,trt", "--optional", "trt"])
    assert code == 0 and "trt not installed" in last


def test_bf16_on_ort_cpu_is_never_a_pass(tmp_path, capsys):
    ckpt, path = _make(tmp_path, dtype="bf16", attention="flurka-elu")
    code = main(["verify", str(ckpt), str(path), "--runtimes", "torch,ort"])
    out = capsys.readouterr().out
    assert code == 1 and "ort: did not run (FAIL, it was asked for): ONNX Runtime's CPU provider cannot run bf16" in out
    assert out.strip().splitlines()[-1].startswith("RESULT: FAIL")


def test_table_states_its_criterion_and_worst_element(elu_export, capsys):
    ckpt, path = elu_export
    # Far looser than any fp32 difference: PASS, and the criterion line names these tolerances.
    assert main(["verify", str(ckpt), str(path), "--runtimes", "ort", "--atol", "10", "--rtol", "1e-3"]) == 0
    out = capsys.readouterr().out
    assert "pass if |runtime - torch| <= atol + rtol*|torch| for every element (atol=10, rtol=0.001)" in out
    assert "worst |a-b|" in out and "allowed" in out
    assert out.strip().splitlines()[-1] == "RESULT: PASS (torch vs ort on 3 shapes)"
    # Zero tolerance: ONNX Runtime's float32 kernels never match PyTorch's bit for bit on a whole model.
    assert main(["verify", str(ckpt), str(path), "--runtimes", "ort", "--atol", "0", "--rtol", "0"]) == 1
    out = capsys.readouterr().out
    assert "(atol=0, rtol=0)" in out
    assert out.strip().splitlines()[-1] == "RESULT: FAIL (torch vs ort outside tolerance) (torch vs ort on 3 shapes)"
