"""ONNX Runtime on the CPU: a 4-layer encoder, softmax against every flurka-* kind (custom-op export,
FlurkaAttention run through its function body), and PyTorch eager on the same models, in one run.

    python benchmarks/ort_cpu.py [--seq-lens 1024,4096,8192] [--threads 2] [--profile]

--profile writes ONNX Runtime's per-node profile for the largest N and prints the costliest op types
(how we check that the inlined body is not what costs the time).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import print_table, time_call  # noqa: E402

from flurka_export import export_onnx  # noqa: E402
from flurka_export.models import FlurkaConfig, build_model  # noqa: E402
from flurka_export.parity import make_inputs  # noqa: E402


def session(path: Path, threads: int, profile: bool = False) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    opts.enable_profiling = profile
    opts.profile_file_prefix = str(path.parent / "ort_profile")  # not into the working directory
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def top_ops(profile_file: str, k: int = 8) -> list[tuple[str, float]]:
    events = json.loads(Path(profile_file).read_text())
    per_op: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            per_op[e["args"].get("op_name", "?")] += e["dur"] / 1e3
    return per_op.most_common(k)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seq-lens", default="1024,4096,8192")
    p.add_argument("--kinds", default="softmax,flurka-relu,flurka-elu,flurka-rfa,flurka-favor")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--low-rank", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    seq_lens = [int(s) for s in args.seq_lens.split(",")]
    n_max = max(seq_lens)
    tmp = Path(tempfile.mkdtemp(prefix="flurka-bench-"))
    print(f"{args.layers}-layer encoder: D={args.hidden} H={args.heads} k={args.low_rank}, B=1, float32, "
          f"onnxruntime {ort.__version__} / torch {torch.__version__}, {args.threads} threads")
    rows = []
    softmax_ort: dict[int, float] = {}
    for kind in args.kinds.split(","):
        config = FlurkaConfig(attention=kind, num_layers=args.layers, hidden_size=args.hidden, num_heads=args.heads,
                              low_rank=args.low_rank, max_seq_len=n_max, num_features=64, vocab_size=1000)
        model = build_model(config)
        path = export_onnx(model, tmp / f"{kind}.onnx")
        sess = session(path, args.threads)
        for n in seq_lens:
            feed = make_inputs(config, (1, n))
            t_ort = time_call(lambda sess=sess, feed=feed: sess.run(None, feed), repeats=args.repeats)
            tfeed = {k: torch.from_numpy(v) for k, v in feed.items()}
            with torch.no_grad():
                t_pt = time_call(lambda model=model, tfeed=tfeed: model(**tfeed), repeats=args.repeats)
            if kind == "softmax":
                softmax_ort[n] = t_ort
            base = softmax_ort.get(n, float("nan"))
            rows.append([str(n), kind, f"{t_ort * 1e3:.1f}", f"{t_pt * 1e3:.1f}", f"{t_pt / t_ort:.2f}",
                         f"{base / t_ort:.1f}x"])
            print(f"  {kind:<13} N={n:<6} ort {t_ort * 1e3:9.1f} ms  torch {t_pt * 1e3:9.1f} ms", file=sys.stderr)
        if args.profile and kind != "softmax":
            prof = session(path, args.threads, profile=True)
            feed = make_inputs(config, (1, n_max))
            for _ in range(2):
                prof.run(None, feed)
            ops = top_ops(prof.end_profiling())
            print(f"  {kind} N={n_max}: ONNX Runtime time by op type (2 runs): "
                  + ", ".join(f"{op} {ms:.0f} ms" for op, ms in ops), file=sys.stderr)
        del sess
    print_table(["N", "kind", "ORT ms", "torch ms", "torch/ORT", "ORT speedup vs softmax"], rows)
    np.seterr(all="ignore")


if __name__ == "__main__":
    main()
