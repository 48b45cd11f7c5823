"""ONNX Runtime on the CPU: a 4-layer encoder, softmax against every flurka-* kind (custom-op export,
FlurkaAttention run through its function body), and PyTorch eager on the same models, in one run.

    python benchmarks/ort_cpu.py [--seq-lens 1024,4096,8192] [--threads 2] [--profile]

--profile writes ONNX Runtime's per-node profile for the largest N and prints the costliest op types
(how we check that the inlined body is not what costs the time). Timing by flurka_export.bench.timing (the
harness of `flurka-export bench`): the same fixed threads for both runtimes, warm-up, p50; rows whose
p90/p50 is large are marked.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

import onnxruntime as ort
import torch

from flurka_export import export_onnx
from flurka_export.bench.report import LEGEND, MARK, text_table
from flurka_export.bench.timing import default_threads, set_torch_threads, time_fn
from flurka_export.models import FlurkaConfig, build_model
from flurka_export.parity import make_inputs


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
    p.add_argument("--threads", type=int, default=default_threads(), help="intra-op threads (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per row")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls first")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    set_torch_threads(args.threads)
    seq_lens = [int(s) for s in args.seq_lens.split(",")]
    n_max = max(seq_lens)
    tmp = Path(tempfile.mkdtemp(prefix="flurka-bench-"))
    print(f"{args.layers}-layer encoder: D={args.hidden} H={args.heads} k={args.low_rank}, B=1, float32, "
          f"onnxruntime {ort.__version__} / torch {torch.__version__}, {args.threads} threads")
    rows, marked = [], False
    softmax_ort = {}
    for kind in args.kinds.split(","):
        config = FlurkaConfig(attention=kind, num_layers=args.layers, hidden_size=args.hidden, num_heads=args.heads,
                              low_rank=args.low_rank, max_seq_len=n_max, num_features=64, vocab_size=1000)
        model = build_model(config)
        path = export_onnx(model, tmp / f"{kind}.onnx")
        sess = session(path, args.threads)
        for n in seq_lens:
            feed = make_inputs(config, (1, n))
            timing = {"iters": args.repeats, "warmup": args.warmup, "budget_s": 20.0}
            t_ort = time_fn(lambda sess=sess, feed=feed: sess.run(None, feed), **timing)
            tfeed = {k: torch.from_numpy(v) for k, v in feed.items()}
            with torch.no_grad():
                t_pt = time_fn(lambda model=model, tfeed=tfeed: model(**tfeed), **timing)
            if kind == "softmax":
                softmax_ort[n] = t_ort
            base = softmax_ort.get(n)
            unstable = t_ort.unstable or t_pt.unstable or (base is not None and base.unstable)
            marked |= unstable
            rows.append([str(n), kind, f"{t_ort.p50:.1f}", f"{t_pt.p50:.1f}", f"{t_pt.p50 / t_ort.p50:.2f}",
                         (f"{base.p50 / t_ort.p50:.1f}x" if base else "-") + (MARK if unstable else "")])
            print(f"  {kind:<13} N={n:<6} ort {t_ort.p50:9.1f} ms  torch {t_pt.p50:9.1f} ms", file=sys.stderr)
        if args.profile and kind != "softmax":
            prof = session(path, args.threads, profile=True)
            feed = make_inputs(config, (1, n_max))
            for _ in range(2):
                prof.run(None, feed)
            ops = top_ops(prof.end_profiling())
            print(f"  {kind} N={n_max}: ONNX Runtime time by op type (2 runs): "
                  + ", ".join(f"{op} {ms:.0f} ms" for op, ms in ops), file=sys.stderr)
        del sess
    print("\n".join(text_table(["N", "kind", "ORT p50 ms", "torch p50 ms", "torch/ORT", "ORT speedup vs softmax"],
                               rows, left=0)))
    if marked:
        print(LEGEND)


if __name__ == "__main__":
    main()
