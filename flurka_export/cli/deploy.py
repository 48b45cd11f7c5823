"""`flurka-export deploy triton MODEL -o REPO --name NAME`."""

from __future__ import annotations

import argparse

from .common import add_command


def run_triton(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..deploy.triton import check_version, deploy_triton

    version = check_version(Path(args.output) / args.name, args.version, args.overwrite)
    out = deploy_triton(args.model, args.output, args.name, max_batch=args.max_batch, instances=args.instances,
                        dynamic_batching=args.dynamic_batching, kind=args.kind, plugin=args.plugin,
                        onnx_path=args.onnx, max_queue_delay_us=args.max_queue_delay_us, version=version,
                        overwrite=args.overwrite)
    print(f"wrote {out / str(version)} and {out}/config.pbtxt; server command in {out}/README.md")
    return 0


def register(sub: object) -> None:
    deploy = sub.add_parser("deploy", help="deployment targets (Triton Inference Server)",  # type: ignore[attr-defined]
                            description="Package an exported model for a serving system.")
    targets = deploy.add_subparsers(dest="target", metavar="TARGET", required=True)
    p = add_command(targets, "triton", run_triton, "a Triton model repository for an ONNX model or a TensorRT plan")
    p.add_argument("model", help="model.onnx, or a TensorRT plan (.plan/.engine)")
    p.add_argument("-o", "--output", required=True, help="model repository directory (created if missing)")
    p.add_argument("--name", required=True, help="model name (the directory inside the repository)")
    p.add_argument("--version", type=int, default=None,
                   help="model version to write (default: the next free one; other versions are kept)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing version, config.pbtxt or README.md of this model (nothing else)")
    p.add_argument("--max-batch", type=int, default=0,
                   help="max_batch_size; > 0 lets Triton batch requests (the batch dim leaves the dims) (default 0)")
    p.add_argument("--instances", type=int, default=1, help="model instances (default 1)")
    p.add_argument("--dynamic-batching", action="store_true", help="enable the dynamic batcher (needs --max-batch)")
    p.add_argument("--max-queue-delay-us", type=int, default=100, help="dynamic batcher queue delay (default 100)")
    p.add_argument("--kind", choices=("cpu", "gpu"), default=None,
                   help="instance kind (default: cpu for ONNX, gpu for plans)")
    p.add_argument("--plugin", default=None, help=f"TensorRT plugin library ({'libflurka_trt_plugin.so'}) for plans")
    p.add_argument("--onnx", default=None,
                   help="for a plan: the ONNX file it was built from (its I/O is used when TensorRT is missing)")
