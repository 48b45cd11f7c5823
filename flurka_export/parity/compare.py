"""Element-wise comparison of outputs with dtype-aware default tolerances."""

from __future__ import annotations

import dataclasses

import numpy as np

# Defaults by the exported model's dtype, against the float32 PyTorch reference. fp32: the body
# reorders float32 sums (S, z), errors ~1e-6 relative per layer. fp16/bf16: weights and activations
# are rounded to 11 / 8 mantissa bits (relative 4.9e-4 / 3.9e-3 per op) through every layer.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "fp32": (1e-4, 1e-3),
    "fp16": (5e-2, 5e-2),
    "bf16": (2.5e-1, 1e-1),
}


@dataclasses.dataclass
class Comparison:
    output: str
    max_abs: float
    max_rel: float
    mean_abs: float
    atol: float
    rtol: float
    passed: bool
    worst_index: tuple[int, ...] = ()
    worst_abs: float = 0.0  # |got - ref| at the worst element (the one nearest to or furthest past its bound)
    worst_allowed: float = 0.0  # atol + rtol * |ref| there

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_tolerances(atol: float, rtol: float) -> None:
    for name, value in (("atol", atol), ("rtol", rtol)):
        if not value >= 0:  # also refuses NaN
            raise ValueError(f"{name} must be a number >= 0, got {value}")


def compare_arrays(name: str, ref: np.ndarray, got: np.ndarray, atol: float, rtol: float) -> Comparison:
    """Pass if every element satisfies |got - ref| <= atol + rtol * |ref| (numpy.isclose's rule)."""
    check_tolerances(atol, rtol)
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    inf = float("inf")
    if ref.shape != got.shape:
        return Comparison(name, inf, inf, inf, atol, rtol, False, (), inf, 0.0)
    if ref.size == 0:
        return Comparison(name, 0.0, 0.0, 0.0, atol, rtol, True)
    diff = np.abs(got - ref)
    diff = np.where(np.isnan(diff), np.inf, diff)
    allowed = atol + rtol * np.abs(ref)
    rel = diff / np.maximum(np.abs(ref), 1e-12)
    passed = bool(np.all(diff <= allowed))
    flat = int(np.argmax(diff - allowed))
    worst = tuple(int(i) for i in np.unravel_index(flat, diff.shape))
    return Comparison(name, float(diff.max()), float(rel.max()), float(diff.mean()), atol, rtol, passed, worst,
                      float(diff.flat[flat]), float(allowed.flat[flat]))
