"""fp32 vs optimized vs int8 in ONNX Runtime CPU, one process, timed round-robin.

    python benchmarks/optimize_variants.py [--seq-len 4096] [--threads 2] [--rounds 8]

The three files are what `flurka-export export` and `flurka-export optimize [--quantize int8]` write, from
one model with fresh weights (default: 4 layers, D=768, 12 heads, k=256, flurka-elu, batch 1). Each round
runs every variant once, in turn, so a change in machine load hits all three alike: on a shared machine
the ratios are far steadier than the absolute times. Prints the median per variant, its ratio to fp32,
and the int8 logit error and top-1 agreement against fp32 on the timed input.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import print_table  # noqa: E402

from flurka_export import export_onnx  # noqa: E402
from flurka_export.models import FlurkaConfig, build_model  # noqa: E402
from flurka_export.optimize.pipeline import optimize_file  # noqa: E402
from flurka_export.parity import make_inputs  # noqa: E402
from flurka_export.runtimes.ort_runner import make_session  # noqa: E402


def main() -> None:
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
    args = p.parse_args()
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
    base = statistics.median(times["fp32"])
    rows = []
    for v, ts in times.items():
        med = statistics.median(ts)
        rows.append([v, f"{med:.0f}", f"{min(ts):.0f}", f"{max(ts):.0f}", f"{base / med:.2f}x"])
    print(f"{args.attention}, {args.layers} layers, D={args.hidden}, H={args.heads}, k={args.low_rank}, "
          f"B={args.batch}, N={args.seq_len}; ONNX Runtime CPU, {args.threads} threads; {args.rounds} rounds; "
          f"load average {min(load):.1f} to {max(load):.1f} on {os.cpu_count()} cores")
    print_table(["variant", "median ms", "min ms", "max ms", "vs fp32"], rows)
    ref, q = outputs["fp32"], outputs["int8"]
    print(f"optimized vs fp32: max |logit diff| {np.abs(outputs['optimized'] - ref).max():.2e}; int8 vs fp32: "
          f"max |logit diff| {np.abs(q - ref).max():.2e} (max |logit| {np.abs(ref).max():.2e}), "
          f"top-1 agreement {float((q.argmax(-1) == ref.argmax(-1)).mean()):.2f} on this batch")


if __name__ == "__main__":
    main()
