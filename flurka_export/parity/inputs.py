"""Inputs that fit a model, as its family spec declares them (models/specs/): shapes from --shapes or the
defaults, random feeds (token ids inside the vocabulary with padded masks, images, ...)."""

from __future__ import annotations

import numpy as np

from ..models import FlurkaConfig
from ..models.specs import Shape


def parse_shapes(text: str, config: FlurkaConfig, max_seq_len: int | None = None) -> list[Shape]:
    """'1x1,4x300' -> [(1, 1), (4, 300)], checked against the model's sequence range and the ONNX
    file's own max_seq_len (which may be below N_max)."""
    spec = config.spec
    shapes = []
    lo, hi = spec.check_shapes(config, max_seq_len)
    for item in filter(None, (s.strip() for s in text.split(","))):
        shape = spec.parse_shape(item, config, hi)
        if shape is None:
            raise ValueError(f"bad shape {item!r}; expected {spec.shape_help}")
        b, n = shape
        if b < 1:
            raise ValueError(f"bad shape {item!r}: batch must be at least 1")
        if not lo <= n <= hi:
            raise ValueError(f"sequence length {n} in {item!r} is outside the model's range {lo}..{hi} "
                             f"(max_seq_len={hi}, N_max={config.max_seq_len})")
        shapes.append((b, n))
    if not shapes:
        raise ValueError("no shapes given")
    return shapes


def default_shapes(config: FlurkaConfig, max_seq_len: int | None = None) -> list[Shape]:
    """The smallest input, a padded middle one and the largest (N_max), or what the family says."""
    return config.spec.default_shapes(config, max_seq_len)


def make_inputs(config: FlurkaConfig, shape: Shape, seed: int = 0, float_dtype: str = "float32",
                pad: bool = True) -> dict[str, np.ndarray]:
    """Random inputs for one shape (the family's feed: text batches with more than one row get right padding)."""
    return config.spec.make_feed(config, shape, seed=seed, float_dtype=float_dtype, pad=pad)
