"""`flurka-export build-kernels`: compile the fused Triton kernels ahead of time (cubin per arch + PTX)
and write the C launcher for the TensorRT plugin. Needs triton, not a GPU."""

from __future__ import annotations

import argparse

from .common import add_command, add_overwrite, int_list, positive_int, str_list


def run(args: argparse.Namespace) -> int:
    import time

    from ..kernels.aot import DTYPES, build_kernels
    from ..kernels.launch import HEAD_DIMS
    from ..ops.feature_maps import FEATURE_MAPS
    from ..utils import check_output_dir

    check_output_dir(args.output, overwrite=args.overwrite, what="kernel build directory",
                     writes=("flurka_attention_launch.h/.c", "flurka_kernels*.c", "manifest.json"))
    start = time.time()
    manifest = build_kernels(
        args.output, args.arch,
        feature_maps=args.feature_maps or FEATURE_MAPS, dtypes=args.dtypes or DTYPES,
        head_dims=args.head_dims or HEAD_DIMS, value_dims=args.value_dims, jobs=args.jobs,
        log=None if args.quiet else print,
    )
    images = manifest["images"]
    size = sum(i["bytes"] for i in images)
    print(f"wrote {args.output}: {len(images)} kernel images ({size / 1e6:.1f} MB) for sm_{', sm_'.join(map(str, manifest['archs']))}"
          f" + forward-compatible PTX of sm_{manifest['ptx_arch']} (PTX ISA {manifest['ptx_version']}: needs driver "
          f"{manifest['min_driver']} or newer), launcher flurka_attention_launch.h/.c, in {time.time() - start:.0f} s")
    return 0


def register(sub: object) -> None:
    p = add_command(sub, "build-kernels", run,
                    "compile the fused FlurkaAttention kernels ahead of time and write their C launcher")
    p.add_argument("--arch", type=int_list, default=[80, 86, 89, 90],
                   help="compute capabilities, comma-separated (default: 80,86,89,90); PTX of the newest below 90 "
                        "(else sm_80; sm_90a PTX is arch-specific) is embedded for newer GPUs")
    p.add_argument("-o", "--output", required=True, help="directory to write the C sources and manifest.json into")
    p.add_argument("--feature-maps", type=str_list, default=None, help="subset, e.g. relu,elu (default: all)")
    p.add_argument("--dtypes", type=str_list, default=None, help="subset of fp32,fp16,bf16 (default: all)")
    p.add_argument("--head-dims", type=int_list, default=None, help="subset of 32,64,128 for d (default: all)")
    p.add_argument("--value-dims", type=int_list, default=None, help="subset of 32,64,128 for dv (default: as d)")
    p.add_argument("-j", "--jobs", type=positive_int, default=None, help="parallel compiler processes (default: CPU count)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    add_overwrite(p)
