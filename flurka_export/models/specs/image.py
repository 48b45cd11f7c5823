"""The image family (ViT): input `pixel_values` float [batch, C, H, W], fixed size; a classification head.
The token count (patches + CLS) is fixed, so only the batch is dynamic."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from ..families import FlurkaViT
from .base import BATCH, FamilySpec, Feed, Head, IOTensor, Shape

if TYPE_CHECKING:
    from ..config import FlurkaConfig


class ImageSpec(FamilySpec):
    family = "image"
    order = 10
    heads = {"image": Head("classify", FlurkaViT)}
    shape_help = "BATCHxSEQ such as 4x300 (or BATCH for image models)"

    def validate(self, config: FlurkaConfig) -> str | None:
        if config.image_size % config.patch_size:
            return f"image_size={config.image_size} is not divisible by patch_size={config.patch_size}"
        if config.num_patches + 1 > config.max_seq_len:
            return f"{config.num_patches} patches + CLS exceed max_seq_len={config.max_seq_len}"
        return None

    def pre_norm_default(self) -> bool:
        return True  # ViT

    def seq_len_range(self, config: FlurkaConfig) -> tuple[int, int]:
        return config.num_patches + 1, config.num_patches + 1

    def inputs(self, config: FlurkaConfig) -> list[IOTensor]:
        s = config.image_size
        return [IOTensor("pixel_values", "float", (BATCH, config.num_channels, s, s))]

    def parse_shape(self, item: str, config: FlurkaConfig, hi: int) -> Shape | None:
        m = re.fullmatch(r"(\d+)", item)
        return (int(m.group(1)), hi) if m else super().parse_shape(item, config, hi)

    def default_shapes(self, config: FlurkaConfig, max_seq_len: int | None = None) -> list[Shape]:
        n = self.seq_len_range(config)[1]
        return [(1, n), (3, n)]

    def make_feed(self, config: FlurkaConfig, shape: Shape, seed: int = 0, float_dtype: str = "float32",
                  pad: bool = True) -> Feed:
        rng = np.random.default_rng(seed)
        s = config.image_size
        return {"pixel_values": rng.standard_normal((shape[0], config.num_channels, s, s)).astype(float_dtype)}

    def check_trt_profile(self, config: FlurkaConfig, name: str, mn: tuple[int, ...], opt: tuple[int, ...],
                          mx: tuple[int, ...], n_max: int) -> None:
        fixed = (config.num_channels, config.image_size, config.image_size)
        for d in (mn, opt, mx):
            if tuple(d[1:]) != fixed:
                raise ValueError(f"{name}: image models have fixed [C, H, W] = {list(fixed)}, got {list(d[1:])}")
        super().check_trt_profile(config, name, mn, opt, mx, n_max)

    def padding_invariant(self, config: FlurkaConfig) -> bool:
        return True  # no padding: every request has the same shape


SPEC = ImageSpec()
