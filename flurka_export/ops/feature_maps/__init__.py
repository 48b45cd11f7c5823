"""The feature-map registry (docs/op-spec.md section 5): one module per feature map, each declaring a
`FeatureMap`. Adding a map = a module here + the kernel code + tests; every other backend either reads
this registry or has a test that names the map it lacks.

phi and den work on float32 tensors shaped [B, H, N, d].
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import torch

from .base import DEFAULTS, OPTIONAL_ATTRIBUTES, FeatureMap, FusePattern, OpAttribute

# Every module of this package except base declares FEATURE_MAP: a new module is registered by being here.
_DECLARED = [importlib.import_module(f"{__name__}.{m.name}").FEATURE_MAP
             for m in pkgutil.iter_modules(__path__) if m.name != "base"]
REGISTRY: dict[str, FeatureMap] = {m.name: m for m in sorted(_DECLARED, key=lambda m: m.enum_id)}
FEATURE_MAPS: tuple[str, ...] = tuple(REGISTRY)  # in enum order
# Feature maps that draw random features: the op's 4th input (feature_proj, [H, P, d]) is required.
NEEDS_FEATURE_PROJ: frozenset[str] = frozenset(n for n, m in REGISTRY.items() if m.needs_feature_proj)

if [m.enum_id for m in REGISTRY.values()] != list(range(len(REGISTRY))):
    raise AssertionError("feature-map enum ids must be 0, 1, 2, ... with no gaps")


def get(name: str) -> FeatureMap:
    """The registered feature map `name`, or ValueError listing the allowed names."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown feature_map {name!r}; allowed: {', '.join(FEATURE_MAPS)}") from None


def phi_dim(feature_map: str, head_dim: int, num_proj: int | None, **attributes: Any) -> int:
    """M, the length of phi(x) for one head (num_proj is P, the rows of feature_proj; the config's num_features)."""
    fmap = get(feature_map)
    return fmap.phi_dim(head_dim, num_proj or 0, fmap.attribute_values(attributes))


def phi(x: torch.Tensor, feature_map: str, feature_proj: torch.Tensor | None = None, *, is_query: bool,
        **attributes: Any) -> torch.Tensor:
    """phi(x) for x of shape [B, H, N, d]; returns [B, H, N, M]."""
    fmap = get(feature_map)
    return fmap.phi(x, feature_proj, fmap.attribute_values(attributes), is_query)


def denominator(t: torch.Tensor, feature_map: str, **attributes: Any) -> torch.Tensor:
    """den(t) for t = phi(q) . z."""
    fmap = get(feature_map)
    return fmap.den(t, fmap.attribute_values(attributes))


__all__ = [
    "DEFAULTS", "FEATURE_MAPS", "NEEDS_FEATURE_PROJ", "OPTIONAL_ATTRIBUTES", "REGISTRY", "FeatureMap", "FusePattern",
    "OpAttribute", "denominator", "get", "phi", "phi_dim",
]
