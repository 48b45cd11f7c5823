"""Serving overhead on the CPU: the same model through `flurka-export serve` (Triton server, Python backend,
dynamic batching) against direct ONNX Runtime calls in this process, same threads, in one run.

    python benchmarks/serve_cpu.py [--clients 8] [--seq-len 512] [--threads 2] [--rounds 3] [--protocol grpc]

Direct baselines: batched calls of `--clients` sequences (what the dynamic batcher can at best form), with
ONNX Runtime's default thread spinning and without it (as the served model runs), and batch-1 calls; the served
throughput is compared with the faster of the two batched baselines. Served: `--clients` client threads, each sending one sequence at a time and waiting for its
answer (closed loop), so at most `--clients` requests are in flight. Rounds alternate direct and served
measurements on the same server, so a change of machine load hits both; the table gives the median round (the lower one for an even count).
Clients, server and ONNX Runtime share the same cores, as they would on a single small machine.
Percentiles and the p90/p50 spread come from flurka_export.bench.timing (the harness of `flurka-export bench`);
rows whose spread is large are marked. `--smoke` runs a tiny model for seconds (a check that the script runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort

from flurka_export import export_onnx
from flurka_export.bench.report import LEGEND, MARK, text_table
from flurka_export.bench.timing import Timings, parse_with_smoke, time_fn
from flurka_export.models import FlurkaConfig, build_model
from flurka_export.runtimes.ort_runner import make_session
from flurka_export.serve import Endpoints, ServeOptions, serving
from flurka_export.serve.client import infer, make_client, model_metrics


def feed(batch: int, n: int, vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    ids = np.random.default_rng(seed).integers(0, vocab, (batch, n), dtype=np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def direct(session: ort.InferenceSession, batch: int, n: int, vocab: int, sequences: int) -> dict[str, float]:
    """Closed-loop direct calls of `batch` sequences until `sequences` are done: seq/s and per-call latency."""
    x = feed(batch, n, vocab)
    t = time_fn(lambda: session.run(None, x), iters=max(1, -(-sequences // batch)), warmup=1)
    return summary(t, len(t.times_ms) * batch, sum(t.times_ms) / 1e3)


def direct_session(path: Path, threads: int) -> ort.InferenceSession:
    """Like the served model: idle intra-op threads sleep instead of spinning."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def served(endpoints: Endpoints, protocol: str, clients: int, n: int, vocab: int, sequences: int) -> dict[str, float]:
    url = endpoints.http_url if protocol == "http" else endpoints.grpc_url
    per_client = max(1, sequences // clients)

    def client(k: int) -> list[float]:  # milliseconds per request
        c = make_client(protocol, url, timeout_s=120)
        x = feed(1, n, vocab, seed=k)
        infer(c, protocol, "flurka", x, ["logits"], timeout_s=120)  # warm-up (connection)
        out = []
        for _ in range(per_client):
            t = time.perf_counter()
            infer(c, protocol, "flurka", x, ["logits"], timeout_s=120)
            out.append((time.perf_counter() - t) * 1e3)
        c.close()
        return out

    metrics_url = f"http://{endpoints.host}:{endpoints.metrics_port}/metrics"
    with ThreadPoolExecutor(clients) as pool:
        infer(make_client(protocol, url), protocol, "flurka", feed(clients, n, vocab), ["logits"], timeout_s=120)
        before = model_metrics(metrics_url, "flurka")
        t0 = time.perf_counter()
        lat = [t for r in pool.map(client, range(clients)) for t in r]
        wall = time.perf_counter() - t0
    after = model_metrics(metrics_url, "flurka")
    executions = after["nv_inference_exec_count"] - before["nv_inference_exec_count"]
    batched = after["nv_inference_count"] - before["nv_inference_count"]  # includes the clients' warm-up calls
    return {**summary(Timings(tuple(lat)), len(lat), wall), "mean_batch": batched / max(executions, 1)}


def summary(t: Timings, sequences: int, wall: float) -> dict[str, float]:
    """Percentiles and spread by the package's harness (flurka_export.bench.timing), throughput over `wall` s."""
    return {"seq_per_s": sequences / wall, "p50_ms": t.p50, "p99_ms": t.p99, "spread": t.spread,
            "unstable": t.unstable, "sequences": sequences}


# --smoke: the smallest settings, to check in seconds that the script still runs (tests/benchmarks)
SMOKE = {"layers": 1, "hidden": 32, "heads": 2, "low_rank": 8, "seq_len": 16, "clients": 2, "sequences": 4,
         "rounds": 1}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--attention", default="flurka-elu")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads, direct and served")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--low-rank", type=int, default=128)
    p.add_argument("--sequences", type=int, default=48, help="sequences per measurement (default 48)")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    p.add_argument("--max-queue-delay-us", type=int, default=2000)
    p.add_argument("--json", default=None, help="write the raw numbers here")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parse_with_smoke(p, argv, SMOKE)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)

    config = FlurkaConfig(attention=args.attention, num_layers=args.layers, hidden_size=args.hidden,
                          num_heads=args.heads, low_rank=args.low_rank, max_seq_len=args.seq_len, num_features=64,
                          vocab_size=1000)
    with tempfile.TemporaryDirectory(prefix="flurka-bench-serve-") as tmp:
        path = export_onnx(build_model(config), Path(tmp) / "model.onnx")
        sessions = {"spin": make_session(path, ["CPUExecutionProvider"], threads=args.threads),
                    "nospin": direct_session(path, args.threads)}
        options = ServeOptions(max_batch=args.clients, max_queue_delay_us=args.max_queue_delay_us,
                               threads=args.threads)
        rounds = []
        with serving(path, Endpoints("127.0.0.1", 0, 0, 0),
                     options) as srv:
            for r in range(args.rounds):
                row = {"direct_batched": direct(sessions["spin"], args.clients, args.seq_len, 1000, args.sequences),
                       "served": served(srv.endpoints, args.protocol, args.clients, args.seq_len, 1000,
                                        args.sequences),
                       "direct_batched_nospin": direct(sessions["nospin"], args.clients, args.seq_len, 1000,
                                                       args.sequences),
                       "direct_batch1": direct(sessions["spin"], 1, args.seq_len, 1000, args.sequences // 4)}
                best = max(row["direct_batched"]["seq_per_s"], row["direct_batched_nospin"]["seq_per_s"])
                row["ratio"] = row["served"]["seq_per_s"] / best
                print(f"round {r + 1}: served/best direct batched = {row['ratio']:.2f}", file=sys.stderr)
                rounds.append(row)
    report(args, rounds)


def report(args: argparse.Namespace, rounds: list[dict]) -> None:
    median = sorted(rounds, key=lambda r: r["ratio"])[(len(rounds) - 1) // 2]  # the lower median: conservative
    ratios = ", ".join(f"{r['ratio']:.2f}" for r in rounds)
    print(f"{args.attention}, {args.layers} layers, D={args.hidden}, {args.heads} heads, k={args.low_rank}, "
          f"N={args.seq_len}, fp32; onnxruntime {ort.__version__}, {args.threads} intra-op threads; "
          f"{args.clients} concurrent {args.protocol} clients; median of {len(rounds)} rounds "
          f"(served/best direct batched per round: {ratios})")
    rows, marked = [], False
    best = max(median["direct_batched"]["seq_per_s"], median["direct_batched_nospin"]["seq_per_s"])
    for key, label in (("direct_batched", f"ONNX Runtime direct, batch {args.clients}"),
                       ("direct_batched_nospin", f"ONNX Runtime direct, batch {args.clients}, no spinning"),
                       ("direct_batch1", "ONNX Runtime direct, batch 1"),
                       ("served", f"Triton serve, {args.clients} clients x batch 1")):
        m = median[key]
        mark = MARK if m["unstable"] else ""
        marked |= bool(mark)
        rows.append([label, f"{m['seq_per_s']:.2f}", f"{m['p50_ms']:.1f}", f"{m['p99_ms']:.1f}",
                     f"{m['spread']:.2f}{mark}", f"{m['seq_per_s'] / best:.2f}"])
    print("\n".join(text_table(["how", "seq/s", "p50 ms", "p99 ms", "p90/p50", "vs best direct batched"], rows,
                               markdown=args.markdown, left=1)))
    if marked:
        print(LEGEND)
    print(f"served throughput / best direct batched throughput: median {statistics.median(r['ratio'] for r in rounds):.2f}; "
          f"mean batch formed by the dynamic batcher: {median['served']['mean_batch']:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rounds": rounds}, indent=2) + "\n")


if __name__ == "__main__":
    main()
