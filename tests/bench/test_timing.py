"""The one timing harness: percentiles, the spread mark, warm-up, thread defaults; no numpy/onnx imported."""

import os
import subprocess
import sys

import numpy as np
import pytest

from flurka_export.bench import timing
from flurka_export.bench.timing import SPREAD_LIMIT, Timings, default_threads, physical_cores, time_fn


class FakeClock:
    """perf_counter that only moves when a benchmarked call says so: timings are exact, whatever the load."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


def scripted(clock, durations_ms):
    calls = iter(durations_ms)

    def fn():
        clock.now += next(calls) / 1e3
    return fn


def test_percentiles_match_numpy():
    xs = tuple(float(x) for x in np.random.default_rng(0).exponential(3.0, size=37))
    t = Timings(xs)
    for q in (0, 10, 50, 90, 99, 100):
        assert t.percentile(q) == pytest.approx(np.percentile(xs, q))
    assert t.mean == pytest.approx(np.mean(xs))
    assert Timings((2.0,)).p99 == 2.0


def test_warmup_calls_are_not_timed_and_spread_is_flagged(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(timing, "time", clock)
    # 2 warm-up calls of 500 ms (compilation, caches) must not show; then 10 timed calls.
    steady = time_fn(scripted(clock, [500, 500] + [10] * 9 + [12]), iters=10, warmup=2)
    assert len(steady.times_ms) == 10 and max(steady.times_ms) == pytest.approx(12)
    assert steady.p50 == pytest.approx(10) and not steady.unstable
    # Every third call stalls (another process took the core): p90/p50 = 5 > SPREAD_LIMIT.
    noisy = time_fn(scripted(clock, [10, 10, 50] * 4), iters=12, warmup=0)
    assert noisy.spread == pytest.approx(5.0) and noisy.unstable
    edge = Timings((10.0,) * 5 + (10.0 * SPREAD_LIMIT,) * 5)  # exactly at the limit is not marked
    assert edge.spread <= SPREAD_LIMIT and not edge.unstable


def test_budget_stops_early_after_one_call(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(timing, "time", clock)
    t = time_fn(scripted(clock, [3000] * 10), iters=10, warmup=0, budget_s=5)
    assert len(t.times_ms) == 2


@pytest.mark.parametrize("iters,warmup,match", [(0, 1, "iters must be an integer >= 1"),
                                                (-1, 1, "iters must be an integer >= 1"),
                                                (3, -1, "warmup must be an integer >= 0"),
                                                (2.5, 0, "iters must be an integer")])
def test_bad_counts(iters, warmup, match):
    with pytest.raises(ValueError, match=match):
        time_fn(lambda: None, iters=iters, warmup=warmup)


def test_default_threads_is_fixed_and_bounded():
    cores = physical_cores()
    assert 1 <= cores <= len(os.sched_getaffinity(0))
    assert default_threads() == min(4, cores)


def test_harness_imports_neither_numpy_nor_onnx():
    # benchmarks/kernel_gpu.py imports it on GPU machines that may have only torch and triton.
    code = ("import sys, flurka_export.bench.timing, flurka_export.bench.report; "
            "print(sorted(m for m in ('numpy', 'onnx', 'onnxruntime', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
