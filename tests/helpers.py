"""Shared test inputs: random op inputs and tiny configs."""

from __future__ import annotations

import torch

from flurka_export.models import PRESETS, FlurkaConfig
from flurka_export.models.random_features import draw_feature_proj
from flurka_export.ops import NEEDS_FEATURE_PROJ


def op_inputs(feature_map: str, b=2, nq=5, nk=7, h=2, d=8, dv=None, p=6, dtype=torch.float32, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    dv = dv or d
    q = torch.randn(b, nq, h * d, generator=g) * scale
    k = torch.randn(b, nk, h * d, generator=g) * scale
    v = torch.randn(b, nk, h * dv, generator=g)
    proj = draw_feature_proj(feature_map, h, p, d, seed) if feature_map in NEEDS_FEATURE_PROJ else None
    cast = lambda t: None if t is None else t.to(dtype)  # noqa: E731
    return cast(q), cast(k), cast(v), cast(proj)


def tiny_config(**changes) -> FlurkaConfig:
    fields = dict(PRESETS["tiny"])
    fields.update(changes)
    return FlurkaConfig(**fields)


# A non-default value of every optional op attribute, far enough from its default to move the output of every
# map that reads it well past test tolerances: tests that pass these catch a backend that drops or ignores an
# attribute (tests/ops/test_feature_map_registry.py checks the list is complete and strong enough).
PROBE_ATTRIBUTES: dict[str, float | int] = {"stabilizer": 0.25, "eps": 0.5, "nu": 2}


def probe_attributes(feature_map: str) -> dict[str, float | int]:
    """PROBE_ATTRIBUTES restricted to the attributes `feature_map` reads."""
    from flurka_export.ops.feature_maps import get

    return {a.name: PROBE_ATTRIBUTES[a.name] for a in get(feature_map).attributes}
