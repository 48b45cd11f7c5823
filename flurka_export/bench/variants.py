"""`bench --variants fp32,optimized,int8`: the same exported model prepared as `flurka-export optimize`
would, each variant benchmarked as its own row ("ort-cpu+int8") of the runtimes that run them
(`Runtime.onnx_variants`) in the same run.

fp32: the exported file as is; optimized: ORT transformer fusions (level all); int8: fusions then dynamic
int8 of the MatMul/Gemm weights. Variants apply to ONNX Runtime only; torch and TensorRT rows are fp32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

VARIANTS = ("fp32", "optimized", "int8")
SEP = "+"


def parse_variants(items: list[str]) -> list[str]:
    bad = [v for v in items if v not in VARIANTS]
    if bad or not items:
        raise ValueError(f"unknown variant {bad[0] if bad else ''!r}; allowed: {', '.join(VARIANTS)}")
    return list(dict.fromkeys(items))


def split_runtime(runtime: str) -> tuple[str, str]:
    """'ort-cpu+int8' -> ('ort-cpu', 'int8'); 'torch-cpu' -> ('torch-cpu', 'fp32')."""
    base, _, variant = runtime.partition(SEP)
    return base, variant or "fp32"


def expand_runtimes(runtimes: list[str], variants: list[str]) -> list[str]:
    """One row per variant for runtimes that run ONNX variants (fp32 keeps the plain name); others unchanged."""
    from ..runtimes import runtime_of_variant

    out = []
    takes_variants = [runtime_of_variant(rt).onnx_variants for rt in runtimes]
    for rt, takes in zip(runtimes, takes_variants, strict=True):
        if takes:
            out += [rt if v == "fp32" else f"{rt}{SEP}{v}" for v in variants]
        else:
            out.append(rt)
    if variants != ["fp32"] and not any(takes_variants):
        raise ValueError("--variants other than fp32 need an ONNX Runtime runtime (--runtimes ort)")
    return out


def prepare_variants(onnx_path: str | Path, variants: list[str]) -> dict[str, str]:
    """Write each non-fp32 variant beside the exported file; returns {"onnx+optimized": path, ...}."""
    from ..optimize.pipeline import optimize_file

    onnx_path = Path(onnx_path)
    paths = {}
    for v in variants:
        if v == "fp32":
            continue
        dst = onnx_path.with_name(f"{onnx_path.stem}.{v}.onnx")
        optimize_file(str(onnx_path), str(dst), level="all", quantize="int8" if v == "int8" else None,
                      verify=False, overwrite=True)
        paths[f"onnx{SEP}{v}"] = str(dst)
    return paths


def onnx_for(paths: dict[str, str], runtime: str) -> str:
    variant = split_runtime(runtime)[1]
    return paths["onnx"] if variant == "fp32" else paths[f"onnx{SEP}{variant}"]


def ratio_lines(results: list[dict[str, Any]]) -> list[str]:
    """'flurka-elu ort-cpu N=4096: optimized 1.02x, int8 2.31x faster than fp32 (p50, same run)'."""
    by_key: dict[tuple[str, str, int], dict[str, float]] = {}
    for r in results:
        base, variant = split_runtime(r["runtime"])  # rows without variants stay alone and give no line
        by_key.setdefault((r["kind"], base, r["seq_len"]), {})[variant] = r["p50_ms"]
    lines = []
    for (kind, base, n), p50 in sorted(by_key.items()):
        if "fp32" in p50 and len(p50) > 1:
            parts = [f"{v} {p50['fp32'] / ms:.2f}x" for v, ms in p50.items() if v != "fp32"]
            lines.append(f"{kind} {base} N={n}: " + ", ".join(parts) + " vs fp32 (p50 ratio, same run)")
    return lines
