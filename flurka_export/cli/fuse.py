"""`flurka-export fuse in.onnx -o out.onnx`: decomposed FLuRKA attention -> FlurkaAttention nodes."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_command, add_output


def run(args: argparse.Namespace) -> int:
    from ..onnx_io import load_onnx, save_model
    from ..passes.fuse_flurka_attention import fuse_flurka_attention
    from ..utils import check_output_file

    check_output_file(args.output, overwrite=args.overwrite)
    model = load_onnx(args.input)
    fused, count = fuse_flurka_attention(model)
    save_model(fused, Path(args.output), overwrite=args.overwrite)
    print(f"fused {count} FLuRKA attention subgraph{'s' if count != 1 else ''} into com.flurka::FlurkaAttention "
          f"nodes -> {args.output}")
    if count == 0:
        print("note: nothing matched; `fuse` recognises the subgraphs that `export --attention-op decomposed` emits")
    return 0


def register(sub: object) -> None:
    p = add_command(sub, "fuse", run, "rewrite decomposed FLuRKA attention subgraphs into FlurkaAttention nodes")
    p.add_argument("input", help="ONNX file with decomposed attention")
    add_output(p, "ONNX file to write")
