"""fp32 vs optimized vs int8 in ONNX Runtime CPU, one process, timed round-robin.

    python benchmarks/optimize_variants.py [--seq-len 4096] [--threads 2] [--rounds 8]

The three files are what `flurka-export export` and `flurka-export optimize [--quantize int8]` write, from
one model with fresh weights (default: 4 layers, D=768, 12 heads, k=256, flurka-elu, batch 1). Each round
runs every variant once, in turn, so a change in machine load hits all three alike: on a shared machine
the ratios are far steadier than the absolute times. Prints the median per variant, its ratio to fp32,
and the int8 logit error and top-1 agreement against fp32 on the timed input. Percentiles and the p90/p50
spread come from flurka_export.bench.timing (the harness of `flurka-export bench`); variants whose spread is
large are marked. `--smoke` runs a tiny model for seconds (a check that the script runs).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from flurka_export import export_onnx
from flurka_export.bench.report import LEGEND, MARK, text_table
from flurka_export.bench.timing import Timings, check_counts, parse_with_smoke
from flurka_export.models import FlurkaConfig, build_model
from flurka_export.optimize.pipeline import optimize_file
from flurka_export.parity import make_inputs
from flurka_export.runtimes.ort_runner import make_session

# --smoke: the smallest settings, to check in seconds that the script still runs (tests/benchmarks)
SMOKE = {"seq_len": 32, "layers": 1, "hidden": 32, "heads": 2, "low_rank": 8, "rounds": 2, "warmup": 0}


def _ms(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seq-len", type=int, default=4096)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--low-rank", type=int, default=256)
    p.add_argument("--attention", default="flurka-elu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--static", action="store_true",
                   help="also static int8 (QDQ), calibrated on 4 random batches of the timed shape")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parse_with_smoke(p, argv, SMOKE)
    try:
        check_counts(args.rounds, args.warmup)
    except ValueError as e:
        p.error(str(e).replace("iters", "--rounds").replace("warmup", "--warmup"))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = FlurkaConfig(task="classify", attention=args.attention, num_layers=args.layers,
                          hidden_size=args.hidden, num_heads=args.heads, low_rank=args.low_rank,
                          max_seq_len=args.seq_len, vocab_size=1000, seed=0)
    with tempfile.TemporaryDirectory(prefix="flurka-variants-") as tmp:
        fp32 = export_onnx(build_model(config), Path(tmp) / "fp32.onnx")
        optimize_file(str(fp32), str(Path(tmp) / "optimized.onnx"), verify=False)
        optimize_file(str(fp32), str(Path(tmp) / "int8.onnx"), quantize="int8", verify=False)
        variants = ["fp32", "optimized", "int8"]
        if args.static:
            cal = [make_inputs(config, (1, args.seq_len), seed=100 + i, pad=False) for i in range(4)]
            np.savez(Path(tmp) / "cal.npz", **{k: np.concatenate([c[k] for c in cal]) for k in cal[0]})
            optimize_file(str(fp32), str(Path(tmp) / "int8-static.onnx"), quantize="int8", verify=False,
                          calibration_data=str(Path(tmp) / "cal.npz"))
            variants.append("int8-static")
        sessions = {v: make_session(Path(tmp) / f"{v}.onnx", ["CPUExecutionProvider"], threads=args.threads)
                    for v in variants}
        feed = make_inputs(config, (args.batch, args.seq_len), pad=False)
        outputs = {v: s.run(None, feed)[0] for v, s in sessions.items()}  # also the untimed first call
        for _ in range(args.warmup):
            for s in sessions.values():
                s.run(None, feed)
        times: dict[str, list[float]] = {v: [] for v in sessions}
        load = [os.getloadavg()[0]]
        for _ in range(args.rounds):
            for v, s in sessions.items():
                t0 = time.perf_counter()
                s.run(None, feed)
                times[v].append((time.perf_counter() - t0) * 1e3)
            load.append(os.getloadavg()[0])
    timings = {v: Timings(tuple(ts)) for v, ts in times.items()}  # the package's harness: percentiles, spread
    base = timings["fp32"]
    rows, marked = [], False
    for v, t in timings.items():
        mark = MARK if t.unstable or base.unstable else ""
        marked |= bool(mark)
        rows.append([v, _ms(t.p50), _ms(min(t.times_ms)), _ms(max(t.times_ms)), f"{t.spread:.2f}",
                     f"{base.p50 / t.p50:.2f}x{mark}"])
    print(f"{args.attention}, {args.layers} layers, D={args.hidden}, H={args.heads}, k={args.low_rank}, "
          f"B={args.batch}, N={args.seq_len}; ONNX Runtime CPU, {args.threads} threads; {args.rounds} rounds; "
          f"load average {min(load):.1f} to {max(load):.1f} on {os.cpu_count()} cores")
    print("\n".join(text_table(["variant", "median ms", "min ms", "max ms", "p90/p50", "vs fp32"], rows,
                               markdown=args.markdown, left=1)))
    if marked:
        print(LEGEND)
    ref, q = outputs["fp32"], outputs["int8"]
    print(f"optimized vs fp32: max |logit diff| {np.abs(outputs['optimized'] - ref).max():.2e}; int8 vs fp32: "
          f"max |logit diff| {np.abs(q - ref).max():.2e} (max |logit| {np.abs(ref).max():.2e}), "
          f"top-1 agreement {float((q.argmax(-1) == ref.argmax(-1)).mean()):.2f} on this batch")


if __name__ == "__main__":
    main()
