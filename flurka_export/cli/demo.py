"""`flurka-export demo`: the main job end to end on a small built-in model.

new checkpoint -> ONNX export (one FlurkaAttention node per layer) -> ONNX Runtime -> parity report.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import DTYPE_NAMES, add_command

DEMO_FILES = ("checkpoint/", "model.onnx", "parity.json")


def run(args: argparse.Namespace) -> int:
    from ..export import export_onnx
    from ..export.inspect import format_report, inspect_model
    from ..models import PRESETS, FlurkaConfig, build_model, save_pretrained
    from ..parity.verify import VerifyOptions, format_table, parity_line, verify, write_report
    from ..utils import check_output_dir

    out = Path(args.output)
    check_output_dir(out, overwrite=args.overwrite, writes=DEMO_FILES, what="demo directory")
    ckpt, onnx_path = out / "checkpoint", out / "model.onnx"
    config = FlurkaConfig(task=args.task, attention=args.attention, **PRESETS["tiny"])
    print(f"[1/4] new {config.task} model with {config.attention} attention -> {ckpt}")
    save_pretrained(build_model(config), ckpt, overwrite=args.overwrite)
    print(f"[2/4] export to ONNX -> {onnx_path}")
    export_onnx(ckpt, onnx_path, dtype=args.dtype, overwrite=args.overwrite)
    print(format_report(inspect_model(onnx_path)))
    print("[3/4] run PyTorch and ONNX Runtime on the same inputs (per layer)")
    report = verify(ckpt, onnx_path, VerifyOptions(runtimes=("torch", "ort"), per_layer=True, vs_softmax=True))
    print(format_table(report))
    write_report(report, out / "parity.json", overwrite=args.overwrite)
    print(f"[4/4] report -> {out / 'parity.json'}")
    print(parity_line(report))
    return 0 if report.passed else 1


def register(sub: object) -> None:
    from ..models.config import ATTENTION_KINDS, TASKS

    p = add_command(sub, "demo", run, "end to end on a small built-in model: export, ONNX Runtime, parity report")
    p.add_argument("-o", "--output", default="flurka-demo", help="output directory (default ./flurka-demo)")
    p.add_argument("--attention", choices=ATTENTION_KINDS, default="flurka-elu")
    p.add_argument("--task", choices=TASKS, default="classify")
    p.add_argument("--dtype", default="fp32", choices=DTYPE_NAMES, help="fp32, fp16 or bf16")
    p.add_argument("--overwrite", action="store_true",
                   help=f"replace what an earlier demo wrote there ({', '.join(DEMO_FILES)}); nothing else is touched")
