"""Streaming generation served on the CPU: `flurka-export serve lm.onnx` (Triton's generate_stream endpoint,
server-sent events, continuous batching in a decoupled Python-backend model) at 1 and 8 concurrent streams, against
direct ONNX Runtime `generate` of the same prompts as one batch, same model, same intra-op threads, in one run.

    python benchmarks/serve_generate_cpu.py [--streams 1,8] [--tokens 64] [--prompt-len 32] [--threads 2] \
        [--rounds 3] [--layers 6 --hidden 512 --heads 8 --vocab 8192 --attention kernel-elu] [--markdown]
    python benchmarks/serve_generate_cpu.py --smoke     # tiny model, a few tokens (tests run it)

Model: the decode benchmark's size by default (benchmarks/decode_cpu.py: 6 layers, D=512, 8 heads, vocabulary
8192, kernel-elu, random weights), exported with export_onnx. Prompts: `--prompt-len` random token ids each, all
the same length (the direct batch needs no padding), greedy, `--tokens` new tokens each (no end token).

Served: one HTTP client thread per stream, all started together, each posting to generate_stream and reading its
events as they come. Time to first token (TTFT) of a stream: from its POST to its first event; the table gives the
p50 over streams. Tokens/s: all tokens of all streams over the wall time from the first POST to the last event.
Direct: flurka_export.generate.generate_steps on an OrtDecoder, all prompts as one batch; TTFT is the time to the
first step (the prefill), the same for every prompt; with ONNX Runtime's thread spinning and without it (as the
served model runs); the served tokens/s is compared with the faster. Rounds alternate direct and served on one
server, so a change of load hits both; the table gives the median round per stream count (by the served/direct
ratio, the lower one for an even count). Clients, server and ONNX Runtime share the same cores. Per-stream TTFTs
and per-round spreads come from flurka_export.bench.timing (the harness of `flurka-export bench`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort

from flurka_export import export_onnx
from flurka_export.bench.report import LEGEND, MARK, text_table
from flurka_export.bench.timing import Timings, parse_with_smoke
from flurka_export.generate import OrtDecoder, SamplingOptions, generate_steps
from flurka_export.models import FlurkaConfig, build_model
from flurka_export.serve import Endpoints, ServeOptions, serving

# --smoke: the smallest settings, to check in seconds that the script still runs (tests/benchmarks)
SMOKE = {"layers": 1, "hidden": 32, "heads": 2, "vocab": 64, "tokens": 4, "prompt_len": 4, "streams": "1,2",
         "rounds": 1}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--attention", default="kernel-elu", help="an lm attention kind (default %(default)s)")
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--streams", default="1,8", help="concurrent streams = direct batch sizes (default %(default)s)")
    p.add_argument("--tokens", type=int, default=64, help="new tokens per stream (default %(default)s)")
    p.add_argument("--prompt-len", type=int, default=32, help="prompt tokens per stream (default %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads, direct and served")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", default=None, help="write the raw numbers here")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parse_with_smoke(p, argv, SMOKE)
    args.stream_counts = [int(x) for x in str(args.streams).split(",") if x]
    return args


def make_prompts(n: int, length: int, vocab: int) -> list[list[int]]:
    rng = np.random.default_rng(0)
    return [[int(t) for t in rng.integers(1, vocab, length)] for _ in range(n)]


def direct_decoder(path: Path, config: FlurkaConfig, threads: int, spinning: bool) -> OrtDecoder:
    """An OrtDecoder on a session with the served model's thread count (and, without spinning, its options)."""
    decoder = OrtDecoder(path, config)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    decoder.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return decoder


def direct(decoder: OrtDecoder, prompts: list[list[int]], tokens: int) -> dict:
    """All prompts as one batch: TTFT (the first step) and tokens/s over the whole generation."""
    rows: list[list[int]] = [[] for _ in prompts]
    t0 = time.perf_counter()
    first = None
    for step in generate_steps(decoder, prompts, SamplingOptions(max_new_tokens=tokens)):
        first = first if first is not None else time.perf_counter() - t0
        for row, t in zip(rows, step.tokens, strict=True):
            row.append(int(t))
    wall = time.perf_counter() - t0
    n = sum(len(r) for r in rows)
    return {"tokens_per_s": n / wall, "ttft_ms": first * 1e3, "ttft_spread": 1.0, "wall_s": wall, "tokens": n,
            "ids": rows}


def stream(host: str, port: int, name: str, prompt: list[int], tokens: int) -> tuple[float, float, list[int]]:
    """One generate_stream request: seconds to its first event, the time of its last event, its token ids."""
    conn = http.client.HTTPConnection(host, port, timeout=600)
    try:
        t0 = time.perf_counter()
        conn.request("POST", f"/v2/models/{name}/generate_stream",
                     json.dumps({"input_ids": prompt, "max_tokens": tokens, "stream": True}),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        first, ids = None, []
        for line in r:
            if not line.startswith(b"data: "):
                continue
            event = json.loads(line[len(b"data: "):])
            if "error" in event:
                raise RuntimeError(f"generate_stream answered an error: {event['error']}")
            first = first if first is not None else time.perf_counter() - t0
            ids.append(event["output_ids"])
        return first, time.perf_counter(), ids
    finally:
        conn.close()


def served(endpoints: Endpoints, name: str, prompts: list[list[int]], tokens: int) -> dict:
    """One client thread per prompt, all at once: p50 TTFT over streams, tokens/s over the wall time."""
    with ThreadPoolExecutor(len(prompts)) as pool:
        t0 = time.perf_counter()
        results = list(pool.map(lambda p: stream(endpoints.host, endpoints.http_port, name, p, tokens), prompts))
    wall = max(end for _, end, _ in results) - t0
    ttft = Timings(tuple(first * 1e3 for first, _, _ in results))
    n = sum(len(ids) for _, _, ids in results)
    return {"tokens_per_s": n / wall, "ttft_ms": ttft.p50, "ttft_spread": ttft.spread, "wall_s": wall, "tokens": n,
            "ids": [ids for _, _, ids in results]}


def one_round(args: argparse.Namespace, decoders: dict, srv, all_prompts: list[list[int]]) -> dict[int, dict]:
    out = {}
    for n in args.stream_counts:
        prompts = all_prompts[:n]
        row = {"direct": direct(decoders["spin"], prompts, args.tokens),
               "served": served(srv.endpoints, srv.name, prompts, args.tokens),
               "direct_nospin": direct(decoders["nospin"], prompts, args.tokens)}
        best = max(row["direct"]["tokens_per_s"], row["direct_nospin"]["tokens_per_s"])
        row["ratio"] = row["served"]["tokens_per_s"] / best
        row["same_tokens"] = row["served"]["ids"] == row["direct"]["ids"]
        for m in ("direct", "served", "direct_nospin"):
            del row[m]["ids"]
        out[n] = row
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = FlurkaConfig(task="lm", attention=args.attention, num_layers=args.layers, hidden_size=args.hidden,
                          num_heads=args.heads, vocab_size=args.vocab,
                          max_seq_len=max(args.prompt_len + args.tokens, 256), seed=0)  # >= the default low_rank
    all_prompts = make_prompts(max(args.stream_counts), args.prompt_len, args.vocab)
    with tempfile.TemporaryDirectory(prefix="flurka-bench-servegen-") as tmp:
        path = export_onnx(build_model(config), Path(tmp) / "lm.onnx")
        decoders = {"spin": direct_decoder(path, config, args.threads, True),
                    "nospin": direct_decoder(path, config, args.threads, False)}
        options = ServeOptions(max_batch=max(args.stream_counts), threads=args.threads)
        rounds = []
        with serving(path, Endpoints("127.0.0.1", 0, 0, 0), options) as srv:
            stream(srv.endpoints.host, srv.endpoints.http_port, srv.name, all_prompts[0], 2)  # warm-up
            direct(decoders["spin"], all_prompts[:1], 2)
            direct(decoders["nospin"], all_prompts[:1], 2)
            for r in range(args.rounds):
                rounds.append(one_round(args, decoders, srv, all_prompts))
                ratios = ", ".join(f"{n} streams {row['ratio']:.2f}" for n, row in rounds[-1].items())
                print(f"round {r + 1}: served/best direct tokens/s: {ratios}", file=sys.stderr)
    report(args, rounds)


def report(args: argparse.Namespace, rounds: list[dict[int, dict]]) -> None:
    print(f"{args.attention} lm, {args.layers} layers, D={args.hidden}, {args.heads} heads, vocabulary {args.vocab}, "
          f"fp32, random weights; prompts of {args.prompt_len} tokens, {args.tokens} new tokens each, greedy; "
          f"onnxruntime {ort.__version__}, {args.threads} intra-op threads; median of {len(rounds)} rounds")
    rows, marked, summary = [], False, []
    for n in args.stream_counts:
        per_round = sorted((r[n] for r in rounds), key=lambda row: row["ratio"])
        median = per_round[(len(per_round) - 1) // 2]  # the lower median: conservative
        best = max(median["direct"]["tokens_per_s"], median["direct_nospin"]["tokens_per_s"])
        for key, label in (("direct", f"ONNX Runtime generate, batch {n}"),
                           ("direct_nospin", f"ONNX Runtime generate, batch {n}, no spinning"),
                           ("served", f"Triton generate_stream, {n} streams")):
            m = median[key]
            mark = MARK if m["ttft_spread"] > 1.5 else ""
            marked |= bool(mark)
            rows.append([label, f"{m['tokens_per_s']:.1f}", f"{m['ttft_ms']:.1f}{mark}",
                         f"{m['tokens_per_s'] / best:.2f}"])
        ratios = ", ".join(f"{r[n]['ratio']:.2f}" for r in rounds)
        same = all(r[n]["same_tokens"] for r in rounds)
        summary.append(f"{n} streams: served/best direct tokens/s median {median['ratio']:.2f} (rounds: {ratios}); "
                       f"served tokens {'equal' if same else 'DIFFER from'} direct greedy generate")
    print("\n".join(text_table(["how", "tokens/s", "TTFT p50 ms", "vs best direct"], rows, markdown=args.markdown,
                               left=1)))
    if marked:
        print(LEGEND.replace("p90/p50", "TTFT p90/p50 over streams"))
    print("\n".join(summary))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rounds": rounds},
                                              indent=2) + "\n")


if __name__ == "__main__":
    main()
