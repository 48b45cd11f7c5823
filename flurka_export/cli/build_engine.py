"""`flurka-export build-engine model.onnx -o model.plan --plugin PATH`."""

from __future__ import annotations

import argparse

from .common import add_command, add_overwrite, add_plugin, positive_int


def _shapes(items: list[str] | None) -> dict[str, str]:
    from ..trt.profiles import parse_profile_spec

    out: dict[str, str] = {}
    for item in items or []:
        if ":" not in item:
            raise ValueError(f"bad --shapes {item!r}; expected NAME:MIN,OPT,MAX such as input_ids:1x1,4x128,8x512")
        out.update(parse_profile_spec(item))
    return out


def options_from_args(args: argparse.Namespace):  # -> EngineOptions (imported lazily: no TensorRT needed here)
    from ..trt.engine import EngineOptions

    options = EngineOptions(
        version_compatible=args.version_compatible, exclude_lean_runtime=args.exclude_lean_runtime,
        serialize_plugin=False if args.no_serialize_plugin else None,
        hardware_compatibility=args.hardware_compatibility,
        builder_optimization_level=args.builder_optimization_level, workspace_mb=args.workspace_mb)
    options.check()
    return options


def run(args: argparse.Namespace) -> int:
    from ..onnx_io import load_onnx
    from ..trt.engine import build_engine
    from ..trt.profiles import profiles_from_specs
    from ..utils import check_output_file

    check_output_file(args.output, overwrite=args.overwrite, what="plan file")
    check_output_file(f"{args.output}.json", overwrite=args.overwrite, what="build info file")
    if args.shapes and args.profile:
        raise ValueError("give either --shapes (one profile) or --profile (repeatable), not both")
    options = options_from_args(args)
    profiles = None
    if args.profile:
        profiles = profiles_from_specs(load_onnx(args.model, load_external_data=False), args.profile, args.max_batch)
    _, used = build_engine(args.model, args.output, plugin=args.plugin, shapes=_shapes(args.shapes), profiles=profiles,
                           max_batch=args.max_batch, timing_cache=args.timing_cache,
                           allow_fallback=args.allow_fallback, options=options)
    for i, group in enumerate(used):
        print(f"profile {i}: " + "; ".join(f"{p.name} min {p.min} opt {p.opt} max {p.max}" for p in group))
    extra = " (version-compatible, plugin library inside the plan)" if options.version_compatible and \
        options.serializes_plugin else ""
    print(f"wrote {args.output}{extra} and its build info {args.output}.json")
    return 0


def register(sub: object) -> None:
    p = add_command(sub, "build-engine", run, "TensorRT engine with the FlurkaAttention plugin, profiles bounded by N_max")
    p.add_argument("model", help="ONNX file (from `export`; `prepare-trt` is optional with ENABLE_PLUGIN_OVERRIDE)")
    p.add_argument("-o", "--output", required=True, help="plan file to write (its build info goes to PLAN.json)")
    add_plugin(p, "loaded to parse and build")
    p.add_argument("--shapes", nargs="*", metavar="NAME:MIN,OPT,MAX",
                   help="one profile, e.g. input_ids:1x1,4x128,8x512 (default: batch 1..8, sequence 1..N_max)")
    p.add_argument("--profile", action="append", metavar="NAME:MIN,OPT,MAX[;NAME:...]",
                   help="an optimisation profile; repeat for several (e.g. short and long sequences: narrow profiles "
                        "are faster than one wide one); attention_mask follows input_ids")
    p.add_argument("--max-batch", type=positive_int, default=8, help="largest batch of the default profile (default 8)")
    p.add_argument("--timing-cache", help="timing cache file: reused when present, updated after the build")
    p.add_argument("--version-compatible", action="store_true",
                   help="an engine later TensorRT versions can run (with the plugin library serialized into it)")
    p.add_argument("--exclude-lean-runtime", action="store_true",
                   help="with --version-compatible: leave TensorRT's lean runtime out of the plan (smaller)")
    p.add_argument("--no-serialize-plugin", action="store_true",
                   help="with --version-compatible: do not put the plugin library into the plan")
    p.add_argument("--hardware-compatibility", default="none", choices=("none", "ampere+", "same-compute-capability"),
                   help="GPUs the engine may run on besides the one that built it (default none)")
    p.add_argument("--builder-optimization-level", type=int, choices=range(6), metavar="0..5",
                   help="TensorRT's builder optimisation level (default: TensorRT's, 3)")
    p.add_argument("--allow-fallback", action="store_true",
                   help="accept FlurkaAttention nodes that TensorRT runs as their function body instead of the plugin")
    p.add_argument("--workspace-mb", type=positive_int, default=1024)
    add_overwrite(p)
