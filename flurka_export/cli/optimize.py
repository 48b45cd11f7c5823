"""`flurka-export optimize model.onnx -o out.onnx [--level all] [--quantize int8 [--calibration-data x.npz]]`."""

from __future__ import annotations

import argparse

from .common import add_command


def run(args: argparse.Namespace) -> int:
    from ..export.inspect import inspect_model
    from ..optimize.pipeline import optimize_file

    summary = optimize_file(args.model, args.output, level=args.level, quantize=args.quantize,
                            calibration_data=args.calibration_data, per_channel=args.per_channel,
                            verify=not args.no_verify, overwrite=args.overwrite)
    fused = summary["fused"]
    print("fused: " + (", ".join(f"{k} x{v}" for k, v in fused.items()) if fused else f"nothing (level {args.level})"))
    if summary["quantization"]:
        print(f"quantized: {summary['quantization']} (MatMul/Gemm weights; FlurkaAttention and its inputs float)")
    if summary["parity"]:
        print(summary["parity"])
    info = inspect_model(args.output)
    nodes = info["flurka_nodes"]
    kept = (f"{len(nodes)} FlurkaAttention nodes with bodies {sorted({n['overload'] for n in nodes})}" if nodes
            else "no FlurkaAttention nodes (standard attention)")
    print(f"wrote {args.output}: {kept}, {info['size_bytes'] / 1e6:.2f} MB")
    return 0


def register(sub: object) -> None:
    from ..passes.ort_fusions import LEVEL_HELP, LEVELS

    p = add_command(sub, "optimize", run, "ONNX Runtime fusions and int8 quantization that keep FlurkaAttention "
                                          "nodes and their function bodies")
    p.add_argument("model", help="ONNX file exported by flurka-export")
    p.add_argument("-o", "--output", required=True, help="ONNX file to write")
    p.add_argument("--level", choices=list(LEVELS), default="all", help=LEVEL_HELP)
    p.add_argument("--quantize", choices=["int8"], default=None,
                   help="int8: quantize MatMul/Gemm weights (dynamic; static with --calibration-data)")
    p.add_argument("--calibration-data", default=None, metavar="FILE.npz",
                   help="static int8: one array per model input (e.g. input_ids, attention_mask), leading axis = "
                        "samples; activation ranges are measured on them")
    p.add_argument("--per-channel", action="store_true", help="int8 weights with one scale per output channel")
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime check against the input model")
    p.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
