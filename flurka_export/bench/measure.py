"""Timing and peak memory of one (attention kind, runtime) over its sequence lengths, in this process.

Each runtime says how to time it (`Runtime.timed_call`); this module only times and measures.

`python -m flurka_export.bench.worker` runs `run_group` in a fresh process per group, so each group starts
from a clean allocator and thread pool; `--in-process` runs it in the caller.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from ..runtimes import BenchRequest, TimedCall, runtime_of_variant
from .memory import host_peak_of, measure_cuda_peak
from .settings import BenchSettings, model_config
from .timing import SPREAD_LIMIT, time_fn


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


def bench_request(settings: BenchSettings, runtime: str, paths: dict[str, str]) -> BenchRequest:
    """The request for one row: 'ort-cpu+int8' -> the ort-cpu variant running the int8 ONNX file."""
    from .variants import onnx_for, split_runtime

    return BenchRequest(variant=split_runtime(runtime)[0], files=paths,
                        onnx_path=onnx_for(paths, runtime) if "onnx" in paths else None, threads=settings.threads,
                        plugin=settings.plugin, batch=settings.batch, seq_lens=tuple(settings.seq_lens))


def peak_mb(target: TimedCall, feeds: dict[str, Any]) -> float | None:
    """Peak MB of one call above the loaded model, where the runtime says it shows; the first call pays
    one-time costs, the second is measured."""
    if target.memory is None:
        return None
    call = (target.make_memory_call or target.make_call)(feeds)
    if target.memory == "host":
        return host_peak_of(call, release=call)
    if target.memory == "cuda":
        call()
        with measure_cuda_peak() as peak:
            call()
        return peak.mb
    raise ValueError(f"unknown memory kind {target.memory!r}; allowed: host, cuda, None")


def run_group(settings: BenchSettings, kind: str, runtime: str, paths: dict[str, str]) -> Iterator[BenchResult]:
    """Time one (kind, runtime) over every sequence length, ascending; yields one result per length.

    Per length: two untimed calls for peak memory (the first pays one-time costs), `warmup` untimed calls,
    then `iters` timed calls."""
    from ..parity.inputs import make_inputs

    request = bench_request(settings, runtime, paths)
    config = model_config(settings, kind)
    target = runtime_of_variant(request.variant).timed_call(request)
    for n in sorted(settings.seq_lens):
        feeds = make_inputs(config, (settings.batch, n), seed=settings.seed, pad=False)
        peak = peak_mb(target, feeds)
        t = time_fn(target.make_call(feeds), iters=settings.iters, warmup=settings.warmup, sync=target.sync)
        b = settings.batch
        yield BenchResult(kind, runtime, n, b, t.p50, t.p90, t.p99, t.mean, b / t.mean * 1e3, b * n / t.mean * 1e3,
                          None if peak is None else round(peak, 2))
