"""Inputs that fit a model: token ids inside the vocabulary with padded attention masks, or images."""

from __future__ import annotations

import re

import numpy as np

from ..models import FlurkaConfig

Shape = tuple[int, int]  # (batch, sequence length); images: (batch, number of tokens)


def parse_shapes(text: str, config: FlurkaConfig, max_seq_len: int | None = None) -> list[Shape]:
    """'1x1,4x300' -> [(1, 1), (4, 300)], checked against the model's sequence range and the ONNX
    file's own max_seq_len (which may be below N_max)."""
    shapes = []
    lo, hi = config.seq_len_range
    if max_seq_len is not None and config.task != "image":
        hi = min(hi, max_seq_len)
    for item in filter(None, (s.strip() for s in text.split(","))):
        m = re.fullmatch(r"(\d+)x(\d+)", item) or (re.fullmatch(r"(\d+)", item) if config.task == "image" else None)
        if not m:
            raise ValueError(f"bad shape {item!r}; expected BATCHxSEQ such as 4x300"
                             + (" (or BATCH for image models)" if config.task == "image" else ""))
        b = int(m.group(1))
        n = int(m.group(2)) if m.lastindex == 2 else hi
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
    """The smallest input, a padded middle one and the largest (N_max)."""
    lo, hi = config.seq_len_range
    hi = min(hi, max_seq_len or hi)
    if config.task == "image":
        return [(1, hi), (3, hi)]
    return [(1, lo), (3, max(lo, hi // 2 + 1)), (2, hi)]


def make_inputs(config: FlurkaConfig, shape: Shape, seed: int = 0, float_dtype: str = "float32",
                pad: bool = True) -> dict[str, np.ndarray]:
    """Random inputs for one shape. Text batches with more than one row get right padding:
    row i keeps a different number of real tokens (at least one)."""
    rng = np.random.default_rng(seed)
    b, n = shape
    if config.task == "image":
        s = config.image_size
        return {"pixel_values": rng.standard_normal((b, config.num_channels, s, s)).astype(float_dtype)}
    ids = rng.integers(0, config.vocab_size, size=(b, n), dtype=np.int64)
    mask = np.ones((b, n), dtype=np.int64)
    if pad and b > 1 and n > 1:
        for row in range(1, b):
            real = max(1, n - (row * n) // (b + 1))
            mask[row, real:] = 0
    feed = {"input_ids": ids, "attention_mask": mask}
    if config.type_vocab_size:  # segment A then segment B, as in sentence-pair inputs
        types = np.zeros((b, n), dtype=np.int64)
        types[:, (n + 1) // 2:] = min(1, config.type_vocab_size - 1)
        feed["token_type_ids"] = types * mask
    return feed
