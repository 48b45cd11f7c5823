"""A kernels directory for the host-side C++ tests: the real generated launcher and kernel table
(`aot.write_sources`), with fake images that the fake CUDA driver (plugins/tests/fake_cuda.cpp) understands:
"FAKE:<kernel>:<one letter per parameter: p pointer, i int32, f float32>:<arch and format>:<specialisation>"."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from flurka_export.kernels.aot import NUM_SCRATCH_PARAMS, RUNTIME_ARGS, all_specs, ptx_arch, write_sources
from flurka_export.kernels.launch import kernel_config
from flurka_export.ops.feature_maps import FEATURE_MAPS

ARCHS = (80, 89, 90)
DTYPES = ("fp32", "fp16")
HEAD_DIMS = (64,)
VALUE_DIMS = (64, 32)
BIG_SHARED = 65536  # fp32 query_out: above 48 KB, so the launcher must opt in
SMALL_SHARED = 16384


def _sig(kind: str) -> str:
    letters = {"i32": "i", "fp32": "f"}
    return "".join("p" if ty.startswith("*") else letters[ty] for _, ty in RUNTIME_ARGS[kind]) + "p" * NUM_SCRATCH_PARAMS


def fake_results() -> list[dict[str, Any]]:
    results = []
    p_arch = ptx_arch(ARCHS)
    for arch in ARCHS:
        for spec in all_specs(FEATURE_MAPS, DTYPES, HEAD_DIMS, VALUE_DIMS):
            cfg = kernel_config(spec.feature_map, spec.dtype, spec.d, spec.dv or spec.d)
            tag = f"{spec.feature_map}/{spec.dtype}/{spec.d}/{spec.dv}"
            image = f"FAKE:{spec.kind}:{_sig(spec.kind)}:sm{arch}:{tag}"
            big = spec.kind == "query_out" and spec.dtype == "fp32"
            results.append({
                "spec": dataclasses.asdict(spec), "arch": arch, "name": spec.kind,
                "cubin": image.encode() + b"\0",
                "ptx": f"FAKE:{spec.kind}:{_sig(spec.kind)}:ptx{arch}:{tag}" if arch == p_arch else None,
                "ptx_version": "8.8", "shared": BIG_SHARED if big else SMALL_SHARED, "num_warps": cfg["num_warps"],
                "num_params": len(_sig(spec.kind)), "block_n": cfg["BLOCK_N"], "block_f": cfg["BLOCK_F"],
            })
    return results


def write_fake_kernels(out_dir: Path) -> dict[str, Any]:
    return write_sources(fake_results(), out_dir, ARCHS)
