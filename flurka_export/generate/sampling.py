"""Choosing the next token from logits [B, V] (numpy, so PyTorch and ONNX Runtime share one implementation):
greedy argmax, or temperature, then top-k, then top-p, then a draw (transformers' processor order).

numpy only at run time: the Triton generate model (serve/generate_model.py) loads this file from beside it.
`options` is anything with samples, temperature, top_k and top_p."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .options import SamplingOptions


def warp(logits: np.ndarray, options: SamplingOptions) -> np.ndarray:
    """Scores after temperature, top-k and top-p: removed tokens are -inf."""
    scores = logits.astype(np.float64) / options.temperature
    if options.top_k and options.top_k < scores.shape[-1]:
        kth = np.sort(scores, axis=-1)[:, -options.top_k][:, None]
        scores = np.where(scores < kth, -np.inf, scores)
    if options.top_p < 1:
        order = np.argsort(-scores, axis=-1, kind="stable")
        ordered = np.take_along_axis(scores, order, axis=-1)
        probs = np.exp(ordered - ordered[:, :1])
        probs /= probs.sum(-1, keepdims=True)
        before = np.cumsum(probs, axis=-1) - probs  # the mass of the better tokens
        drop = before >= options.top_p  # the best token is always kept (before = 0)
        ordered = np.where(drop, -np.inf, ordered)
        scores = np.empty_like(scores)
        np.put_along_axis(scores, order, ordered, axis=-1)
    return scores


def next_tokens(logits: np.ndarray, options: SamplingOptions, rng: np.random.Generator) -> np.ndarray:
    """One token id per row of logits [B, V]."""
    if not options.samples:
        return logits.argmax(-1).astype(np.int64)
    scores = warp(logits, options)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    u = rng.random((scores.shape[0], 1))
    return np.minimum((np.cumsum(probs, axis=-1) < u).sum(-1), scores.shape[-1] - 1).astype(np.int64)
