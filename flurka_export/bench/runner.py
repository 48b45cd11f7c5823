"""Latency, throughput and peak memory across attention kinds x sequence lengths x runtimes.

Each (kind, runtime) group runs in its own subprocess (`python -m flurka_export.bench.worker`) over its
sequence lengths in ascending order: peak RSS is per process and only grows, so a fresh process per group
with ascending N gives a meaningful peak-RSS delta per configuration (tracemalloc misses native memory).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

RUNTIME_FAMILIES = ("torch", "ort", "trt")


class BenchError(ValueError):
    """A benchmark that cannot run as asked: the CLI prints it as one line."""


@dataclasses.dataclass
class BenchSettings:
    kinds: list[str]
    seq_lens: list[int]
    runtimes: list[str] = dataclasses.field(default_factory=lambda: ["torch", "ort", "trt"])
    batch: int = 1
    layers: int = 2
    hidden: int = 256
    heads: int = 4
    low_rank: int = 64
    num_features: int = 64
    iters: int = 10
    warmup: int = 2
    threads: int | None = None
    plugin: str | None = None  # libflurka_trt_plugin.so for the trt runtime
    subprocess: bool = True  # False: all in this process (tests; peak memory is then less meaningful)
    seed: int = 0


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
    peak_mem_mb: float | None
    speedup: float | None = None  # softmax p50 / this p50, same runtime and N, same run


def resolve_runtimes(families: list[str]) -> tuple[list[str], list[str]]:
    """`torch,ort,trt` -> the concrete runtimes present here (torch-cpu, torch-cuda, ort-cpu, ...) and notes
    on the ones skipped."""
    out, notes = [], []
    for fam in families:
        if fam not in RUNTIME_FAMILIES and fam not in ("torch-cpu", "torch-cuda", "ort-cpu", "ort-cuda"):
            raise ValueError(f"unknown runtime {fam!r}: pick from torch, ort, trt (or torch-cpu, ort-cuda, ...)")
        if fam in ("torch", "torch-cpu"):
            out.append("torch-cpu")
        if fam in ("torch", "torch-cuda"):
            import torch

            if torch.cuda.is_available():
                out.append("torch-cuda")
            elif fam == "torch-cuda":
                notes.append("torch-cuda skipped: no CUDA device")
        if fam in ("ort", "ort-cpu"):
            out.append("ort-cpu")
        if fam in ("ort", "ort-cuda"):
            import onnxruntime as ort

            if "CUDAExecutionProvider" in ort.get_available_providers():
                out.append("ort-cuda")
            elif fam == "ort-cuda":
                notes.append("ort-cuda skipped: onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu)")
        if fam == "trt":
            from ..trt import tensorrt_missing_reason

            reason = tensorrt_missing_reason()
            if reason:
                notes.append(f"trt skipped: {reason}")
            else:
                out.append("trt")
    return list(dict.fromkeys(out)), notes


def _config(settings: BenchSettings, kind: str) -> Any:
    from ..models import FlurkaConfig

    return FlurkaConfig(task="classify", attention=kind, num_layers=settings.layers, hidden_size=settings.hidden,
                        num_heads=settings.heads, low_rank=settings.low_rank, max_seq_len=max(settings.seq_lens),
                        num_features=settings.num_features, vocab_size=1000, seed=settings.seed)


def prepare(settings: BenchSettings, kind: str, runtimes: list[str], workdir: Path) -> dict[str, str]:
    """Build the model (fresh weights), save the checkpoint, export ONNX (and the engine) as the runtimes need."""
    from ..export import export_onnx
    from ..models import build_model, save_pretrained

    model = build_model(_config(settings, kind))
    ckpt = save_pretrained(model, workdir / f"{kind}-ckpt")
    paths = {"checkpoint": str(ckpt)}
    if any(r.startswith("ort") or r == "trt" for r in runtimes):
        paths["onnx"] = str(export_onnx(model, workdir / f"{kind}.onnx"))
    if "trt" in runtimes:
        paths["plan"] = str(_build_engine(Path(paths["onnx"]), workdir / f"{kind}.plan", settings))
    return paths


def _build_engine(onnx_path: Path, plan: Path, settings: BenchSettings) -> Path:
    """The project's TensorRT builder: plugin loaded and enforced (no silent fallback to the function body),
    one profile from the smallest to the largest benchmarked N at the benchmark's batch."""
    from ..onnx_io import load_onnx, save_model
    from ..passes.prepare_trt import prepare_for_tensorrt
    from ..trt.engine import build_engine

    # plugin_namespace/plugin_version on the nodes: TensorRT before 10.10 (no plugin override) picks the plugin too.
    prepared = onnx_path.with_name(onnx_path.stem + ".trt.onnx")
    save_model(prepare_for_tensorrt(load_onnx(onnx_path))[0], prepared)
    b, lo, hi = settings.batch, min(settings.seq_lens), max(settings.seq_lens)
    spec = f"1x{lo},{b}x{hi},{b}x{hi}"
    try:
        build_engine(prepared, plan, plugin=settings.plugin, shapes={"input_ids": spec, "attention_mask": spec},
                     max_batch=b)
    except RuntimeError as e:  # plugin missing or not used, build failure: one line, not a traceback
        raise BenchError(f"TensorRT engine from {onnx_path.name}: {e}") from None
    return plan


def _timer(fn: Callable[[], Any], iters: int, warmup: int, sync: Callable[[], None]) -> np.ndarray:
    for _ in range(warmup):
        fn()
    sync()
    times = np.empty(iters)
    for i in range(iters):
        t0 = time.perf_counter()
        fn()
        sync()
        times[i] = time.perf_counter() - t0
    return times * 1e3


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:  # current resident set, pages
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_peak_rss() -> bool:
    # Linux: writing 5 to clear_refs resets the high-water mark VmHWM, so each configuration's peak is its own
    # (ru_maxrss never goes down and would still hold the import-time peak).
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_group(settings: BenchSettings, kind: str, runtime: str, paths: dict[str, str]) -> Iterator[BenchResult]:
    """Time one (kind, runtime) over every sequence length, ascending; yields one result per length."""
    from ..parity.inputs import make_inputs

    config = _config(settings, kind)
    sync: Callable[[], None] = lambda: None
    cuda_mem = False
    if runtime.startswith("torch"):
        import torch

        from ..models import load_pretrained

        if settings.threads:
            torch.set_num_threads(settings.threads)
        device = "cuda" if runtime == "torch-cuda" else "cpu"
        model = load_pretrained(paths["checkpoint"]).to(device).eval()
        if device == "cuda":
            sync, cuda_mem = torch.cuda.synchronize, True

        def make_fn(feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
            args = [torch.from_numpy(feeds[k]).to(device) for k in ("input_ids", "attention_mask")]

            def fn() -> Any:
                with torch.inference_mode():
                    return model(*args)
            return fn
    elif runtime.startswith("ort"):
        from ..runtimes.ort_runner import make_session

        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if runtime == "ort-cuda" else [
            "CPUExecutionProvider"]
        sess = make_session(paths["onnx"], providers=providers, threads=settings.threads)

        def make_fn(feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
            return lambda: sess.run(None, feeds)
    elif runtime == "trt":
        from ..trt import make_trt_runner

        runner = make_trt_runner(engine=paths["plan"], plugin=settings.plugin)
        runner.activate()

        def make_fn(feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
            return lambda: runner.infer(feeds)
    else:
        raise ValueError(f"unknown runtime {runtime!r}")

    # One untimed call first, so one-time costs (lazy op registration, allocator and thread-pool start-up)
    # are billed to neither the first configuration's latency nor its peak memory.
    make_fn(make_inputs(config, (settings.batch, min(settings.seq_lens)), seed=settings.seed, pad=False))()
    sync()
    for n in sorted(settings.seq_lens):
        feeds = make_inputs(config, (settings.batch, n), seed=settings.seed, pad=False)
        # Peak RSS above the RSS before this configuration (model loaded, earlier N freed to the allocator).
        base = _rss_mb() if _reset_peak_rss() else max(_rss_mb(), _peak_rss_mb())
        if cuda_mem:
            import torch

            torch.cuda.reset_peak_memory_stats()
        times = _timer(make_fn(feeds), settings.iters, settings.warmup, sync)
        if cuda_mem:
            import torch

            peak = torch.cuda.max_memory_allocated() / 2**20
        elif runtime.endswith("-cpu"):
            peak = max(_peak_rss_mb() - base, 0.0)
        else:
            peak = None  # ORT CUDA / TensorRT device memory is not visible from here
        mean = float(times.mean())
        yield BenchResult(kind, runtime, n, settings.batch, float(np.percentile(times, 50)),
                          float(np.percentile(times, 90)), float(np.percentile(times, 99)), mean,
                          settings.batch / mean * 1e3, settings.batch * n / mean * 1e3,
                          None if peak is None else round(peak, 1))


def _run_subprocess(settings: BenchSettings, kind: str, runtime: str, paths: dict[str, str],
                    on_result: Callable[[BenchResult], None]) -> None:
    spec = json.dumps({"settings": dataclasses.asdict(settings), "kind": kind, "runtime": runtime, "paths": paths})
    proc = subprocess.Popen([sys.executable, "-m", "flurka_export.bench.worker"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin and proc.stdout and proc.stderr
    proc.stdin.write(spec)
    proc.stdin.close()
    for line in proc.stdout:  # one JSON result per line, so the progress bar moves per configuration
        if line.startswith("{"):
            on_result(BenchResult(**json.loads(line)))
    err = proc.stderr.read()
    if proc.wait() != 0:
        raise BenchError(f"benchmark of {kind} on {runtime} failed: {err.strip().splitlines()[-1] if err else ''}")


def add_speedups(results: list[BenchResult]) -> None:
    base = {(r.runtime, r.seq_len): r.p50_ms for r in results if r.kind == "softmax"}
    for r in results:
        ref = base.get((r.runtime, r.seq_len))
        r.speedup = round(ref / r.p50_ms, 3) if ref else None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    import onnxruntime
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def run_bench(settings: BenchSettings, progress: bool = True) -> dict[str, Any]:
    """Run every configuration; returns {"settings", "environment", "results", "skipped"}."""
    from tqdm import tqdm

    from ..models.config import ATTENTION_KINDS

    for k in settings.kinds:
        if k not in ATTENTION_KINDS:
            raise ValueError(f"unknown attention kind {k!r}: pick from {', '.join(ATTENTION_KINDS)}")
    if not settings.seq_lens or min(settings.seq_lens) < 1:
        raise ValueError("--seq-lens needs positive lengths")
    runtimes, skipped = resolve_runtimes(settings.runtimes)
    if "trt" in runtimes:
        from ..trt.plugin import PluginNotFound, find_plugin

        try:
            find_plugin(settings.plugin)
        except PluginNotFound as e:
            runtimes.remove("trt")
            skipped.append(f"trt skipped: {e}")
    if not runtimes:
        raise BenchError("no runtime to benchmark: " + "; ".join(skipped))
    results: list[BenchResult] = []
    total = len(settings.kinds) * len(runtimes) * len(settings.seq_lens)
    bar = tqdm(total=total, desc="bench", unit="cfg", disable=not progress, file=sys.stderr)

    def on_result(r: BenchResult) -> None:
        results.append(r)
        bar.set_postfix_str(f"{r.kind} {r.runtime} N={r.seq_len} p50={r.p50_ms:.1f}ms")
        bar.update(1)

    with tempfile.TemporaryDirectory(prefix="flurka-bench-") as tmp:
        for kind in settings.kinds:
            bar.set_description(f"export {kind}")
            paths = prepare(settings, kind, runtimes, Path(tmp))
            bar.set_description("bench")
            for runtime in runtimes:
                if settings.subprocess:
                    _run_subprocess(settings, kind, runtime, paths, on_result)
                else:
                    for r in run_group(settings, kind, runtime, paths):
                        on_result(r)
    bar.close()
    add_speedups(results)
    return {"settings": dataclasses.asdict(settings), "environment": environment(),
            "results": [dataclasses.asdict(r) for r in results], "skipped": skipped}
