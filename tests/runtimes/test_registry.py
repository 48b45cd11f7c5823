"""The runtime layer: every registered runtime is complete, and a new runtime is one class that verify,
bench and the CLI pick up without any other change."""

from __future__ import annotations

from typing import Any

import pytest

from flurka_export.bench import BenchSettings, run_bench
from flurka_export.cli import main
from flurka_export.parity.verify import VerifyOptions, verify
from flurka_export.runtimes import (
    BenchRequest,
    RunRequest,
    Runtime,
    TimedCall,
    get_runtime,
    registry,
    runtime_names,
    runtime_of_variant,
)


@pytest.mark.parametrize("name", runtime_names())
def test_every_variant_maps_back_to_its_runtime(name):
    runtime = get_runtime(name)
    assert set(runtime.bench_needs) <= {"checkpoint", "onnx"}, runtime.bench_needs
    for variant in runtime.variants():
        assert runtime_of_variant(variant) is runtime


def test_unknown_variant_names_the_allowed_runtimes():
    with pytest.raises(ValueError, match="unknown runtime 'tvm-cpu'; allowed: torch, ort, trt"):
        runtime_of_variant("tvm-cpu")


def test_a_runtime_without_bench_support_cannot_be_registered():
    class Half(Runtime):  # forgot timed_call
        name = "half"

        def unavailable_reason(self) -> str | None:
            return None

        def make_runner(self, request: RunRequest) -> Any:
            raise NotImplementedError

    with pytest.raises(TypeError, match="timed_call"):
        Half()


class OrtNoOptRuntime(Runtime):
    """A whole new runtime in one class: ONNX Runtime with its graph optimizations turned off."""

    name = "noopt"
    description = "ONNX Runtime, graph optimizations disabled"
    dtypes = ("fp32",)

    def unavailable_reason(self) -> str | None:
        return None

    def _session(self, path: Any) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])

    def make_runner(self, request: RunRequest) -> Any:
        from polygraphy.backend.onnxrt import OnnxrtRunner

        source = request.onnx_model.SerializeToString() if request.onnx_model is not None else request.onnx_path
        return OnnxrtRunner(lambda: self._session(source), name=self.name)

    def timed_call(self, request: BenchRequest) -> TimedCall:
        sess = self._session(request.onnx_path)
        return TimedCall(lambda feeds: (lambda: sess.run(None, feeds)))


@pytest.fixture
def with_noopt(monkeypatch):
    monkeypatch.setitem(registry._RUNTIMES, "noopt", OrtNoOptRuntime())


def test_verify_compares_a_new_runtime(with_noopt, tmp_path, capsys):
    from tests.parity.test_verify import _make

    ckpt, path = _make(tmp_path, attention="flurka-elu")
    report = verify(str(ckpt), str(path), VerifyOptions(runtimes=("noopt",)))
    assert report.passed and {r["runtime"] for r in report.rows} == {"noopt"}
    assert main(["verify", str(ckpt), str(path), "--runtimes", "noopt,ort"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("RESULT: PASS (torch vs noopt, ort on")


def test_bench_times_a_new_runtime(with_noopt):
    out = run_bench(BenchSettings(kinds=["flurka-relu"], seq_lens=[8, 16], runtimes=["noopt"], layers=1, hidden=32,
                                  heads=2, low_rank=4, num_features=8, iters=2, warmup=0, subprocess=False),
                    progress=False)
    rows = out["results"]
    assert [(r["runtime"], r["seq_len"]) for r in rows] == [("noopt", 8), ("noopt", 16)]
    assert all(r["p50_ms"] > 0 and r["peak_mem_mb"] is None for r in rows)


def test_cli_help_lists_a_new_runtime(with_noopt, capsys):
    for command in ("verify", "bench"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "noopt" in capsys.readouterr().out


def test_every_runtime_class_in_the_package_is_registered():
    import importlib
    import inspect
    import pkgutil

    import flurka_export.runtimes as package

    defined = {obj.name: f"{info.name}.py" for info in pkgutil.iter_modules(package.__path__)
               for obj in vars(importlib.import_module(f"{package.__name__}.{info.name}")).values()
               if inspect.isclass(obj) and issubclass(obj, Runtime) and not inspect.isabstract(obj)}
    missing = {name: module for name, module in defined.items() if name not in runtime_names()}
    assert not missing, f"runtimes defined but not listed in runtimes/registry.py _RUNTIMES: {missing}"
