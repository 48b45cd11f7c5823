"""One attention layer on the CPU for every attention kind: time and speedup against softmax
(torch SDPA), measured in the same run.

    python benchmarks/attention_cpu.py [--seq-lens 512,2048,8192] [--threads 2]

Defaults: B=1, D=768, H=12, k=64, float32, inference (no grad). Timing by flurka_export.bench.timing (the
harness of `flurka-export bench`): fixed threads, warm-up, p50; rows whose p90/p50 is large are marked.
"""

from __future__ import annotations

import argparse
import sys

import torch

from flurka_export.bench.report import LEGEND, MARK, text_table
from flurka_export.bench.timing import default_threads, set_torch_threads, time_fn
from flurka_export.models import ATTENTION_KINDS, FlurkaConfig
from flurka_export.models.attention import FlurkaSelfAttention


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seq-lens", default="512,2048,8192")
    p.add_argument("--kinds", default=",".join(ATTENTION_KINDS))
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--low-rank", type=int, default=64)
    p.add_argument("--num-features", type=int, default=64)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=default_threads(), help="intra-op threads (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per row")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls first")
    args = p.parse_args()
    set_torch_threads(args.threads)
    seq_lens = [int(s) for s in args.seq_lens.split(",")]
    kinds = args.kinds.split(",")
    if "softmax" not in kinds:
        kinds = ["softmax", *kinds]
    print(f"one attention layer: B={args.batch} D={args.hidden} H={args.heads} k={args.low_rank} "
          f"P={args.num_features}, float32, torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows, marked = [], False
    for n in seq_lens:
        x = torch.randn(args.batch, n, args.hidden)
        mask = torch.ones(args.batch, n)
        base = None
        for kind in kinds:
            config = FlurkaConfig(attention=kind, hidden_size=args.hidden, num_heads=args.heads,
                                  low_rank=min(args.low_rank, n), max_seq_len=n, num_features=args.num_features)
            layer = FlurkaSelfAttention(config).eval()
            with torch.no_grad():
                t = time_fn(lambda layer=layer, x=x, mask=mask: layer(x, mask), iters=args.repeats,
                            warmup=args.warmup, budget_s=20.0)  # slow baselines: stop after 20 s
            base = t if kind == "softmax" else base
            mark = MARK if t.unstable or base.unstable else ""
            marked |= bool(mark)
            rows.append([str(n), kind, f"{t.p50:.2f}", f"{t.spread:.2f}", f"{base.p50 / t.p50:.1f}x{mark}"])
            print(f"  N={n:<6} {kind:<14} {t.p50:9.2f} ms", file=sys.stderr)
    print("\n".join(text_table(["N", "kind", "p50 ms", "p90/p50", "speedup vs softmax"], rows, left=0)))
    if marked:
        print(LEGEND)


if __name__ == "__main__":
    main()
