"""`flurka-export inspect model.onnx [--check]`."""

from __future__ import annotations

import argparse
import json

from .common import add_command


def _check(path: str) -> list[str]:
    from ..export.check_functions import check_flurka_functions, check_loads_in_ort
    from ..onnx_io import load_onnx

    model = load_onnx(path)
    problems = check_flurka_functions(model)
    plugin_only = not model.functions and any(
        a.name == "plugin_namespace" for n in model.graph.node for a in n.attribute)
    if not problems and not plugin_only:
        err = check_loads_in_ort(model)
        problems += [err] if err else []
    return problems


def run(args: argparse.Namespace) -> int:
    import os

    from ..export.inspect import format_report, inspect_model
    from .main import CommandError

    if os.path.isdir(args.model):
        return _run_directory(args)
    info = inspect_model(args.model)
    print(json.dumps(info, indent=2) if args.json else format_report(info))
    if args.check:
        problems = _check(args.model)
        if problems:
            raise CommandError(f"check failed for {args.model}: " + " Also: ".join(problems))
        print(f"check: {len(info['flurka_nodes'])} FlurkaAttention nodes with overloads, bodies and opset import "
              "intact; ONNX Runtime loads the model")
    return 0


def _run_directory(args: argparse.Namespace) -> int:
    from ..export.inspect_dir import format_directory_report, inspect_directory
    from .main import CommandError

    info = inspect_directory(args.model)
    print(json.dumps(info, indent=2) if args.json else format_directory_report(info))
    if args.check:
        problems = [f"{f['path']}: {p}" for f in info["files"] for p in _check(f["path"])]
        if problems:
            raise CommandError(f"check failed for {args.model}: " + " Also: ".join(problems))
        print(f"check: {len(info['files'])} files; FlurkaAttention nodes intact; ONNX Runtime loads each file")
    return 0


def register(sub: object) -> None:
    p = add_command(sub, "inspect", run, "what is inside an ONNX file: FlurkaAttention nodes, opsets, dtypes, "
                                         "dynamic axes, function bodies")
    p.add_argument("model", help="ONNX file, or an export directory (seq2seq: encoder and decoder files)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--check", action="store_true",
                   help="exit 1 if FlurkaAttention nodes lost their bodies, overloads or opset import (naming the "
                        "tool that usually does it) or ONNX Runtime cannot load the file")
