"""`flurka-export bench`: latency/throughput/memory table, JSON and plot."""

from __future__ import annotations

import argparse
from typing import Any

from .common import add_command, add_overwrite, add_plugin, non_negative_int, positive_int, str_list


def default_kinds() -> list[str]:
    from ..ops.feature_maps import FEATURE_MAPS

    return ["softmax", "linformer", *(f"flurka-{m}" for m in FEATURE_MAPS)]


def run(args: argparse.Namespace) -> int:
    from ..models.specs import spec_of

    if spec_of(args.task).generates:  # decoding: per-token latency against context length
        return run_lm(args)
    from ..bench.plot import plot_report
    from ..bench.report import format_table
    from ..bench.run import run_bench
    from ..bench.settings import BenchSettings
    from ..bench.variants import parse_variants, ratio_lines
    from ..runtimes import runtime_names

    seq_lens = _seq_lens(args.seq_lens or "512,2048,8192")
    settings = BenchSettings(kinds=str_list(args.kinds) if args.kinds else default_kinds(), seq_lens=seq_lens,
                             runtimes=str_list(args.runtimes or ",".join(runtime_names())),
                             batch=args.batch, layers=args.layers, hidden=args.hidden, heads=args.heads,
                             low_rank=args.low_rank, num_features=args.num_features, iters=args.iters,
                             warmup=args.warmup, threads=args.threads, plugin=args.plugin, subprocess=not args.in_process,
                             variants=parse_variants(str_list(args.variants)))
    settings.validate()
    _check_outputs(args)
    report = run_bench(settings, progress=not args.no_progress)
    print(format_table(report, markdown=args.markdown))
    for line in ratio_lines(report["results"]):
        print(line)
    _write_outputs(args, report, plot_report)
    return 0


def _check_outputs(args: argparse.Namespace) -> None:
    """Everything that would fail at the end fails now, before minutes of timing."""
    from ..bench.plot import load_pyplot
    from ..utils import check_output_file

    if args.json:
        check_output_file(args.json, overwrite=args.overwrite, what="--json file")
    if args.plot:
        check_output_file(args.plot, overwrite=args.overwrite, what="--plot file")
        load_pyplot()


def _write_outputs(args: argparse.Namespace, report: dict, plot: Any) -> None:
    from ..bench.report import write_json

    if args.json:
        print(f"wrote {write_json(report, args.json)}")
    if args.plot:
        print(f"wrote {plot(report, args.plot)}")


def _seq_lens(text: str) -> list[int]:
    try:
        return [int(x) for x in str_list(text)]
    except ValueError:
        raise ValueError(f"--seq-lens must be comma-separated integers, not {text!r}") from None


# Flags of the encoder benchmark that --task lm does not take, with the value that means "not given".
_NOT_FOR_LM = {"runtimes": None, "variants": "fp32", "batch": 1, "plugin": None, "in_process": False}


def run_lm(args: argparse.Namespace) -> int:
    """Decode benchmark of lm models (bench/decode.py): per-token latency at each context in --seq-lens,
    past bytes and prefill throughput, ours in ONNX Runtime against the --baselines."""
    from ..bench.decode import DecodeSettings
    from ..bench.decode_report import format_report, plot_decode
    from ..bench.decode_run import run_decode

    for name, unset in _NOT_FOR_LM.items():
        if getattr(args, name) != unset:
            raise ValueError(f"--{name.replace('_', '-')} is not used by --task lm (ours run in ONNX Runtime on the "
                             "CPU, batch 1; the baselines are chosen with --baselines)")
    settings = DecodeSettings(kinds=str_list(args.kinds or "kernel-elu,softmax"), baselines=str_list(args.baselines),
                              contexts=_seq_lens(args.seq_lens or "256,1024,4096"), layers=args.layers,
                              hidden=args.hidden, heads=args.heads, iters=args.iters, warmup=args.warmup,
                              threads=args.threads).validate()
    _check_outputs(args)
    report = run_decode(settings, progress=not args.no_progress)
    print(format_report(report, markdown=args.markdown))
    _write_outputs(args, report, plot_decode)
    return 0 if report["gqa_check"] is None or report["gqa_check"]["passed"] else 1


def register(sub: object) -> None:
    from ..runtimes import runtime_names

    p = add_command(sub, "bench", run, "latency and throughput across attention kinds, sequence lengths and runtimes")
    p.add_argument("--task", choices=("classify", "lm"), default="classify",
                   help="classify: encoders over whole sequences (default); lm: decoding, per-token latency at each "
                        "context length in --seq-lens, past bytes and prefill (docs/benchmarks.md, Decoding)")
    p.add_argument("--kinds", default=None,
                   help="comma-separated attention kinds (default: softmax, linformer and flurka-<map> for every "
                        "registered feature map; --task lm: kernel-elu,softmax)")
    p.add_argument("--seq-lens", default=None,
                   help="comma-separated sequence lengths (default 512,2048,8192); --task lm: context lengths "
                        "(default 256,1024,4096)")
    p.add_argument("--runtimes", default=None,
                   help=f"from {', '.join(runtime_names())} (default all; each on CPU and CUDA where present; missing "
                        "ones are skipped with a note), or one device of a runtime such as torch-cpu, ort-cuda")
    p.add_argument("--baselines", default="softmax-gqa,gpt2-hf",
                   help="--task lm: softmax-gqa (ORT GroupQueryAttention, past and present one buffer) and gpt2-hf "
                        "(transformers' GPT-2 of the same size; skipped with a note without transformers)")
    p.add_argument("--batch", type=positive_int, default=1)
    p.add_argument("--layers", type=positive_int, default=2)
    p.add_argument("--hidden", type=positive_int, default=256)
    p.add_argument("--heads", type=positive_int, default=4)
    p.add_argument("--low-rank", type=positive_int, default=64, help="k of linformer and flurka-* (default 64)")
    p.add_argument("--num-features", type=positive_int, default=64, help="P of rfa and favor (default 64)")
    p.add_argument("--iters", type=positive_int, default=10, help="timed calls per configuration, >= 1 (default 10)")
    p.add_argument("--warmup", type=non_negative_int, default=2, help="untimed calls before the timed ones, >= 0 (default 2)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="intra-op threads, the same for torch and ORT (default: min(4, physical cores); "
                        "recorded in the table and the JSON)")
    add_plugin(p, "for the trt runtime")
    p.add_argument("--variants", default="fp32",
                   help="ONNX Runtime model variants side by side: fp32, optimized (ORT fusions), int8 (fusions + "
                        "dynamic int8 weights), as `flurka-export optimize` writes them (default fp32)")
    p.add_argument("--json", default=None, help="write the results as JSON")
    p.add_argument("--plot", default=None, help="write a PNG plot (needs matplotlib)")
    add_overwrite(p)
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--in-process", action="store_true",
                   help="run everything in this process (faster start; sets this process's torch threads)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
