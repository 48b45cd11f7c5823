"""`flurka-export prepare-trt in.onnx -o out.onnx`: make TensorRT pick the FlurkaAttention plugin."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_command, add_output


def run(args: argparse.Namespace) -> int:
    from ..onnx_io import load_onnx, save_model
    from ..passes.prepare_trt import PLUGIN_NAMESPACE, PLUGIN_VERSION, prepare_for_tensorrt
    from ..utils import check_output_file

    check_output_file(args.output, overwrite=args.overwrite)
    model, count = prepare_for_tensorrt(load_onnx(args.input), strip_bodies=args.strip_bodies)
    save_model(model, Path(args.output), overwrite=args.overwrite)
    print(f"tagged {count} FlurkaAttention node{'s' if count != 1 else ''} with plugin_namespace={PLUGIN_NAMESPACE!r} "
          f"plugin_version={PLUGIN_VERSION!r}{'; function bodies removed' if args.strip_bodies else ''} -> {args.output}")
    return 0


def register(sub: object) -> None:
    p = add_command(sub, "prepare-trt", run, "tag FlurkaAttention nodes so TensorRT's ONNX parser uses the plugin")
    p.add_argument("input", help="ONNX file")
    add_output(p, "ONNX file to write")
    p.add_argument("--strip-bodies", action="store_true",
                   help="also remove the function bodies (the file then needs the plugin; ONNX Runtime cannot run it)")
