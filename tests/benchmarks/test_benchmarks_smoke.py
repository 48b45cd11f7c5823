"""Every script in benchmarks/ runs, with its smallest settings (seconds), so none can break silently again:
serve_cpu.py and optimize_variants.py once stopped at import for months. GPU-only scripts: import and --help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"

# script -> (arguments for a run of a few seconds, a line its output must contain); None: GPU only (--help)
SMOKE = {
    "attention_cpu.py": (["--seq-lens", "16", "--kinds", "softmax,flurka-elu", "--hidden", "32", "--heads", "2",
                          "--low-rank", "8", "--num-features", "8", "--repeats", "1", "--warmup", "0",
                          "--threads", "1"], "speedup vs softmax"),
    "ort_cpu.py": (["--seq-lens", "16", "--kinds", "softmax,flurka-elu", "--layers", "1", "--hidden", "32",
                    "--heads", "2", "--low-rank", "8", "--repeats", "1", "--warmup", "0", "--threads", "1"],
                   "ORT speedup vs softmax"),
    "optimize_variants.py": (["--smoke", "--threads", "1"], "vs fp32"),
    "serve_cpu.py": (["--smoke", "--threads", "1"], "Triton serve, 2 clients x batch 1"),
    "serve_generate_cpu.py": (["--smoke", "--threads", "1"], "Triton generate_stream, 2 streams"),
    "causal_linear_attention.py": (["--prefill", "16", "--heads", "2", "--head-dim", "8", "--threads", "1"],
                                   "decode step"),
    "decode_cpu.py": (["--smoke", "--threads", "1"], "kernel-elu per-token time flat"),
    "cross_decode_cpu.py": (["--smoke", "--threads", "1"], "flurka-elu: per-token ratio"),
    "kernel_gpu.py": None,
}


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)


def test_every_benchmark_script_has_a_smoke_run():
    scripts = sorted(p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))
    assert scripts == sorted(SMOKE), "add each script in benchmarks/ to SMOKE with settings that take seconds"


@pytest.mark.parametrize("script", sorted(s for s, v in SMOKE.items() if v is None))
def test_gpu_benchmark_imports_and_helps(script):  # the CPU scripts' runs below import them too
    proc = _run([str(BENCHMARKS / script), "--help"])
    assert proc.returncode == 0 and proc.stdout.startswith("usage:"), proc.stderr[-2000:]


@pytest.mark.parametrize("script", sorted(s for s, v in SMOKE.items() if v is not None))
def test_benchmark_runs_with_smallest_settings(script):
    if script in ("serve_cpu.py", "serve_generate_cpu.py"):
        from flurka_export.serve.distribution import ServerNotFound, find_distribution

        pytest.importorskip("tritonclient.grpc", reason="pip install 'flurka-export[serve]'")
        try:
            find_distribution()
        except ServerNotFound as e:
            pytest.skip(f"no tritonserver (pip install 'flurka-export[serve]'): {e}")
    args, expected = SMOKE[script]
    proc = _run([str(BENCHMARKS / script), *args])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert any(expected in line for line in proc.stdout.splitlines()), proc.stdout
