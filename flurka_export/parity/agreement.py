"""Tolerances for int8-quantized models: a bound on the error relative to the output's range, and top-1
agreement of the predictions instead of element-wise closeness.

int8 weights carry about 2 significant digits, so element-wise fp32 tolerances do not apply; what users
check is whether the predicted class survives. Every output must stay within INT8_REL_ERROR of its range.
Top-1 agreement is always reported; it decides the verdict only when asked (require_agreement), because on
random weights and random inputs (verify, optimize) many rows are near-ties that any rounding flips. On
a real test set (the examples) the goal is MIN_TOP1_AGREEMENT.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx

from ..onnx_io import META_QUANTIZATION
from .compare import Comparison, compare_arrays

QUANT_OPS = frozenset({"MatMulInteger", "DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear",
                       "QLinearMatMul", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"})
# Largest |int8 - fp32| allowed, as a fraction of max |fp32| over the output. Measured: dynamic int8 about
# 1-2%, static int8 up to 5% on tiny random-weight models (whose logits are all near zero).
INT8_REL_ERROR = 0.1


MIN_TOP1_AGREEMENT = 0.99
MIN_ROWS_FOR_AGREEMENT = 100  # below this a single flip of a near-tie row says little


@dataclasses.dataclass
class Agreement(Comparison):
    top1_agreement: float | None = None  # fraction of rows with the same argmax over the last axis
    rows: int = 0


def is_quantized(model: onnx.ModelProto) -> bool:
    if any(p.key == META_QUANTIZATION for p in model.metadata_props):
        return True
    return any(n.op_type in QUANT_OPS for n in model.graph.node)


def top1_agreement(ref: np.ndarray, got: np.ndarray) -> float:
    if ref.size == 0:
        return 1.0
    return float((ref.argmax(-1) == got.argmax(-1)).mean())


def compare_quantized(name: str, ref: np.ndarray, got: np.ndarray, rel_error: float = INT8_REL_ERROR,
                      require_agreement: bool = False) -> Agreement:
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    base = compare_arrays(name, ref, got, atol=rel_error * scale, rtol=0.0)
    fields = dataclasses.asdict(base)
    if ref.shape != got.shape or ref.size == 0 or ref.ndim == 0:
        return Agreement(**fields)
    agree = top1_agreement(ref, got)
    rows = int(np.prod(ref.shape[:-1]))
    agreement_ok = rows < MIN_ROWS_FOR_AGREEMENT or agree >= MIN_TOP1_AGREEMENT
    fields["passed"] = base.passed and (agreement_ok or not require_agreement)
    return Agreement(**fields, top1_agreement=agree, rows=rows)


def compare_output(name: str, ref: np.ndarray, got: np.ndarray, *, quantized: bool, atol: float, rtol: float,
                   tolerances_given: bool = False) -> Comparison:
    """The hook for verify: int8 rules for a quantized model (unless the user set --atol/--rtol),
    element-wise atol/rtol otherwise."""
    if np.asarray(ref).dtype.kind in "iu":  # token ids (beam results): equal or not
        return compare_arrays(name, ref, got, 0.0, 0.0)
    if quantized and not tolerances_given:
        return compare_quantized(name, ref, got)
    return compare_arrays(name, ref, got, atol, rtol)


def agreement_note(row: dict) -> str:
    """' top-1 3/3' for a row produced by compare_quantized (empty for element-wise rows)."""
    if row.get("top1_agreement") is None:
        return ""
    same = round(row["top1_agreement"] * row["rows"])
    return f" top-1 {same}/{row['rows']}"
