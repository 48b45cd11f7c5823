"""TensorRT: FlurkaAttention runs as the plugin from libflurka_trt_plugin.so (needs an NVIDIA GPU)."""

from __future__ import annotations

from typing import Any

from .base import BenchRequest, RunRequest, Runtime, RuntimeUnavailable, TimedCall


class TrtRuntime(Runtime):
    name = "trt"
    description = "TensorRT with the FlurkaAttention plugin"

    def unavailable_reason(self) -> str | None:
        from ..trt.availability import tensorrt_missing_reason

        return tensorrt_missing_reason(short=True)

    def cannot_run(self, request: RunRequest) -> str | None:
        why = super().cannot_run(request)
        config = getattr(request.torch_model, "config", None)
        if why is None and config is not None and config.spec.trt_unsupported(config):
            return f"TensorRT does not run the {config.spec.family} family: {config.spec.trt_unsupported(config)}"
        if why is None and request.engine is None and not request.build_engine:
            return "no TensorRT engine given (use --engine model.plan, or --build-engine with --plugin)"
        return why

    def make_runner(self, request: RunRequest) -> Any:
        from .trt_runner import make_trt_runner

        why = self.cannot_run(request)
        if why:
            raise RuntimeUnavailable(why)
        try:
            return make_trt_runner(engine=request.engine, plugin=request.plugin,
                                   onnx_path=request.onnx_path if request.build_engine else None)
        except RuntimeError as e:
            raise RuntimeUnavailable(str(e)) from None

    def cannot_bench(self, request: BenchRequest) -> str | None:
        from ..trt.plugin import PluginNotFound, find_plugin

        try:
            find_plugin(request.plugin)
        except PluginNotFound as e:
            return str(e)
        return None

    def prepare_bench(self, request: BenchRequest, workdir: str) -> dict[str, str]:
        """The engine, built by the project's builder with the plugin enforced (no silent fallback to the
        function body); one profile from the smallest to the largest benchmarked N at the bench's batch."""
        from pathlib import Path

        from ..models.exported import ExportedModel
        from ..onnx_io import load_onnx, save_model
        from ..passes.prepare_trt import prepare_for_tensorrt
        from ..trt.engine import build_engine

        onnx_path = Path(request.files["onnx"])
        plan = Path(workdir) / f"{onnx_path.stem}.plan"
        # plugin_namespace/plugin_version on the nodes: TensorRT before 10.10 (no plugin override) picks it too.
        prepared = onnx_path.with_name(onnx_path.stem + ".trt.onnx")
        save_model(prepare_for_tensorrt(load_onnx(onnx_path))[0], prepared)
        b, lo, hi = request.batch, min(request.seq_lens), max(request.seq_lens)
        config = ExportedModel.read(onnx_path).require_config("bench builds its TensorRT profile from it")
        shapes = {name: ",".join("x".join(map(str, d)) for d in dims)  # the family's inputs: "1x16,2x64,2x64"
                  for name, dims in config.spec.trt_profile(config, batch=(1, b, b), seq=(lo, hi, hi)).items()}
        try:
            build_engine(prepared, plan, plugin=request.plugin, shapes=shapes, max_batch=b)
        except RuntimeError as e:  # plugin missing or not used, build failure: one line, not a traceback
            raise RuntimeUnavailable(f"TensorRT engine from {onnx_path.name}: {e}") from None
        return {"plan": str(plan)}

    def timed_call(self, request: BenchRequest) -> TimedCall:
        from .trt_runner import make_trt_runner

        runner = make_trt_runner(engine=request.files["plan"], plugin=request.plugin)
        runner.activate()
        return TimedCall(lambda feeds: (lambda: runner.infer(feeds)))  # device memory: not visible from here
