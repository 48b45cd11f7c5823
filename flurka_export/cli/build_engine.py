"""`flurka-export build-engine model.onnx -o model.plan --plugin PATH`."""

from __future__ import annotations

import argparse

from .common import add_command, add_overwrite


def _shapes(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        name, sep, spec = item.partition(":")
        if not sep:
            raise ValueError(f"bad --shapes {item!r}; expected NAME:MIN,OPT,MAX such as input_ids:1x1,4x128,8x512")
        out[name] = spec
    if "input_ids" in out and "attention_mask" not in out:
        out["attention_mask"] = out["input_ids"]  # they always share a shape
    return out


def run(args: argparse.Namespace) -> int:
    from ..trt.engine import build_engine
    from ..utils import check_output_file

    check_output_file(args.output, overwrite=args.overwrite, what="plan file")
    shapes = _shapes(args.shapes)
    _, profiles = build_engine(args.model, args.output, plugin=args.plugin, shapes=shapes, max_batch=args.max_batch,
                               timing_cache=args.timing_cache, allow_fallback=args.allow_fallback,
                               workspace_mb=args.workspace_mb)
    print(f"wrote {args.output}; profile: " + "; ".join(f"{p.name} min {p.min} opt {p.opt} max {p.max}" for p in profiles))
    return 0


def register(sub: object) -> None:
    p = add_command(sub, "build-engine", run, "TensorRT engine with the FlurkaAttention plugin, profiles bounded by N_max")
    p.add_argument("model", help="ONNX file (from `export`; `prepare-trt` is optional with ENABLE_PLUGIN_OVERRIDE)")
    p.add_argument("-o", "--output", required=True, help="plan file to write")
    p.add_argument("--plugin", help="libflurka_trt_plugin.so (default: $FLURKA_TRT_PLUGIN or build/)")
    p.add_argument("--shapes", nargs="*", metavar="NAME:MIN,OPT,MAX",
                   help="profile of an input, e.g. input_ids:1x1,4x128,8x512 (default: batch 1..8, sequence 1..N_max)")
    p.add_argument("--max-batch", type=int, default=8, help="largest batch of the default profile (default 8)")
    p.add_argument("--timing-cache", help="timing cache file, read if present and written back")
    p.add_argument("--allow-fallback", action="store_true",
                   help="accept FlurkaAttention nodes that TensorRT runs as their function body instead of the plugin")
    p.add_argument("--workspace-mb", type=int, default=1024)
    add_overwrite(p)
