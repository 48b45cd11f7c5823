"""scikit-learn's handwritten digits (1797 8x8 grey images, 10 classes), bundled with scikit-learn:
nothing is downloaded. Split with a fixed seed into train / validation / test."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

Split = tuple[torch.Tensor, torch.Tensor]  # pixel_values [n, 1, 8, 8] in [0, 1], labels [n]


def load_digits_splits(val_size: int = 200, test_size: int = 300, seed: int = 0) -> dict[str, Split]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("the digits example needs scikit-learn (its data ships inside the package): "
                          "pip install scikit-learn") from None
    data = load_digits()
    x = torch.from_numpy((data.images / 16.0).astype(np.float32)).unsqueeze(1)
    y = torch.from_numpy(data.target.astype(np.int64))
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    x, y = x[order], y[order]
    if val_size + test_size >= len(y):
        raise ValueError(f"val_size + test_size must be below {len(y)}")
    t, v = len(y) - val_size - test_size, len(y) - test_size
    return {"train": (x[:t], y[:t]), "validation": (x[t:v], y[t:v]), "test": (x[v:], y[v:])}


def batches(split: Split, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> Iterator[Split]:
    x, y = split
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed)) if shuffle else torch.arange(len(y))
    for i in range(0, len(y), batch_size):
        idx = order[i:i + batch_size]
        yield x[idx], y[idx]
