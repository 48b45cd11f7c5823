"""The `optimize` pipeline as a library call: input check, ORT fusions, int8, guard, ORT parity, atomic write.

Used by `flurka-export optimize`, `export --quantize int8`, `bench --variants` and the examples' --int8.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class OptimizeError(ValueError):
    """An expected refusal (damaged input, existing output, failed parity): one line on the command line."""


def optimize_file(src: str, dst: str, *, level: str = "all", quantize: str | None = None,
                  calibration_data: str | None = None, per_channel: bool = False, verify: bool = True,
                  overwrite: bool = False) -> dict[str, Any]:
    """Fusions, then int8 quantization; FlurkaAttention nodes/bodies checked after each step, the result
    checked against `src` in ONNX Runtime. Writes `dst` only if everything passed. Returns a summary."""
    import onnx

    from ..export.check_functions import check_flurka_functions
    from ..onnx_io import META_OPTIMIZED, META_QUANTIZATION, load_onnx, save_model
    from ..passes.ort_fusions import apply_ort_fusions
    from ..passes.quantize_int8 import load_calibration, quantize_int8
    from .ort_parity import check_ort_parity

    if quantize not in (None, "int8"):
        raise ValueError(f"unknown --quantize {quantize!r}; allowed: int8")
    if calibration_data and not quantize:
        raise ValueError("--calibration-data needs --quantize int8")
    if Path(dst).exists() and not overwrite:
        raise OptimizeError(f"{dst} already exists; pass --overwrite to replace it")
    model = load_onnx(src)
    problems = check_flurka_functions(model)
    if problems:
        raise OptimizeError(f"refusing to optimize {src}: {problems[0]}")
    calibration = load_calibration(calibration_data, model) if calibration_data else None
    out, fused = apply_ort_fusions(model, level)
    if quantize:
        out = quantize_int8(out, calibration, per_channel=per_channel)
    props = {p.key: p.value for p in out.metadata_props}
    props[META_OPTIMIZED] = f"level={level}; " + (", ".join(f"{k} x{v}" for k, v in fused.items()) or "nothing fused")
    onnx.helper.set_model_props(out, props)
    summary: dict[str, Any] = {"fused": fused, "quantization": props.get(META_QUANTIZATION), "parity": None}
    if verify:
        parity = check_ort_parity(model, out, quantized=bool(quantize))
        summary["parity"] = parity.summary()
        if not parity.passed:
            raise OptimizeError(f"the optimized model does not match {src} in ONNX Runtime; nothing written. "
                               + parity.summary())
    save_model(out, Path(dst))
    return summary
