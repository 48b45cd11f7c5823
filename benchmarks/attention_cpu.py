"""One attention layer on the CPU for every attention kind: time and speedup against softmax
(torch SDPA), measured in the same run.

    python benchmarks/attention_cpu.py [--seq-lens 512,2048,8192] [--threads 2]

Defaults follow the issue: B=1, D=768, H=12, k=64, float32, inference (no grad).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import print_table, time_call  # noqa: E402

from flurka_export.models import ATTENTION_KINDS, FlurkaConfig  # noqa: E402
from flurka_export.models.attention import FlurkaSelfAttention  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seq-lens", default="512,2048,8192")
    p.add_argument("--kinds", default=",".join(ATTENTION_KINDS))
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--low-rank", type=int, default=64)
    p.add_argument("--num-features", type=int, default=64)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    seq_lens = [int(s) for s in args.seq_lens.split(",")]
    kinds = args.kinds.split(",")
    if "softmax" not in kinds:
        kinds = ["softmax", *kinds]
    print(f"one attention layer: B={args.batch} D={args.hidden} H={args.heads} k={args.low_rank} "
          f"P={args.num_features}, float32, torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = []
    for n in seq_lens:
        x = torch.randn(args.batch, n, args.hidden)
        mask = torch.ones(args.batch, n)
        base = None
        for kind in kinds:
            config = FlurkaConfig(attention=kind, hidden_size=args.hidden, num_heads=args.heads,
                                  low_rank=min(args.low_rank, n), max_seq_len=n, num_features=args.num_features)
            layer = FlurkaSelfAttention(config).eval()
            with torch.no_grad():
                t = time_call(lambda layer=layer, x=x, mask=mask: layer(x, mask), repeats=args.repeats)
            base = t if kind == "softmax" else base
            rows.append([str(n), kind, f"{t * 1e3:.2f}", f"{base / t:.1f}x"])
            print(f"  N={n:<6} {kind:<14} {t * 1e3:9.2f} ms", file=sys.stderr)
    print_table(["N", "kind", "ms", "speedup vs softmax"], rows)


if __name__ == "__main__":
    main()
