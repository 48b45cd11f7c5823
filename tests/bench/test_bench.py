"""bench: a tiny run end to end (table, JSON, PNG, speedups), runtime resolution, bad input."""

import json
import sys

import pytest

from flurka_export.bench.measure import BenchResult
from flurka_export.bench.report import format_table
from flurka_export.bench.run import BenchError, add_speedups, resolve_runtimes, run_bench
from flurka_export.bench.settings import BenchSettings
from flurka_export.bench.timing import default_threads
from flurka_export.cli import main

TINY = ["--seq-lens", "16,32", "--layers", "1", "--hidden", "32", "--heads", "2", "--low-rank", "8",
        "--num-features", "8", "--iters", "2", "--warmup", "1", "--threads", "1", "--no-progress"]


def test_cli_tiny_run_table_json_plot(tmp_path, capsys, monkeypatch):
    import torch

    from flurka_export.bench.memory import reset_peak_rss

    pytest.importorskip("matplotlib", reason="pip install matplotlib")
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` fails: the skip path, on every machine
    measurable = reset_peak_rss()  # Linux: VmHWM can be reset, so every row has a measured peak
    applied, set_threads = [], torch.set_num_threads

    def record_and_set(n):
        applied.append(n)
        set_threads(n)
    monkeypatch.setattr(torch, "set_num_threads", record_and_set)
    out_json, out_png = tmp_path / "b.json", tmp_path / "b.png"
    assert main(["bench", "--kinds", "softmax,flurka-elu", "--runtimes", "torch,ort,trt", "--in-process", *TINY,
                 "--json", str(out_json), "--plot", str(out_png)]) == 0
    text = capsys.readouterr().out
    assert "p50 ms" in text and "vs softmax" in text and "flurka-elu" in text and "p90/p50" in text
    assert text.startswith("threads 1 per runtime") and "1 warm-up + 2 timed calls per row" in text
    report = json.loads(out_json.read_text())
    assert applied and set(applied) == {1}  # the setting was applied (in this process), not only recorded
    assert report["settings"]["threads"] == 1 and report["settings"]["warmup"] == 1
    got = {(r["kind"], r["runtime"], r["seq_len"]) for r in report["results"]}
    assert {("softmax", "torch-cpu", 16), ("flurka-elu", "ort-cpu", 32)} <= got
    assert len(got) == len(report["results"]) == 2 * 2 * 2  # kinds x N x (torch-cpu, ort-cpu)
    for r in report["results"]:
        assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"]
        assert r["tok_per_s"] == pytest.approx(r["seq_per_s"] * r["seq_len"])
        assert r["speedup"] > 0 and (r["kind"] != "softmax" or r["speedup"] == 1.0)
        if measurable:
            assert isinstance(r["peak_mem_mb"], float) and r["peak_mem_mb"] >= 0, r
        else:
            assert r["peak_mem_mb"] is None, r
        assert r["spread"] == pytest.approx(r["p90_ms"] / r["p50_ms"], rel=1e-2) and r["unstable"] == (r["spread"] > 1.5)
    assert report["skipped"] == {"trt": "TensorRT not installed"}
    assert "trt: skipped (TensorRT not installed)" in text.splitlines()
    assert {r["runtime"] for r in report["results"]} == {"torch-cpu", "ort-cpu"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_subprocess_worker_default_threads_and_torch_peak_memory():
    # The way users run it: one worker process per (kind, runtime), threads not given. Torch rows read 0 MB
    # before (freed memory kept by malloc hid the peak); a longer sequence needs more.
    report = run_bench(BenchSettings(kinds=["softmax"], seq_lens=[64, 256], runtimes=["torch-cpu"], layers=1,
                                     hidden=64, heads=2, low_rank=8, iters=2, warmup=1), progress=False)
    assert report["settings"]["threads"] == default_threads()
    small, large = report["results"]
    assert small["runtime"] == "torch-cpu" and small["speedup"] == 1.0
    assert 0 < small["peak_mem_mb"] < large["peak_mem_mb"], (small, large)


def test_speedup_against_softmax_same_runtime_and_length():
    rs = [BenchResult("softmax", "ort-cpu", 64, 1, 10, 10, 10, 10, 1, 1, None),
          BenchResult("flurka-elu", "ort-cpu", 64, 1, 2.5, 3, 3, 3, 1, 1, None),
          BenchResult("flurka-elu", "torch-cpu", 64, 1, 2.5, 3, 3, 3, 1, 1, None)]
    add_speedups(rs)
    assert [r.speedup for r in rs] == [1.0, 4.0, None]
    text = format_table({"results": [r.__dict__ for r in rs]}, markdown=True)
    assert "| flurka-elu | ort-cpu | 64 |" in text and "4.00x" in text


def test_runtime_resolution():
    rts, notes = resolve_runtimes(["torch", "ort"])
    assert "torch-cpu" in rts and "ort-cpu" in rts
    with pytest.raises(ValueError, match="unknown runtime 'tvm'"):
        resolve_runtimes(["tvm"])


@pytest.mark.parametrize("args,match", [
    (["--kinds", "nope"], "unknown attention kind 'nope'"),
    (["--seq-lens", "a,b"], "comma-separated integers"),
    (["--runtimes", "trt", "--kinds", "softmax"], None),
])
def test_bad_input_one_line_error(args, match, capsys):
    try:
        import tensorrt  # noqa: F401
        if match is None:
            pytest.skip("TensorRT is installed")
    except ImportError:
        pass
    assert main(["bench", *TINY, *args]) == 1
    err = capsys.readouterr().err
    assert (match or "no runtime to benchmark: trt: TensorRT not installed") in err


def test_missing_matplotlib_names_the_pip_command(monkeypatch, tmp_path, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert main(["bench", *TINY, "--kinds", "softmax", "--plot", str(tmp_path / "p.png")]) == 1
    assert "pip install matplotlib" in capsys.readouterr().err
    assert not (tmp_path / "p.png").exists()


def test_trt_without_plugin_is_skipped_with_a_note(monkeypatch, tmp_path):
    import sys
    import types

    fake = types.ModuleType("tensorrt")
    fake.__version__ = "10.9.0"
    monkeypatch.setitem(sys.modules, "tensorrt", fake)  # "installed"
    monkeypatch.delenv("FLURKA_TRT_PLUGIN", raising=False)
    monkeypatch.chdir(tmp_path)  # no build/libflurka_trt_plugin.so here
    with pytest.raises(BenchError, match="trt: TensorRT plugin library not found"):
        run_bench(BenchSettings(kinds=["softmax"], seq_lens=[8], runtimes=["trt"], low_rank=8), progress=False)


def test_trt_engine_build_uses_prepared_model_and_bench_profile(monkeypatch, tmp_path):
    # TensorRT is not installable here: check what the bench hands to the project's builder.
    import onnx

    import flurka_export.trt.engine as engine
    from flurka_export.bench.measure import bench_request
    from flurka_export.export import export_onnx
    from flurka_export.models import FlurkaConfig, build_model
    from flurka_export.runtimes import get_runtime

    calls = {}

    def fake_build(onnx_path, output, **kw):
        calls.update(path=onnx_path, **kw)
        open(output, "wb").write(b"plan")
        return b"plan", []
    monkeypatch.setattr(engine, "build_engine", fake_build)
    model = build_model(FlurkaConfig(attention="flurka-relu", num_layers=1, hidden_size=32, num_heads=2,
                                     low_rank=8, max_seq_len=64, vocab_size=100))
    src = export_onnx(model, tmp_path / "m.onnx")
    settings = BenchSettings(kinds=["flurka-relu"], seq_lens=[16, 64], batch=2, plugin="lib.so")
    files = get_runtime("trt").prepare_bench(bench_request(settings, "trt", {"onnx": str(src)}), str(tmp_path))
    assert files == {"plan": str(tmp_path / "m.plan")} and (tmp_path / "m.plan").read_bytes() == b"plan"
    assert calls["plugin"] == "lib.so" and calls["max_batch"] == 2
    assert calls["shapes"] == {"input_ids": "1x16,2x64,2x64", "attention_mask": "1x16,2x64,2x64"}
    nodes = [n for n in onnx.load(str(calls["path"])).graph.node if n.op_type == "FlurkaAttention"]
    assert nodes and all(any(a.name == "plugin_namespace" for a in n.attribute) for n in nodes)


@pytest.mark.parametrize("runtime", ["torch-cpu", "ort-cpu"])
def test_peak_memory_does_not_depend_on_what_ran_before(runtime, tmp_path):
    # Memory freed by the first pass stays in the process (malloc's heap, ONNX Runtime's arena); a second pass
    # read ~0 MB for the same configurations when the measurement did not hand it back first.
    from flurka_export.bench.measure import run_group
    from flurka_export.bench.run import prepare

    settings = BenchSettings(kinds=["softmax"], seq_lens=[128, 512], runtimes=[runtime], layers=1, hidden=64,
                             heads=2, low_rank=8, iters=1, warmup=0, threads=1).validate()
    paths = prepare(settings, "softmax", [runtime], tmp_path)
    first = [r.peak_mem_mb for r in run_group(settings, "softmax", runtime, paths)]
    again = [r.peak_mem_mb for r in run_group(settings, "softmax", runtime, paths)]
    assert all(p > 0 for p in first) and all(b >= 0.5 * a for a, b in zip(first, again, strict=True)), (first, again)
