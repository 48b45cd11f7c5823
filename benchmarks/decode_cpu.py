"""Decoding on the CPU, in one run on the same model size: per-token latency and past bytes of a kernel-* lm
(recurrent state) against softmax with a KV cache, at several context lengths, and prefill throughput.

    python benchmarks/decode_cpu.py [--contexts 256,1024,4096,16384] [--threads 2] \
        [--json docs/bench_decode_cpu.json] [--plot docs/img/bench_decode_cpu.png] [--markdown]
    python benchmarks/decode_cpu.py --smoke     # tiny model, contexts 16 and 64, a few calls (tests run it)

Models (all ONNX Runtime on the CPU except GPT-2): our exported kernel-elu and softmax `lm` (export_onnx; the
softmax export concatenates its cache each step), the same softmax weights on com.microsoft.GroupQueryAttention
with past and present one preallocated buffer (what onnxruntime-genai runs), and Hugging Face transformers'
GPT2LMHeadModel of the same size in PyTorch with a DynamicCache. Softmax caches are filled with random K/V of
length P (no 16k-token prefill), kernel states with random nonnegative values: flurka_export/bench/decode.py
says exactly what is timed. Timing by flurka_export.bench.timing, the harness of `flurka-export bench`.
"""

from __future__ import annotations

import argparse
import sys

from flurka_export.bench.decode import BASELINES, DecodeSettings
from flurka_export.bench.decode_report import format_report, plot_decode
from flurka_export.bench.decode_run import run_decode
from flurka_export.bench.report import write_json
from flurka_export.bench.timing import default_threads

SMOKE = dict(contexts=[16, 64], layers=1, hidden=32, heads=2, vocab=64, prefill_len=16, iters=3, warmup=1, rounds=1,
             threads=1)


def ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated integers, not {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    d = DecodeSettings()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--contexts", type=ints, default=d.contexts, help="context lengths P (default 256,1024,4096,16384)")
    p.add_argument("--kinds", default=",".join(d.kinds), help="our lm kinds, exported (default %(default)s)")
    p.add_argument("--baselines", default=",".join(d.baselines), help=f"from {', '.join(BASELINES)} (default all)")
    p.add_argument("--layers", type=int, default=d.layers)
    p.add_argument("--hidden", type=int, default=d.hidden)
    p.add_argument("--heads", type=int, default=d.heads)
    p.add_argument("--vocab", type=int, default=d.vocab)
    p.add_argument("--prefill", type=int, default=d.prefill_len, help="prefill tokens (default %(default)s)")
    p.add_argument("--iters", type=int, default=d.iters, help="timed calls per model and context (default %(default)s)")
    p.add_argument("--warmup", type=int, default=d.warmup, help="untimed calls per round (default %(default)s)")
    p.add_argument("--rounds", type=int, default=d.rounds, help="interleaved rounds (default %(default)s)")
    p.add_argument("--threads", type=int, default=default_threads(), help="intra-op threads (default %(default)s)")
    p.add_argument("--smoke", action="store_true", help="tiny model, contexts 16 and 64, a few calls")
    p.add_argument("--json", default=None, help="write the report as JSON")
    p.add_argument("--plot", default=None, help="write a PNG plot (needs matplotlib)")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    args = p.parse_args(argv)
    settings = DecodeSettings(kinds=[k for k in args.kinds.split(",") if k],
                              baselines=[b for b in args.baselines.split(",") if b], contexts=args.contexts,
                              layers=args.layers, hidden=args.hidden, heads=args.heads, vocab=args.vocab,
                              prefill_len=args.prefill, iters=args.iters, warmup=args.warmup, rounds=args.rounds,
                              threads=args.threads)
    if args.smoke:
        settings = DecodeSettings(kinds=settings.kinds, baselines=settings.baselines, **SMOKE)
    report = run_decode(settings.validate(), progress=not args.quiet)
    print(format_report(report, markdown=args.markdown))
    if args.json:
        print(f"wrote {write_json(report, args.json)}")
    if args.plot:
        print(f"wrote {plot_decode(report, args.plot)}")
    check = report["gqa_check"]
    return 1 if check is not None and not check["passed"] else 0


if __name__ == "__main__":
    sys.exit(main())

