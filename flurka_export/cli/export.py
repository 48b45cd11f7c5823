"""`flurka-export export CKPT -o model.onnx`."""

from __future__ import annotations

import argparse

from .common import add_command, add_overwrite


def run(args: argparse.Namespace) -> int:
    from ..export import export_onnx
    from ..export.inspect import inspect_model

    path = export_onnx(args.checkpoint, args.output, opset=args.opset, dtype=args.dtype,
                       attention_op=args.attention_op, max_seq_len=args.max_seq_len, overwrite=args.overwrite)
    info = inspect_model(path)
    print(f"exported {args.checkpoint} -> {path} ({len(info['flurka_nodes'])} FlurkaAttention nodes, "
          f"{args.dtype}, opset {args.opset}, {info['size_bytes'] / 1e6:.2f} MB)")
    if args.dtype == "bf16":
        from ..runtimes.ort_runtime import BF16_CPU_REASON

        print(f"note: {BF16_CPU_REASON}")
    return 0


def register(sub: object) -> None:
    p = add_command(sub, "export", run, "PyTorch checkpoint to ONNX")
    p.add_argument("checkpoint", help="checkpoint directory (config.json + model.safetensors)")
    p.add_argument("-o", "--output", required=True, help="ONNX file to write")
    add_overwrite(p)
    p.add_argument("--opset", type=int, default=20, help="standard ONNX opset (18 and newer; default 20)")
    p.add_argument("--dtype", default="fp32", help="fp32, fp16 or bf16 (default fp32)")
    p.add_argument("--attention-op", default="custom",
                   help="custom: one com.flurka::FlurkaAttention node per layer with its function body; "
                        "decomposed: standard ops only (default custom)")
    p.add_argument("--max-seq-len", type=int, default=None,
                   help="largest sequence length of the dynamic axis (default and upper bound: the model's N_max)")
