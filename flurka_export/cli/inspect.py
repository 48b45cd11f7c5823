"""`flurka-export inspect model.onnx`."""

from __future__ import annotations

import argparse
import json

from .common import add_command


def run(args: argparse.Namespace) -> int:
    from ..export.inspect import format_report, inspect_model

    info = inspect_model(args.model)
    print(json.dumps(info, indent=2) if args.json else format_report(info))
    return 0


def register(sub: object) -> None:
    p = add_command(sub, "inspect", run, "what is inside an ONNX file: FlurkaAttention nodes, opsets, dtypes, "
                                         "dynamic axes, function bodies")
    p.add_argument("model", help="ONNX file")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
