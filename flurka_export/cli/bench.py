"""`flurka-export bench`: latency/throughput/memory table, JSON and plot."""

from __future__ import annotations

import argparse

from .common import add_command, add_overwrite, add_plugin, non_negative_int, positive_int, str_list


def default_kinds() -> list[str]:
    from ..ops.feature_maps import FEATURE_MAPS

    return ["softmax", "linformer", *(f"flurka-{m}" for m in FEATURE_MAPS)]


def run(args: argparse.Namespace) -> int:
    from ..bench.plot import load_pyplot, plot_report
    from ..bench.report import format_table, write_json
    from ..bench.run import run_bench
    from ..bench.settings import BenchSettings
    from ..bench.variants import parse_variants, ratio_lines
    from ..utils import check_output_file

    try:
        seq_lens = [int(x) for x in str_list(args.seq_lens)]
    except ValueError:
        raise ValueError(f"--seq-lens must be comma-separated integers, not {args.seq_lens!r}") from None
    settings = BenchSettings(kinds=str_list(args.kinds) if args.kinds else default_kinds(), seq_lens=seq_lens,
                             runtimes=str_list(args.runtimes),
                             batch=args.batch, layers=args.layers, hidden=args.hidden, heads=args.heads,
                             low_rank=args.low_rank, num_features=args.num_features, iters=args.iters,
                             warmup=args.warmup, threads=args.threads, plugin=args.plugin, subprocess=not args.in_process,
                             variants=parse_variants(str_list(args.variants)))
    settings.validate()
    # Everything that would fail at the end fails now, before minutes of timing.
    if args.json:
        check_output_file(args.json, overwrite=args.overwrite, what="--json file")
    if args.plot:
        check_output_file(args.plot, overwrite=args.overwrite, what="--plot file")
        load_pyplot()
    report = run_bench(settings, progress=not args.no_progress)
    print(format_table(report, markdown=args.markdown))
    for line in ratio_lines(report["results"]):
        print(line)
    if args.json:
        print(f"wrote {write_json(report, args.json)}")
    if args.plot:
        print(f"wrote {plot_report(report, args.plot)}")
    return 0


def register(sub: object) -> None:
    from ..runtimes import runtime_names

    p = add_command(sub, "bench", run, "latency and throughput across attention kinds, sequence lengths and runtimes")
    p.add_argument("--kinds", default=None,
                   help="comma-separated attention kinds (default: softmax, linformer and flurka-<map> for every "
                        "registered feature map)")
    p.add_argument("--seq-lens", default="512,2048,8192", help="comma-separated sequence lengths (default 512,2048,8192)")
    p.add_argument("--runtimes", default=",".join(runtime_names()),
                   help=f"from {', '.join(runtime_names())} (each on CPU and CUDA where present; missing ones are "
                        "skipped with a note), or one device of a runtime such as torch-cpu, ort-cuda")
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
