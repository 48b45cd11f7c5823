"""Decoding with cross-attention (seq2seq) on the CPU: per-token latency of decoder_with_past_model.onnx in ONNX
Runtime against the SOURCE length N, for FLuRKA cross-attention (a [B, H, M, d+1] cross state per layer whose
size does not depend on N) and softmax cross-attention (the whole source's K/V and mask per layer: grows with N),
same decoder (kernel-elu causal self-attention), same size.

    python benchmarks/cross_decode_cpu.py [--sources 128,512,2048,8192] [--threads 1] [--markdown] [--json F]
    python benchmarks/cross_decode_cpu.py --smoke     # tiny model, sources 16 and 64, a few calls (tests run it)

Both models are built with random weights and exported with export_onnx; only decoder_with_past_model.onnx is
timed. Its past is random: a decoder past of --past tokens (kernel-elu recurrent state, nonnegative) and, per
layer, the cross state of a source of N tokens (flurka: `state`; softmax: `key`, `value` [1, H, N, d] and
`mask` [1, 1, 1, N] of ones), so no encoder run over 8k tokens is needed. Each step reads one token, batch 1.
For each N both models are timed in --rounds interleaved rounds; each cell is the p50 of all timed calls
(flurka_export.bench.timing).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from flurka_export import export_onnx
from flurka_export.bench.timing import Timings, default_threads, parse_with_smoke, time_fn
from flurka_export.models import FlurkaConfig, build_model
from flurka_export.models import seq2seq_io as io
from flurka_export.models.lm import past_names, past_shape

CROSS = {"flurka-elu": "flurka-elu", "softmax": "softmax"}  # label -> cross_attention (encoder: the same kind)
SMOKE = dict(sources="16,64", layers=1, hidden=32, heads=2, vocab=64, low_rank=8, num_features=8, past=2,
             iters=3, warmup=1, rounds=1)


def config_for(kind: str, args: argparse.Namespace) -> FlurkaConfig:
    return FlurkaConfig(task="seq2seq", attention=kind, cross_attention=kind, decoder_attention="kernel-elu",
                        num_layers=args.layers, hidden_size=args.hidden, num_heads=args.heads, vocab_size=args.vocab,
                        low_rank=args.low_rank, num_features=args.num_features,
                        max_seq_len=max(args.sources_list), max_target_len=args.past + 64)


def export(kind: str, args: argparse.Namespace, root: Path) -> tuple[FlurkaConfig, object]:
    import onnxruntime as ort

    torch.manual_seed(0)
    config = config_for(kind, args)
    out = export_onnx(build_model(config).eval(), root / kind)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
    session = ort.InferenceSession(str(Path(out) / io.DECODER_WITH_PAST_FILE), opts,
                                   providers=["CPUExecutionProvider"])
    return config, session


def feed_for(config: FlurkaConfig, src_len: int, past_len: int) -> tuple[dict[str, np.ndarray], int]:
    """Inputs of one decode step after `past_len` target tokens over a source of `src_len`; the cross bytes."""
    rng = np.random.default_rng(0)
    dec = io.decoder_config(config)
    feed: dict[str, np.ndarray] = {io.INPUT_IDS: np.array([[1]], np.int64),
                                   io.DEC_MASK: np.ones((1, past_len + 1), np.int64)}
    cross_bytes = 0
    for i in range(dec.num_layers):
        for name in past_names(dec):
            feed[f"{io.PAST_PREFIX}{i}.decoder.{name}"] = rng.random(past_shape(dec, 1, past_len), np.float32)
        for name, shape in zip(io.cross_names(config), io.cross_shape(config, 1, src_len), strict=True):
            x = np.ones(shape, np.float32) if name == "mask" else rng.random(shape, np.float32)
            feed[f"{io.PAST_PREFIX}{i}.encoder.{name}"] = x
            cross_bytes += x.nbytes
    return feed, cross_bytes


def run(args: argparse.Namespace) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = {label: export(kind, args, Path(tmp)) for label, kind in CROSS.items()}
        for n in args.sources_list:
            feeds = {label: feed_for(config, n, args.past) for label, (config, _) in models.items()}
            times: dict[str, list[float]] = {label: [] for label in models}
            for _ in range(args.rounds):
                for label, (_, session) in models.items():
                    feed = feeds[label][0]
                    t = time_fn(lambda s=session, f=feed: s.run(None, f), iters=args.iters, warmup=args.warmup)
                    times[label] += t.times_ms
            for label in models:
                t = Timings(tuple(times[label]))
                rows.append(dict(model=label, source_len=n, p50_ms=t.p50, p90_ms=t.p90, unstable=t.unstable,
                                 cross_bytes=feeds[label][1]))
                if not args.quiet:
                    print(f"  N={n} {label}: p50 {t.p50:.3f} ms", file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict], sources: list[int]) -> str:
    by = {(r["model"], r["source_len"]): r for r in rows}
    lines = ["| N (source) | flurka-elu ms | softmax ms | softmax / flurka | flurka cross-state MiB | "
             "softmax cross-state MiB |", "|---|---|---|---|---|---|"]
    for n in sources:
        f, s = by["flurka-elu", n], by["softmax", n]
        mark = {k: "*" if by[k, n]["unstable"] else "" for k in CROSS}
        lines.append(f"| {n} | {f['p50_ms']:.3f}{mark['flurka-elu']} | {s['p50_ms']:.3f}{mark['softmax']} | "
                     f"{s['p50_ms'] / f['p50_ms']:.1f}x | {f['cross_bytes'] / 2**20:.3f} | "
                     f"{s['cross_bytes'] / 2**20:.3f} |")
    first, last = sources[0], sources[-1]
    lines.append("")
    for k in CROSS:
        a, b = by[k, first], by[k, last]
        lines.append(f"{k}: per-token ratio N={last} / N={first}: {b['p50_ms'] / a['p50_ms']:.2f}x; "
                     f"cross-state bytes per sequence {a['cross_bytes']} -> {b['cross_bytes']}")
    if any(r["unstable"] for r in rows):
        lines.append("* p90/p50 > 1.5: these timings spread widely")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sources", default="128,512,2048,8192", help="source lengths N (default %(default)s)")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--low-rank", type=int, default=256)
    p.add_argument("--num-features", type=int, default=32)
    p.add_argument("--past", type=int, default=4, help="decoder tokens already generated (default %(default)s)")
    p.add_argument("--iters", type=int, default=15, help="timed calls per model, N and round (default %(default)s)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per round (default %(default)s)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default %(default)s)")
    p.add_argument("--threads", type=int, default=default_threads(), help="intra-op threads (default %(default)s)")
    p.add_argument("--json", default=None, help="write the rows as JSON")
    p.add_argument("--markdown", action="store_true", help="(the table is always markdown)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parse_with_smoke(p, argv, SMOKE)
    args.sources_list = [int(x) for x in args.sources.split(",") if x]
    rows = run(args)
    print(f"threads={args.threads}, layers={args.layers}, D={args.hidden}, heads={args.heads}, "
          f"vocab={args.vocab}, decoder past={args.past}, batch 1, float32")
    print(table(rows, args.sources_list))
    if args.json:
        Path(args.json).write_text(json.dumps(dict(settings={k: v for k, v in vars(args).items()}, rows=rows),
                                              indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
