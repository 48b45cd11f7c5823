"""`flurka-export export CKPT -o model.onnx`."""

from __future__ import annotations

import argparse

from .common import DTYPE_NAMES, add_command, add_output, bounded_int


def run(args: argparse.Namespace) -> int:
    from ..export import export_onnx
    from ..export.inspect import inspect_model

    if args.quantize:
        return _export_quantized(args)
    path = export_onnx(args.checkpoint, args.output, opset=args.opset, dtype=args.dtype,
                       attention_op=args.attention_op, max_seq_len=args.max_seq_len,
                       linear_attention=args.linear_attention, overwrite=args.overwrite)
    if path.is_dir():  # a family exported as several files (seq2seq: optimum's layout)
        for f in sorted(path.glob("*.onnx")):
            info = inspect_model(f)
            print(f"exported {args.checkpoint} -> {f} ({args.dtype}, opset {info['opsets'].get('ai.onnx', args.opset)}, "
                  f"{info['size_bytes'] / 1e6:.2f} MB)")
        return 0
    info = inspect_model(path)
    print(f"exported {args.checkpoint} -> {path} ({len(info['flurka_nodes'])} FlurkaAttention nodes, "
          f"{args.dtype}, opset {info['opsets'].get('ai.onnx', args.opset)}, {info['size_bytes'] / 1e6:.2f} MB)")
    if info["state"]:
        from ..export.inspect import _state_line

        print(_state_line(info["state"]).strip())
    if args.dtype == "bf16":
        from ..runtimes.ort_runtime import BF16_CPU_REASON

        print(f"note: {BF16_CPU_REASON}")
    return 0


def _export_quantized(args: argparse.Namespace) -> int:
    """fp32 export to a scratch file, then `optimize --quantize int8` into the output."""
    from pathlib import Path

    from ..export import export_onnx
    from ..optimize.pipeline import optimize_file
    from ..utils import temporary_directory

    if args.dtype != "fp32":
        raise ValueError(f"--quantize int8 starts from an fp32 export; drop --dtype {args.dtype}")
    with temporary_directory(".flurka-export-", Path(args.output).resolve().parent) as tmp:
        fp32 = export_onnx(args.checkpoint, Path(tmp) / "fp32.onnx", opset=args.opset,
                           attention_op=args.attention_op, max_seq_len=args.max_seq_len)
        summary = optimize_file(str(fp32), args.output, quantize=args.quantize, overwrite=True)
    print(f"exported {args.checkpoint} -> {args.output} ({summary['quantization']}, opset {args.opset}; fused: "
          f"{', '.join(f'{k} x{v}' for k, v in summary['fused'].items()) or 'nothing'})")
    print(summary["parity"].replace("the input model", "the fp32 export"))
    return 0


def register(sub: object) -> None:
    p = add_command(sub, "export", run, "PyTorch checkpoint to ONNX")
    p.add_argument("checkpoint", help="checkpoint directory (config.json + model.safetensors)")
    add_output(p, "ONNX file to write (seq2seq: a directory)")
    p.add_argument("--opset", type=int, default=20, help="standard ONNX opset (18 and newer; default 20)")
    p.add_argument("--dtype", default="fp32", choices=DTYPE_NAMES, help="fp32, fp16 or bf16 (default fp32)")
    p.add_argument("--attention-op", default="custom", choices=("custom", "decomposed"),
                   help="custom: one com.flurka::FlurkaAttention node per layer with its function body; "
                        "decomposed: standard ops only (default custom)")
    p.add_argument("--quantize", choices=["int8"], default=None,
                   help="int8: write the model as `flurka-export optimize --quantize int8` would (fusions, then "
                        "dynamic int8 MatMul/Gemm weights; FlurkaAttention stays float)")
    p.add_argument("--linear-attention", choices=("ort", "onnx"), default="ort",
                   help="causal kernel attention (task lm) as com.microsoft.LinearAttention, ONNX Runtime's native "
                        "kernel (ort, default: faster) or the standard LinearAttention of opset 27 (onnx: any "
                        "runtime with opset 27; the model's opset becomes 27)")
    p.add_argument("--max-seq-len", type=bounded_int(2), default=None,
                   help="largest sequence length of the dynamic axis (default and upper bound: the model's N_max)")
