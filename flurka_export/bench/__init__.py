"""`flurka-export bench`: latency, throughput and peak memory per attention kind, sequence length and runtime."""

from .runner import BenchResult, BenchSettings, run_bench

__all__ = ["BenchResult", "BenchSettings", "run_bench"]
