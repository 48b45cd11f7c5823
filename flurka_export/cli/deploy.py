"""`flurka-export deploy triton MODEL -o REPO --name NAME`."""

from __future__ import annotations

import argparse

from .common import add_command, add_plugin, non_negative_int, positive_int


def run_triton(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.backend == "python":
        return _run_python_backend(args)
    if Path(args.model).is_dir():
        raise ValueError(f"{args.model} is a directory: an export directory (seq2seq) is served token by token with "
                         "--backend python (a decoupled model behind the generate endpoints); onnxruntime and "
                         "tensorrt_plan take one .onnx or .plan file")
    is_plan = str(args.model).endswith((".plan", ".engine", ".trt"))
    if args.backend and args.backend != ("tensorrt_plan" if is_plan else "onnxruntime"):
        raise ValueError(f"--backend {args.backend} does not run {args.model}: onnxruntime and python take .onnx "
                         "files, tensorrt_plan takes .plan/.engine files")
    from ..deploy.triton import check_version, deploy_triton

    version = check_version(Path(args.output) / args.name, args.version, args.overwrite)
    out = deploy_triton(args.model, args.output, args.name, max_batch=args.max_batch, instances=args.instances,
                        dynamic_batching=args.dynamic_batching, kind=args.kind, plugin=args.plugin,
                        onnx_path=args.onnx, max_queue_delay_us=args.max_queue_delay_us, version=version,
                        overwrite=args.overwrite)
    print(f"wrote {out / str(version)} and {out}/config.pbtxt; server command in {out}/README.md")
    return 0


def _run_python_backend(args: argparse.Namespace) -> int:
    """`--backend python`: model.py running ONNX Runtime in Triton's Python backend (what `serve` runs)."""
    from ..serve.repository import write_python_repository

    if args.plugin or args.onnx or args.kind == "gpu":
        raise ValueError("--backend python serves ONNX models on CPU instances: drop --plugin, --onnx and --kind gpu")
    out = write_python_repository(args.model, args.output, args.name, version=args.version,
                                  overwrite=args.overwrite, max_batch=args.max_batch or 8,
                                  max_queue_delay_us=args.max_queue_delay_us, instances=args.instances,
                                  threads=args.threads or 0)
    files = ", ".join(sorted(p.name for p in out.iterdir()))
    print(f"wrote {out} ({files}) and {out.parent}/config.pbtxt; the server needs numpy and onnxruntime in its "
          f"Python: tritonserver --model-repository={out.parent.parent}")
    return 0


def register(sub: object) -> None:
    deploy = sub.add_parser("deploy", help="deployment targets (Triton Inference Server)",  # type: ignore[attr-defined]
                            description="Package an exported model for a serving system.")
    targets = deploy.add_subparsers(dest="target", metavar="TARGET", required=True)
    p = add_command(targets, "triton", run_triton, "a Triton model repository for an ONNX model or a TensorRT plan")
    p.add_argument("model", help="model.onnx, a TensorRT plan (.plan/.engine), or an export directory (seq2seq, with "
                                 "--backend python)")
    p.add_argument("-o", "--output", required=True, help="model repository directory (created if missing)")
    p.add_argument("--name", required=True, help="model name (the directory inside the repository)")
    p.add_argument("--version", type=positive_int, default=None,
                   help="model version to write (default: the next free one; other versions are kept)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing version, config.pbtxt or README.md of this model (nothing else)")
    p.add_argument("--max-batch", type=non_negative_int, default=0,
                   help="max_batch_size; > 0 lets Triton batch requests (the batch dim leaves the dims) (default 0)")
    p.add_argument("--instances", type=positive_int, default=1, help="model instances (default 1)")
    p.add_argument("--dynamic-batching", action="store_true", help="enable the dynamic batcher (needs --max-batch)")
    p.add_argument("--max-queue-delay-us", type=non_negative_int, default=100, help="dynamic batcher queue delay (default 100)")
    p.add_argument("--kind", choices=("cpu", "gpu"), default=None,
                   help="instance kind (default: cpu for ONNX, gpu for plans)")
    add_plugin(p, "to place beside a plan")
    p.add_argument("--backend", choices=("onnxruntime", "tensorrt_plan", "python"), default=None,
                   help="Triton backend (default: onnxruntime for .onnx, tensorrt_plan for plans); python writes "
                        "model.py running ONNX Runtime, with dynamic batching (what `flurka-export serve` runs; "
                        "--max-batch 0 means 8 there)")
    p.add_argument("--threads", type=positive_int, default=None, help="--backend python: ONNX Runtime threads per instance")
    p.add_argument("--onnx", default=None,
                   help="for a plan: the ONNX file it was built from (its I/O is used when TensorRT is missing)")
