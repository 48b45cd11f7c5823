"""`flurka-export bench`: latency, throughput and peak memory per attention kind, sequence length and runtime.

timing.py is the one timing harness (also used by the scripts in benchmarks/)."""

from .measure import BenchResult
from .run import run_bench
from .settings import BenchSettings

__all__ = ["BenchResult", "BenchSettings", "run_bench"]
