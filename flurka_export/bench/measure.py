"""Timing and peak memory of one (attention kind, runtime) over its sequence lengths, in this process.

`python -m flurka_export.bench.worker` runs `run_group` in a fresh process per group, so each group starts
from a clean allocator and thread pool; `--in-process` runs it in the caller.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from .memory import host_peak_of, measure_cuda_peak
from .settings import BenchSettings, model_config
from .timing import SPREAD_LIMIT, set_torch_threads, time_fn


@dataclasses.dataclass
class BenchResult:
    kind: str
    runtime: str
    seq_len: int
    batch: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    seq_per_s: float
    tok_per_s: float
    peak_mem_mb: float | None  # peak above the loaded model, one call; None where it cannot be seen
    speedup: float | None = None  # softmax p50 / this p50, same runtime and N, same run
    spread: float | None = None  # p90 / p50
    unstable: bool | None = None  # spread > SPREAD_LIMIT: do not trust this row's ratios

    def __post_init__(self) -> None:
        if self.spread is None:
            self.spread = round(self.p90_ms / self.p50_ms, 3) if self.p50_ms > 0 else float("inf")
        if self.unstable is None:
            self.unstable = self.spread > SPREAD_LIMIT


@dataclasses.dataclass
class _Target:
    """How to run one runtime on given inputs: the timed call, its sync, and its one-call peak memory."""

    make_fn: Callable[[dict[str, Any]], Callable[[], Any]]
    peak_mb: Callable[[dict[str, Any]], float | None]
    sync: Callable[[], Any] = lambda: None


def _torch_target(settings: BenchSettings, runtime: str, paths: dict[str, str]) -> _Target:
    import torch

    from ..models import load_pretrained

    set_torch_threads(settings.threads)
    device = "cuda" if runtime == "torch-cuda" else "cpu"
    model = load_pretrained(paths["checkpoint"]).to(device).eval()

    def make_fn(feeds: dict[str, Any]) -> Callable[[], Any]:
        args = [torch.from_numpy(feeds[k]).to(device) for k in ("input_ids", "attention_mask")]

        def fn() -> Any:
            with torch.inference_mode():
                return model(*args)
        return fn

    def peak_mb(feeds: dict[str, Any]) -> float | None:
        fn = make_fn(feeds)
        if device == "cpu":
            return host_peak_of(fn, release=fn)  # the first call pays one-time costs, the second is measured
        fn()
        with measure_cuda_peak() as peak:
            fn()
        return peak.mb

    return _Target(make_fn, peak_mb, torch.cuda.synchronize if device == "cuda" else (lambda: None))


def _ort_target(settings: BenchSettings, runtime: str, paths: dict[str, str]) -> _Target:
    from ..runtimes.ort_runner import make_session
    from .variants import onnx_for, split_runtime

    device = split_runtime(runtime)[0]  # "ort-cpu+int8" -> ort-cpu running the int8 variant
    onnx_path = onnx_for(paths, runtime)
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "ort-cuda" else [
        "CPUExecutionProvider"]
    sess = make_session(onnx_path, providers=providers, threads=settings.threads)
    # Memory is measured on a second session without the CPU arena: an arena keeps what one call used and
    # serves the next call from it, so the RSS peak of a call would read 0 MB once the arena is grown.
    plain = _session_without_arena(onnx_path, settings.threads) if device == "ort-cpu" else None

    def peak_mb(feeds: dict[str, Any]) -> float | None:
        if plain is None:
            return None  # device memory of ORT CUDA is not visible from here
        call = lambda: plain.run(None, feeds)  # noqa: E731
        return host_peak_of(call, release=call)  # the first call pays one-time costs, the second is measured

    return _Target(lambda feeds: (lambda: sess.run(None, feeds)), peak_mb)


def _session_without_arena(onnx_path: str, threads: int | None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.enable_cpu_mem_arena = False
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(onnx_path, sess_options=opts, providers=["CPUExecutionProvider"])


def _trt_target(settings: BenchSettings, runtime: str, paths: dict[str, str]) -> _Target:
    from ..trt import make_trt_runner

    runner = make_trt_runner(engine=paths["plan"], plugin=settings.plugin)
    runner.activate()
    return _Target(lambda feeds: (lambda: runner.infer(feeds)), lambda feeds: None)  # device memory: not visible


def make_target(settings: BenchSettings, runtime: str, paths: dict[str, str]) -> _Target:
    if runtime.startswith("torch"):
        return _torch_target(settings, runtime, paths)
    if runtime.startswith("ort"):
        return _ort_target(settings, runtime, paths)
    if runtime == "trt":
        return _trt_target(settings, runtime, paths)
    raise ValueError(f"unknown runtime {runtime!r}")


def run_group(settings: BenchSettings, kind: str, runtime: str, paths: dict[str, str]) -> Iterator[BenchResult]:
    """Time one (kind, runtime) over every sequence length, ascending; yields one result per length.

    Per length: two untimed calls for peak memory (the first pays one-time costs), `warmup` untimed calls,
    then `iters` timed calls."""
    from ..parity.inputs import make_inputs

    config = model_config(settings, kind)
    target = make_target(settings, runtime, paths)
    for n in sorted(settings.seq_lens):
        feeds = make_inputs(config, (settings.batch, n), seed=settings.seed, pad=False)
        peak = target.peak_mb(feeds)
        t = time_fn(target.make_fn(feeds), iters=settings.iters, warmup=settings.warmup, sync=target.sync)
        b = settings.batch
        yield BenchResult(kind, runtime, n, b, t.p50, t.p90, t.p99, t.mean, b / t.mean * 1e3, b * n / t.mean * 1e3,
                          None if peak is None else round(peak, 2))
