"""`flurka-export verify CKPT model.onnx`: parity of PyTorch, ONNX Runtime and TensorRT."""

from __future__ import annotations

import argparse

from .common import add_command, add_overwrite, add_plugin, non_negative_float, non_negative_int, shape_list


def run(args: argparse.Namespace) -> int:
    from ..parity.verify import VerifyOptions, format_table, verify, write_report
    from ..runtimes import parse_runtime_list
    from ..utils import check_output_file
    from .verify_golden import run_golden, wants_golden

    if args.report:
        check_output_file(args.report, overwrite=args.overwrite, what="report")
    if wants_golden(args):  # golden files: cli/verify_golden.py
        return run_golden(args)

    opts = VerifyOptions(runtimes=parse_runtime_list(args.runtimes) if args.runtimes else None,
                         optional=parse_runtime_list(args.optional, "--optional"),
                         require=parse_runtime_list(args.require, "--require"),
                         shapes=args.shapes, seed=args.seed, atol=args.atol, rtol=args.rtol,
                         per_layer=args.per_layer, vs_softmax=args.vs_softmax,
                         engine=args.engine, plugin=args.plugin, build_engine=args.build_engine)
    report = verify(args.checkpoint, args.model, opts)
    print(format_table(report))
    if args.report:
        write_report(report, args.report, overwrite=args.overwrite)
        print(f"report written to {args.report}")
    return 0 if report.passed else 1


def register(sub: object) -> None:
    from ..runtimes import runtime_names

    names = ",".join(runtime_names())
    p = add_command(sub, "verify", run, "parity of PyTorch, ONNX Runtime and TensorRT on the same inputs, with a report",
                    description="Run the checkpoint in PyTorch and the ONNX file (or engine) in the other runtimes on "
                                "the same inputs and compare every output against PyTorch. PASS needs at least one "
                                "comparison; a runtime you name that cannot run is a FAIL unless it is --optional.")
    p.add_argument("checkpoint", help="checkpoint directory the ONNX was exported from (with --golden: the model)")
    p.add_argument("model", nargs="?", help="ONNX file")
    p.add_argument("--engine", help="TensorRT plan to check as well (trt becomes required)")
    p.add_argument("--build-engine", action="store_true", help="build a TensorRT engine from the ONNX first")
    add_plugin(p, "for --engine / --build-engine / --golden")
    p.add_argument("--runtimes", help=f"comma list from {names}; each one named must run "
                                      "(default: every installed runtime, none required)")
    p.add_argument("--optional", help="runtimes that may be skipped without failing the check, e.g. trt")
    p.add_argument("--require", help="runtimes that must run in addition to --runtimes, e.g. trt")
    p.add_argument("--shapes", type=shape_list, help="BATCHxSEQ list, e.g. 1x1,4x300 (default: smallest, padded middle, max_seq_len)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--atol", type=non_negative_float, help="absolute tolerance >= 0 (default by dtype: fp32 1e-4, fp16 5e-2, bf16 0.25)")
    p.add_argument("--rtol", type=non_negative_float, help="relative tolerance >= 0 (default by dtype: fp32 1e-3, fp16 5e-2, bf16 0.1)")
    p.add_argument("--per-layer", action="store_true",
                   help="also compare every FlurkaAttention output and layer output; names the first that diverges")
    p.add_argument("--vs-softmax", action="store_true",
                   help="report the approximation error against exact softmax attention with the same weights")
    p.add_argument("--report", help="write the JSON report here")
    add_overwrite(p)
    p.add_argument("--save-golden", metavar="FILE.npz", help="write inputs, PyTorch and per-layer outputs, "
                   "tolerances and versions, to check an engine elsewhere without the checkpoint")
    p.add_argument("--golden", metavar="FILE.npz", help="check the model (a plan or .onnx) against a golden file")
    p.add_argument("--load-inputs", metavar="FILE", help="with --save-golden: real inputs (.npz, or Polygraphy's JSON)")
