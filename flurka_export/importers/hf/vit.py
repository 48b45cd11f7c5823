"""ViT: ViTForImageClassification (task image): patches, CLS token, pre-LN blocks, classifier."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...models.config import FlurkaConfig
from ..common import TensorPool
from .common import Architecture, dense, norm, num_labels, square


def _fields(hf: dict[str, Any], tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    size, patch = square(hf["image_size"], "image_size"), square(hf["patch_size"], "patch_size")
    n = (size // patch) ** 2 + 1
    return dict(image_size=size, patch_size=patch, num_channels=int(hf.get("num_channels", 3)), max_seq_len=n,
                pre_norm=True, **num_labels(tensors, "classifier.weight"))


def _map(pool: TensorPool, config: FlurkaConfig, notes: list[str]) -> None:
    pool.copy("vit.embeddings.cls_token", "cls_token")
    pool.copy("vit.embeddings.position_embeddings", "position_embeddings")
    pool.copy("vit.embeddings.patch_embeddings.projection.weight", "patch_embed.weight")
    pool.copy("vit.embeddings.patch_embeddings.projection.bias", "patch_embed.bias")
    if pool.has("vit.embeddings.mask_token"):
        pool.drop("vit.embeddings.mask_token", "used only for masked image modelling, not for classification")
    for i in range(config.num_layers):
        src, ours = f"vit.encoder.layer.{i}.", f"layers.{i}."
        for name in ("query", "key", "value"):
            dense(pool, f"{src}attention.attention.{name}", f"{ours}attention.{name}", notes)
        dense(pool, f"{src}attention.output.dense", f"{ours}attention.out")
        norm(pool, f"{src}layernorm_before", f"{ours}norm1")
        dense(pool, f"{src}intermediate.dense", f"{ours}ffn.0")
        dense(pool, f"{src}output.dense", f"{ours}ffn.2")
        norm(pool, f"{src}layernorm_after", f"{ours}norm2")
    norm(pool, "vit.layernorm", "norm")
    dense(pool, "classifier", "head")


ARCHITECTURES = {"ViTForImageClassification": Architecture("vit", "image", _fields, _map)}
