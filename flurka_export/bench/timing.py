"""The one timing harness of flurka-export: `flurka-export bench` and the scripts in benchmarks/ use it.

Rules it enforces so that numbers can be compared: a fixed thread count (`default_threads`, recorded by
the caller), untimed warm-up calls before the timed ones, and percentiles with a spread check: a
configuration whose p90 is more than SPREAD_LIMIT times its p50 is flagged `unstable` (a busy machine,
or a call too short to time), so its ratios are not taken at face value.

Imports neither numpy nor onnx: benchmarks/kernel_gpu.py runs it on GPU machines that have only torch.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_DEFAULT_THREADS = 4
SPREAD_LIMIT = 1.5  # p90 / p50 above this marks a configuration's timings as unreliable


def physical_cores() -> int:
    """Cores this process may run on, hyper-threads counted once, capped by a cgroup CPU quota."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return max(1, (os.cpu_count() or 2) // 2)
    cores = set()
    for cpu in cpus:
        siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            cores.add(siblings.read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, min(len(cores), _cgroup_cpu_quota() or len(cores)))


def _cgroup_cpu_quota() -> int | None:
    try:  # cgroup v2: "max 100000" (no limit) or "<quota> <period>"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))


def default_threads() -> int:
    """Intra-op threads when the user gives none: min(4, physical cores), the same for every runtime.

    Fixed rather than each runtime's own default (all logical CPUs, spinning): that default changes with
    the machine and collapses under load (p50 1.7 ms, then 135 ms, for one configuration)."""
    return min(MAX_DEFAULT_THREADS, physical_cores())


def set_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


@dataclasses.dataclass(frozen=True)
class Timings:
    """Milliseconds per timed call, in call order."""

    times_ms: tuple[float, ...]

    def percentile(self, q: float) -> float:
        """Linear interpolation between the closest ranks (numpy's default method)."""
        xs = sorted(self.times_ms)
        pos = (len(xs) - 1) * q / 100
        lo = math.floor(pos)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p90(self) -> float:
        return self.percentile(90)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    @property
    def mean(self) -> float:
        return sum(self.times_ms) / len(self.times_ms)

    @property
    def spread(self) -> float:
        """p90 / p50: 1.0 for perfectly steady timings."""
        return self.p90 / self.p50 if self.p50 > 0 else math.inf

    @property
    def unstable(self) -> bool:
        return self.spread > SPREAD_LIMIT


def check_counts(iters: int, warmup: int) -> None:
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters must be an integer >= 1, not {iters!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an integer >= 0, not {warmup!r}")


def time_fn(fn: Callable[[], object], *, iters: int, warmup: int, sync: Callable[[], object] | None = None,
            budget_s: float | None = None) -> Timings:
    """`warmup` untimed calls, then up to `iters` timed ones (wall clock, `sync()` inside the timed region
    for asynchronous devices). With `budget_s`, timing stops early once that much time is spent (slow
    baselines), after at least one timed call."""
    check_counts(iters, warmup)
    sync = sync or (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < iters:
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
        if budget_s is not None and time.perf_counter() - start > budget_s:
            break
    return Timings(tuple(times))


def time_cuda(fn: Callable[[], object], *, iters: int, warmup: int) -> Timings:
    """Like `time_fn` for CUDA work, timed with one pair of CUDA events per call: no host synchronisation
    between calls, so short kernels are not billed the launch-and-sync round trip."""
    import torch

    check_counts(iters, warmup)
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(iters)]
    for start, end in events:
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return Timings(tuple(start.elapsed_time(end) for start, end in events))


def parse_with_smoke(parser: Any, argv: list[str] | None, smoke: dict[str, Any]) -> Any:
    """Parse a benchmark script's flags; with --smoke, `smoke` replaces the defaults (tiny model and counts, for
    the benchmark smoke tests) and flags given on the command line still win."""
    parser.add_argument("--smoke", action="store_true",
                        help="tiny model and counts (seconds): checks that the script runs; flags given still win")
    args = parser.parse_args(argv)
    if args.smoke:
        parser.set_defaults(**smoke)
        args = parser.parse_args(argv)
    return args
