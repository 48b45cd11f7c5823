"""`flurka-export verify CKPT model.onnx`: parity of PyTorch, ONNX Runtime and TensorRT."""

from __future__ import annotations

import argparse

from .common import add_command


def run(args: argparse.Namespace) -> int:
    from .verify_golden import run_golden, wants_golden

    if wants_golden(args):  # golden files: cli/verify_golden.py
        return run_golden(args)
    from ..parity.verify import RUNTIMES, VerifyOptions, format_table, verify, write_report

    def names(text: str | None) -> tuple[str, ...]:
        items = tuple(s.strip() for s in (text or "").split(",") if s.strip())
        bad = [s for s in items if s not in RUNTIMES]
        if bad:
            raise ValueError(f"unknown runtime {bad[0]!r}; allowed: {', '.join(RUNTIMES)}")
        return items

    runtimes = names(args.runtimes) or RUNTIMES
    if args.engine or args.build_engine:
        runtimes = tuple(dict.fromkeys((*runtimes, "trt")))
    opts = VerifyOptions(runtimes=runtimes, shapes=args.shapes, seed=args.seed, atol=args.atol, rtol=args.rtol,
                         per_layer=args.per_layer, vs_softmax=args.vs_softmax, require=names(args.require),
                         engine=args.engine, plugin=args.plugin, build_engine=args.build_engine)
    report = verify(args.checkpoint, args.model, opts)
    print(format_table(report))
    if args.report:
        write_report(report, args.report)
        print(f"report written to {args.report}")
    return 0 if report.passed else 1


def register(sub: object) -> None:
    p = add_command(sub, "verify", run, "parity of PyTorch, ONNX Runtime and TensorRT on the same inputs, with a report")
    p.add_argument("checkpoint", help="checkpoint directory the ONNX was exported from (with --golden: the model)")
    p.add_argument("model", nargs="?", help="ONNX file")
    p.add_argument("--engine", help="TensorRT plan to check as well")
    p.add_argument("--build-engine", action="store_true", help="build a TensorRT engine from the ONNX first")
    p.add_argument("--plugin", help="path of libflurka_trt_plugin.so (for --engine / --build-engine)")
    p.add_argument("--runtimes", help="comma list from torch,ort,trt (default: all available)")
    p.add_argument("--shapes", help="BATCHxSEQ list, e.g. 1x1,4x300 (default: smallest, padded middle, N_max)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--atol", type=float, help="absolute tolerance (default by dtype: fp32 1e-4, fp16 5e-2, bf16 0.25)")
    p.add_argument("--rtol", type=float, help="relative tolerance (default by dtype: fp32 1e-3, fp16 5e-2, bf16 0.1)")
    p.add_argument("--per-layer", action="store_true",
                   help="also compare every FlurkaAttention output and layer output; names the first that diverges")
    p.add_argument("--vs-softmax", action="store_true",
                   help="report the approximation error against exact softmax attention with the same weights")
    p.add_argument("--require", help="runtimes that must run (a skipped one fails the check), e.g. trt")
    p.add_argument("--report", help="write the JSON report here")
    p.add_argument("--save-golden", metavar="FILE.npz", help="write inputs, PyTorch and per-layer outputs, "
                   "tolerances and versions, to check an engine elsewhere without the checkpoint")
    p.add_argument("--golden", metavar="FILE.npz", help="check the model (a plan or .onnx) against a golden file")
    p.add_argument("--load-inputs", metavar="FILE", help="with --save-golden: real inputs (.npz, or Polygraphy's JSON)")
