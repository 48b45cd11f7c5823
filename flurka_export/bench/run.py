"""One bench run, start to finish: latency, throughput and peak memory across attention kinds x sequence
lengths x runtimes (prepare the files, run each group in a worker, gather the results and the environment).

Each (kind, runtime) group runs in its own subprocess (`python -m flurka_export.bench.worker`) over its
sequence lengths in ascending order (see measure.py for what one group does).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..utils import temporary_directory
from .measure import BenchResult, run_group
from .settings import BenchSettings, model_config
from .timing import physical_cores


class BenchError(ValueError):
    """A benchmark that cannot run as asked: the CLI prints it as one line."""


def resolve_runtimes(families: list[str]) -> tuple[list[str], dict[str, str]]:
    """`torch,ort,trt` -> the concrete runtimes present here (torch-cpu, torch-cuda, ort-cpu, ...) and, for each
    one asked for but not present, the reason (from that runtime's availability check)."""
    from ..runtimes import get_runtime, runtime_names

    variants = {name: get_runtime(name).variants() for name in runtime_names()}
    concrete = {v: why for vs in variants.values() for v, why in vs.items()}
    out: list[str] = []
    skipped: dict[str, str] = {}
    for fam in families:
        if fam in variants:  # a runtime: every variant usable here; the rest are not asked for explicitly
            asked = {v: why for v, why in variants[fam].items() if why is None or len(variants[fam]) == 1}
        elif fam in concrete:
            asked = {fam: concrete[fam]}
        else:
            raise ValueError(f"unknown runtime {fam!r}: pick from {', '.join(variants)} (or {', '.join(concrete)})")
        for v, why in asked.items():
            if why is None:
                out.append(v)
            else:
                skipped[v] = why
    return list(dict.fromkeys(out)), skipped


def prepare(settings: BenchSettings, kind: str, runtimes: list[str], workdir: Path) -> dict[str, str]:
    """Build the model (fresh weights), save the checkpoint, export ONNX and let each runtime build what it
    needs from it (TensorRT: the engine)."""
    from ..export import export_onnx
    from ..models import build_model, save_pretrained
    from ..runtimes import Runtime, RuntimeUnavailable, runtime_of_variant
    from .measure import bench_request
    from .variants import prepare_variants, split_runtime

    model = build_model(model_config(settings, kind))
    paths = {"checkpoint": str(save_pretrained(model, workdir / f"{kind}-ckpt"))}
    first_row: dict[Runtime, str] = {}  # each runtime and its first row
    for row in runtimes:
        first_row.setdefault(runtime_of_variant(split_runtime(row)[0]), row)
    if any("onnx" in target.bench_needs for target in first_row):
        paths["onnx"] = str(export_onnx(model, workdir / f"{kind}.onnx"))
        paths.update(prepare_variants(paths["onnx"], settings.variants))
    for target, row in first_row.items():
        try:
            paths.update(target.prepare_bench(bench_request(settings, row, paths), str(workdir)))
        except RuntimeUnavailable as e:
            raise BenchError(str(e)) from None
    return paths


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
    err = proc.stderr.read().strip()
    if proc.wait() != 0:
        raise BenchError(f"benchmark of {kind} on {runtime} failed: {err.splitlines()[-1] if err else 'no message'}")


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


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def environment(load_at_start: float | None) -> dict[str, Any]:
    import onnxruntime
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "cpu": _cpu_name(), "cpu_count": os.cpu_count(), "physical_cores": physical_cores(),
            "load_average_start": load_at_start, "load_average_end": _load_average(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def _usable_runtimes(settings: BenchSettings) -> tuple[list[str], dict[str, str]]:
    from ..runtimes import runtime_of_variant
    from .measure import bench_request
    from .variants import expand_runtimes, split_runtime

    runtimes, skipped = resolve_runtimes(settings.runtimes)
    runtimes = expand_runtimes(runtimes, settings.variants)
    for row in list(runtimes):
        why = runtime_of_variant(split_runtime(row)[0]).cannot_bench(bench_request(settings, row, {}))
        if why:
            runtimes.remove(row)
            skipped[row] = why
    if not runtimes:
        raise BenchError("no runtime to benchmark: " + "; ".join(f"{r}: {why}" for r, why in skipped.items()))
    return runtimes, skipped


def run_bench(settings: BenchSettings, progress: bool = True) -> dict[str, Any]:
    """Run every configuration; returns {"settings", "environment", "results", "skipped"}."""
    from tqdm import tqdm

    settings.validate()
    runtimes, skipped = _usable_runtimes(settings)
    load_at_start = _load_average()
    results: list[BenchResult] = []
    total = len(settings.kinds) * len(runtimes) * len(settings.seq_lens)
    bar = tqdm(total=total, desc="bench", unit="cfg", disable=not progress, file=sys.stderr)

    def on_result(r: BenchResult) -> None:
        results.append(r)
        bar.set_postfix_str(f"{r.kind} {r.runtime} N={r.seq_len} p50={r.p50_ms:.1f}ms")
        bar.update(1)

    with temporary_directory("flurka-bench-") as tmp:
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
    return {"settings": dataclasses.asdict(settings), "environment": environment(load_at_start),
            "results": [dataclasses.asdict(r) for r in results], "skipped": skipped}
